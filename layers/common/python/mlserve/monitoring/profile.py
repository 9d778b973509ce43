"""Reference profile of a model version: per signature column (and the predictions) the
shape of the data, never the data itself.

- numbers and datetimes: 100 reference-quantile edges with the count per bin (the CDF at
  the edges, for KS), decile edges with counts (for PSI and Jensen-Shannon), and the exact
  category counts when the column has at most 20 distinct values (as Evidently treats it);
- strings and booleans: the top ``MAX_CATEGORIES`` category counts plus one "other" count;
- every column: rows, missing count and rate.

Stored as ``models/<name>/versions/<v>/profile.json`` and listed in ``checksums.json``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from mlserve.errors import InputError
from mlserve.monitoring.stats import CATEGORY_LIKE_MAX_UNIQUE

PROFILE_FILE = "profile.json"
PROFILE_FORMAT = "mlserve-profile/1"
PREDICTION_COLUMN = "prediction"
QUANTILE_BINS = 100
PSI_BINS = 10
MAX_CATEGORIES = 50
OTHER = "__other__"
NUMERIC_TYPES = frozenset({"double", "float", "long", "integer", "datetime"})

Columns = dict[str, np.ndarray]


def column_kind(signature_type: str) -> str:
    return "numeric" if signature_type in NUMERIC_TYPES else "categorical"


def as_numeric(values: Iterable[Any] | np.ndarray, signature_type: str = "double") -> np.ndarray:
    """float64 with NaN for missing/unparseable; datetimes as seconds since the epoch."""
    if signature_type == "datetime":
        import pandas as pd

        parsed = pd.to_datetime(pd.Series(list(values), dtype=object), utc=True, errors="coerce", format="mixed")
        # Unit-independent (pandas 3 may parse to us or s resolution); NaT -> NaN.
        seconds = (parsed - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
        as_seconds: np.ndarray = seconds.to_numpy(dtype=np.float64, na_value=np.nan)
        return as_seconds
    array = np.asarray(values if isinstance(values, np.ndarray) else list(values))
    if array.dtype.kind in "fiub":
        return array.astype(np.float64)
    import pandas as pd

    numbers: np.ndarray = pd.to_numeric(pd.Series(array, dtype=object), errors="coerce").to_numpy(dtype=np.float64)
    return numbers


def as_categorical(values: Iterable[Any] | np.ndarray) -> np.ndarray:
    """Strings (booleans as True/False), None for missing."""
    out: list[str | None] = []
    for value in values if isinstance(values, np.ndarray) else list(values):
        if value is None or (isinstance(value, float) and value != value):
            out.append(None)
        else:
            out.append(str(value))
    return np.array(out, dtype=object)


def present(values: np.ndarray, kind: str) -> np.ndarray:
    """The non-missing values (Evidently drops NaN and +-inf before its tests)."""
    if kind == "numeric":
        finite: np.ndarray = values[np.isfinite(values)]
        return finite
    return values[np.array([v is not None for v in values], dtype=bool)] if values.size else values


def bin_counts(values: np.ndarray, edges: Sequence[float] | np.ndarray) -> np.ndarray:
    """Counts in (-inf, e0), [e0, e1), ..., [e_last, +inf): len(edges) + 1 bins."""
    index = np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="right")
    return np.bincount(index, minlength=len(edges) + 1)


def category_counts(values: np.ndarray) -> dict[str, int]:
    if values.size == 0:
        return {}
    keys, counts = np.unique(values.astype(str), return_counts=True)
    order = np.argsort(-counts, kind="stable")
    return {str(keys[i]): int(counts[i]) for i in order}


def profile_column(values: np.ndarray, signature_type: str) -> dict[str, Any]:
    kind = column_kind(signature_type)
    rows = int(values.size)
    kept = present(values, kind)
    missing = rows - int(kept.size)
    column: dict[str, Any] = {
        "type": signature_type,
        "kind": kind,
        "rows": rows,
        "count": int(kept.size),
        "missing": missing,
        "missing_rate": (missing / rows) if rows else 0.0,
    }
    if kind == "numeric":
        if kept.size:
            edges = np.unique(np.quantile(kept, np.linspace(0, 1, QUANTILE_BINS + 1)))
            psi_edges = np.unique(np.quantile(kept, np.linspace(0, 1, PSI_BINS + 1)[1:-1]))
            column.update(
                min=float(kept.min()),
                max=float(kept.max()),
                mean=float(kept.mean()),
                std=float(kept.std()),
                edges=edges.tolist(),
                counts=bin_counts(kept, edges).tolist(),
                psi_edges=psi_edges.tolist(),
                psi_counts=bin_counts(kept, psi_edges).tolist(),
            )
            distinct = np.unique(kept)
            if distinct.size <= CATEGORY_LIKE_MAX_UNIQUE:
                column["categories"] = category_counts(kept.astype(str))
        else:
            column.update(edges=[], counts=[0], psi_edges=[], psi_counts=[0])
    else:
        counts = category_counts(kept)
        top = dict(list(counts.items())[:MAX_CATEGORIES])
        column.update(categories=top, other=int(sum(counts.values()) - sum(top.values())), distinct=len(counts))
    return column


def build_profile(
    columns: Mapping[str, np.ndarray],
    types: Mapping[str, str],
    predictions: np.ndarray | None = None,
    prediction_type: str | None = None,
    *,
    source: str | None = None,
) -> dict[str, Any]:
    """``columns`` are already converted (``as_numeric`` / ``as_categorical``)."""
    profile: dict[str, Any] = {
        "format": PROFILE_FORMAT,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "source": source,
        "rows": int(next(iter(columns.values())).size) if columns else 0,
        "columns": {name: profile_column(columns[name], types[name]) for name in columns},
        "prediction": None,
    }
    if predictions is not None:
        profile["prediction"] = profile_column(predictions, prediction_type or prediction_signature_type(predictions))
    return profile


def prediction_signature_type(predictions: np.ndarray) -> str:
    """Regressors' float predictions are numbers; labels (any other dtype) are categories."""
    if predictions.dtype.kind == "f":
        return "double"
    return "string"


def convert_columns(raw: Mapping[str, Sequence[Any] | np.ndarray], types: Mapping[str, str]) -> Columns:
    return {
        name: as_numeric(raw[name], types[name]) if column_kind(types[name]) == "numeric" else as_categorical(raw[name])
        for name in types
        if name in raw
    }


def read_csv_columns(path: Path, types: Mapping[str, str]) -> Columns:
    """The signature's columns of a CSV file (header row), converted for profiling.
    A missing column is an error naming it; extra columns are ignored."""
    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=True)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path}: {exc}", code="bad_reference") from None
    missing = [name for name in types if name not in frame.columns]
    if missing:
        raise InputError(
            f"{path.name} lacks the signature column(s) {missing}; it has {list(frame.columns)[:20]}",
            code="bad_reference",
        )
    raw = {name: frame[name].where(frame[name].notna(), None).to_numpy(dtype=object) for name in types}
    return convert_columns(raw, types)


def profile_bytes(profile: Mapping[str, Any]) -> bytes:
    return json.dumps(profile, indent=1, sort_keys=True, allow_nan=False).encode()


REFERENCE_MAX_ROWS = 10_000_000


def reference_profile_for_model(model_dir: Path, reference_csv: Path, *, allow_pickle: bool) -> dict[str, Any]:
    """Profile a reference CSV with the model being published: its signature columns, and
    the model's predictions on them. Rows are parsed and validated exactly as the API's
    CSV /invocations does, so a bad row is an error naming the row and field."""
    from mlserve.checksums import compute_checksums
    from mlserve.protocol import rows_from_csv
    from mlserve.scoring import ModelIdentity, load_model_dir, predict_rows

    model = load_model_dir(
        model_dir,
        ModelIdentity("reference", "0", None),
        compute_checksums(model_dir),
        allow_pickle=allow_pickle,
        max_rows=REFERENCE_MAX_ROWS,
    )
    types = {column.name: column.type for column in model.spec.inputs}
    if not types:
        raise InputError("the model has no input signature: nothing to profile", code="bad_reference")
    try:
        body = reference_csv.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the reference {reference_csv}: {exc.strerror}", code="bad_reference") from None
    rows = model.schema.validate_rows(rows_from_csv(body, types), forbid_extra=False)
    if not rows:
        raise InputError(f"the reference {reference_csv.name} has no rows", code="bad_reference")
    columns = convert_columns({name: [row.get(name) for row in rows] for name in types}, types)
    predictions = np.asarray(predict_rows(model, rows).predictions)
    prediction_type = prediction_signature_type(predictions)
    converted = as_numeric(predictions) if column_kind(prediction_type) == "numeric" else as_categorical(predictions)
    return build_profile(columns, types, converted, prediction_type, source=reference_csv.name)
