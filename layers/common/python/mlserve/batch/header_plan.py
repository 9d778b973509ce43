"""Stage 1 of scoring a CSV: from the header and the model, what to parse and what to write.

Everything that depends only on the header is decided once here (which signature columns
are where, which are absent, which are passed through, the output header line and the
per-row suffix tail), so the per-chunk stages never look at names again.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from mlserve.batch.lines import csv_field
from mlserve.csv_hints import raise_if_wrong_separator
from mlserve.errors import InputError
from mlserve.mlmodel import ColumnSpec
from mlserve.scoring import LoadedModel


@dataclass(frozen=True)
class HeaderPlan:
    header: list[str]
    signature: tuple[ColumnSpec, ...]
    present: tuple[ColumnSpec, ...]  # signature columns the file has, in signature order
    positions: list[int]  # their field positions in the file (first occurrence)
    absent: tuple[ColumnSpec, ...]  # optional columns the file lacks: missing in every row
    classes: list[Any] | None  # set when probability columns are written
    output_columns: list[str]
    passthrough: list[int]  # positions escaped against formula injection (empty when off)
    header_line: bytes  # the input header's own bytes plus the added columns, with "\n"
    tail: bytes  # `,<model version>\n`, the end of every output line

    @property
    def field_count(self) -> int:
        return len(self.header)


def _column_positions(header: list[str]) -> dict[str, int]:
    positions: dict[str, int] = {}
    for position, name in enumerate(header):
        positions.setdefault(name, position)
    return positions


def _check_columns(header: list[str], signature: tuple[ColumnSpec, ...], positions: dict[str, int]) -> None:
    missing = [c.name for c in signature if c.required and c.name not in positions]
    if missing:
        raise_if_wrong_separator(header, missing)
        raise InputError(
            f"the header is missing required column(s): {', '.join(missing)}",
            code="missing_columns",
        )
    # Counter, not list.count per name: a wide header must cost linear time.
    counts = Counter(header)
    duplicated = sorted({c.name for c in signature if counts[c.name] > 1})
    if duplicated:
        raise InputError(f"the header repeats model column(s): {', '.join(duplicated)}", code="duplicate_columns")


def _probability_classes(model: LoadedModel, probabilities: bool) -> list[Any] | None:
    if not probabilities:
        return None
    classes = model.classes
    if classes is None:
        raise InputError(
            f"MLSERVE_BATCH_PROBABILITIES is on but model {model.identity.name} has no predict_proba",
            code="probabilities_unsupported",
        )
    return classes


def plan_header(
    header: list[str], header_raw: bytes, model: LoadedModel, *, probabilities: bool, escape_formulas: bool
) -> HeaderPlan:
    """The plan for a file with this header, or InputError (missing or repeated model
    columns, probabilities asked of a model without predict_proba)."""
    signature: tuple[ColumnSpec, ...] = model.spec.inputs
    by_name = _column_positions(header)
    _check_columns(header, signature, by_name)
    classes = _probability_classes(model, probabilities)
    present = tuple(c for c in signature if c.name in by_name)
    positions = [by_name[c.name] for c in present]
    added = ["prediction", *(f"probability_{c}" for c in classes or []), "model_version"]
    return HeaderPlan(
        header=header,
        signature=signature,
        present=present,
        positions=positions,
        absent=tuple(c for c in signature if c.name not in by_name),
        classes=classes,
        output_columns=[*header, *added],
        passthrough=sorted(set(range(len(header))) - set(positions)) if escape_formulas else [],
        header_line=header_raw + ("," + ",".join(csv_field(c) for c in added) + "\n").encode(),
        tail=("," + csv_field(model.identity.version) + "\n").encode(),
    )
