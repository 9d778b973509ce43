"""The batch scorer (column at a time, pandas) and `/invocations`' CSV path (`csv_cell`, cell
at a time) read a cell by the same rules (`mlserve.csv_cells`): the same text means the same
thing on both paths — missing, a value (the same value), or rejected."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from mlserve.batch.convert import convert_column, parse_columns
from mlserve.csv_cells import FALSE_STRINGS, TRUE_STRINGS
from mlserve.mlmodel import ColumnSpec
from mlserve.protocol import csv_cell

# Cells as written in the file (CSV quoting included) for each column type.
NUMBERS = ["", "1.5", " 1.5", "1.5 ", "+1", "-2", "3", '"3"', "1.5e3", "0", "1"]
NOT_NUMBERS = ["nan", "NaN", "inf", "-inf", "Infinity", "1e400", "1_000", "0x10", "true", "abc", "NA", "null", '"1,5"']
BOOLEANS = ["", "yes", "abc", "nan", "2", "1.5", " TRUE ", '"false"']
BOOLEANS += sorted(TRUE_STRINGS | FALSE_STRINGS) + [s.upper() for s in sorted(TRUE_STRINGS | FALSE_STRINGS)]
STRINGS = ["", "abc", " padded ", "nan", "NA", "1e400", '"quoted, comma"', '"say ""hi"""', "true"]
CASES = (
    [("double", c) for c in NUMBERS + NOT_NUMBERS]
    + [("long", c) for c in ["", "+1", "-2", "3", '"3"', "0", *NOT_NUMBERS, "1.5", " 1.5"]]
    + [("boolean", c) for c in BOOLEANS]
    + [("string", c) for c in STRINGS]
)


def _unquoted(cell: str) -> str:
    return cell[1:-1].replace('""', '"') if cell.startswith('"') else cell


def _scalar_meaning(cell: str, column_type: str) -> tuple[str, Any]:
    """What /invocations makes of the cell: csv_cell, then the schema's rule that numbers are
    finite and typed values are not text."""
    value = csv_cell(_unquoted(cell), column_type)
    if value is None:
        return ("missing", None)
    if isinstance(value, float) and not math.isfinite(value):
        return ("rejected", None)
    if isinstance(value, str) and column_type != "string":
        return ("rejected", None)
    return ("value", value)


def _batch_meaning(cell: str, column_type: str) -> tuple[str, Any]:
    """What the batch scorer makes of the same cell, with a well-formed row before it in the
    chunk (the column's other rows are ordinary values)."""
    column = ColumnSpec("x", column_type, True)
    anchor = {"double": "0.5", "long": "7", "boolean": "true", "string": "x"}[column_type]
    parsed = parse_columns(f"{anchor}\n{cell}\n".encode(), [0], (column,))
    array, code, problems = convert_column(parsed[0], column)
    if code[1] >= 0:
        reason = problems[code[1]].reason
        return ("missing", None) if reason == "missing_value" else ("rejected", None)
    value = array[1]
    return ("value", value.item() if isinstance(value, np.generic) else value)


@pytest.mark.parametrize(("column_type", "cell"), CASES)
def test_a_cell_means_the_same_in_batch_and_invocations(column_type: str, cell: str) -> None:
    assert _batch_meaning(cell, column_type) == _scalar_meaning(cell, column_type)
