"""Rows -> frame in the signature's column order and dtypes -> predict (and predict_proba)."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property, lru_cache
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

from mlserve.errors import InputError
from mlserve.loader import load_estimator
from mlserve.mlmodel import ColumnSpec, ModelSpec
from mlserve.schema import DEFAULT_MAX_ROWS, NUMPY_DTYPES, RequestSchema, ValidatedRows, compile_schema


@dataclass(frozen=True)
class ModelIdentity:
    name: str
    version: str
    run_id: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "run_id": self.run_id}


@dataclass
class LoadedModel:
    """A deserialized, verified model version with its compiled request schema."""

    identity: ModelIdentity
    estimator: Any
    spec: ModelSpec
    schema: RequestSchema
    pointer: dict[str, Any]
    model_dir: Path
    loaded_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    load_seconds: float = 0.0

    @cached_property
    def takes_arrays(self) -> bool:
        return fitted_on_arrays(self.estimator)

    @cached_property
    def classes(self) -> list[Any] | None:
        if not hasattr(self.estimator, "predict_proba"):
            return None
        classes = getattr(self.estimator, "classes_", None)
        return None if classes is None else [to_json_scalar(c) for c in classes]

    def describe(self) -> dict[str, Any]:
        return {
            **self.identity.to_dict(),
            "signature": self.spec.signature_dict(),
            "source": self.pointer.get("source"),
            "checksums": self.pointer.get("checksums"),
            "serialization_format": self.spec.serialization_format,
            "sklearn_version": self.spec.sklearn_version,
            "promoted_at": self.pointer.get("promoted_at"),
            "promoted_by": self.pointer.get("promoted_by"),
            "loaded_at": self.loaded_at,
            "classes": self.classes,
        }


def load_model_dir(
    model_dir: Path,
    identity: ModelIdentity,
    checksums: dict[str, str],
    *,
    allow_pickle: bool,
    max_rows: int = DEFAULT_MAX_ROWS,
    pointer: dict[str, Any] | None = None,
) -> LoadedModel:
    import time

    started = time.perf_counter()
    estimator, spec = load_estimator(model_dir, checksums, allow_pickle)
    schema = compile_schema(identity.name, spec.inputs, max_rows)
    return LoadedModel(
        identity=identity,
        estimator=estimator,
        spec=spec,
        schema=schema,
        pointer=pointer or {},
        model_dir=model_dir,
        load_seconds=time.perf_counter() - started,
    )


def naive_utc(value: datetime) -> datetime:
    """An aware datetime as naive UTC (numpy's datetime64 has no zones); naive stays as is."""
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def column_array(values: Sequence[Any], column: ColumnSpec) -> Any:
    """One column as a numpy array of the signature's dtype; missing values become NaN/None."""
    has_missing = any(v is None for v in values)
    if column.type == "datetime":
        return np.array(
            [np.datetime64(naive_utc(v), "ns") if v is not None else np.datetime64("NaT") for v in values],
            dtype="datetime64[ns]",
        )
    if column.type == "string" or (column.type == "boolean" and has_missing):
        return np.array(values, dtype=object)
    if has_missing:
        # Integers with gaps cannot stay integers; NaN is what imputers expect.
        return np.array([math.nan if v is None else v for v in values], dtype=np.float64)
    return np.array(values, dtype=NUMPY_DTYPES[column.type])


# Numeric types whose rows become one 2-D array exactly as `column_array` would build each
# column. "float" (float32) and the integer types only while no value is missing: with a
# gap, `column_array` widens them to float64 + NaN, so those requests take the general path.
MATRIX_DTYPES: dict[str, Any] = {"double": np.float64, "float": np.float32, "long": np.int64, "integer": np.int32}


@dataclass
class FramePlan:
    """How to turn validated rows into model input, decided once per signature."""

    columns: tuple[ColumnSpec, ...]
    names: list[str]
    # Set when every column has the same numeric type: rows -> one 2-D array.
    matrix_dtype: Any
    # itemgetter over all columns when none is optional (missing keys are impossible).
    getter: Callable[[dict[str, Any]], Any] | None
    # The column Index, built once: inferring it from a list of names costs ~100 us per frame.
    _index: Any = None

    @property
    def index(self) -> Any:
        if self._index is None:
            import pandas as pd

            self._index = pd.Index(self.names)
        return self._index


@lru_cache(maxsize=64)
def frame_plan(columns: tuple[ColumnSpec, ...]) -> FramePlan:
    names = [column.name for column in columns]
    types = {column.type for column in columns}
    matrix_dtype = MATRIX_DTYPES.get(types.pop()) if len(types) == 1 else None
    getter: Callable[[dict[str, Any]], Any] | None = None
    if names and all(column.required for column in columns):
        # itemgetter of one key returns the value, not a 1-tuple.
        getter = operator.itemgetter(*names) if len(names) > 1 else (lambda row, key=names[0]: (row[key],))
    return FramePlan(columns, names, matrix_dtype, getter)


def rows_to_matrix(rows: Sequence[dict[str, Any]], plan: FramePlan) -> Any:
    """All-numeric signatures: one 2-D array in signature order, or None when the
    per-column path is needed (mixed types, or a missing value in a float32/integer column)."""
    dtype = plan.matrix_dtype
    if dtype is None or not rows:
        return None
    if isinstance(rows, ValidatedRows) and rows.columns == plan.columns and dtype is np.float64:
        return rows.matrix  # built while validating
    names = plan.names
    getter = plan.getter
    values = list(map(getter, rows)) if getter is not None else [[row.get(n) for n in names] for row in rows]
    try:
        # float64: None -> NaN, exactly as column_array does. fromiter over the flattened
        # values is about twice as fast as np.array over a list of tuples.
        flat = np.fromiter(chain.from_iterable(values), dtype=dtype, count=len(values) * len(names))
    except (TypeError, ValueError, OverflowError):
        return None  # None in an integer column, or out of range: column_array decides.
    if dtype is np.float32 and np.isnan(flat).any():
        return None  # validated values are finite, so NaN came from None: a float64 column.
    return flat.reshape(len(values), len(names))


def rows_to_frame(rows: Sequence[dict[str, Any]], columns: tuple[ColumnSpec, ...]) -> Any:
    import pandas as pd

    plan = frame_plan(columns)
    matrix = rows_to_matrix(rows, plan)
    if matrix is not None:
        # One block straight from the array: no per-column arrays, no consolidation.
        return pd.DataFrame(matrix, columns=plan.index, copy=False)
    data = {column.name: column_array([row.get(column.name) for row in rows], column) for column in columns}
    return pd.DataFrame(data, copy=False)


def fitted_on_arrays(estimator: Any) -> bool:
    """A scikit-learn estimator fitted on a plain array (no feature names): it converts any
    DataFrame back to an array (and warns that X has feature names), so it can take the
    2-D array directly."""
    return hasattr(estimator, "n_features_in_") and not hasattr(estimator, "feature_names_in_")


def model_input(model: LoadedModel, rows: Sequence[dict[str, Any]]) -> Any:
    """What `predict` gets: a bare 2-D array when the estimator was fitted without feature
    names and the signature is all one numeric type; a DataFrame otherwise."""
    if model.takes_arrays:
        matrix = rows_to_matrix(rows, frame_plan(model.spec.inputs))
        if matrix is not None:
            return matrix
    return rows_to_frame(rows, model.spec.inputs)


def to_json_scalar(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def to_json_list(array: Any) -> list[Any]:
    if isinstance(array, np.ndarray):
        result: list[Any] = array.tolist()
        return result
    return [to_json_scalar(v) for v in array]


@dataclass
class Prediction:
    predictions: list[Any]
    probabilities: list[dict[str, float]] | None
    model: ModelIdentity


def predict_frame(model: LoadedModel, frame: Any, *, probabilities: bool = False) -> Prediction:
    estimator = model.estimator
    try:
        predicted = estimator.predict(frame)
        probs = None
        if probabilities:
            if not hasattr(estimator, "predict_proba"):
                raise InputError(
                    f"model {model.identity.name} is not a classifier with predict_proba; "
                    "request without 'probabilities'",
                    code="probabilities_unsupported",
                    status=400,
                )
            matrix = estimator.predict_proba(frame)
            labels = [str(c) for c in (model.classes or range(matrix.shape[1]))]
            probs = [dict(zip(labels, row, strict=True)) for row in matrix.tolist()]
    except InputError:
        raise
    except (ValueError, TypeError) as exc:
        # Values that pass the schema but that the model's own checks reject
        # (e.g. an unseen category with handle_unknown='error').
        raise InputError(f"the model rejected the input: {exc}", code="model_rejected_input", status=422) from None
    return Prediction(to_json_list(predicted), probs, model.identity)


def predict_rows(model: LoadedModel, rows: Sequence[dict[str, Any]], *, probabilities: bool = False) -> Prediction:
    return predict_frame(model, model_input(model, rows), probabilities=probabilities)
