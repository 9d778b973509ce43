"""Stage 3 of scoring a CSV: the screened records of one chunk -> the columns the model sees.

Only the signature's columns are parsed; cells that do not convert reject their row (the
report names the column and echoes the value as typed); optional columns the file lacks
are missing in every row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mlserve.batch.convert import CellProblem, convert_column, finalize, parse_columns
from mlserve.batch.header_plan import HeaderPlan
from mlserve.batch.reader import Chunk
from mlserve.batch.screening import RowProblems, ScreenedChunk
from mlserve.csv_hints import rejected_value
from mlserve.mlmodel import ColumnSpec


@dataclass
class ConvertedRows:
    rows: np.ndarray  # indexes (in the chunk) of the records to score
    columns: dict[str, Any]  # column name -> array for those rows


def model_frame(signature: tuple[ColumnSpec, ...], columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """The frame the model sees. All-float64 columns (the common numeric case) become one 2-D
    block up front, which spares pandas a per-column block build and consolidation."""
    arrays = [columns[c.name] for c in signature]
    names = [c.name for c in signature]
    if arrays and all(a.dtype == np.float64 for a in arrays):
        return pd.DataFrame(np.column_stack(arrays), columns=names, copy=False)
    return pd.DataFrame(dict(zip(names, arrays, strict=True)), copy=False)


def _parser_input(chunk: Chunk, parse_rows: np.ndarray) -> bytes:
    if len(parse_rows) == len(chunk) and b"\r" not in chunk.data:
        return chunk.data  # every record, LF lines: parse the chunk as it is
    return b"\n".join(chunk.record(i) for i in parse_rows.tolist())


def _report_cells(
    problems: RowProblems,
    chunk: Chunk,
    parse_rows: np.ndarray,
    column: ColumnSpec,
    position: int,
    cells: pd.Series,
    code: np.ndarray,
    cell_problems: list[CellProblem],
) -> np.ndarray:
    """Add a report entry per bad cell of one column; returns the mask of bad rows."""
    bad = code >= 0
    for j in np.flatnonzero(bad).tolist():
        problem = cell_problems[code[j]]
        index = int(parse_rows[j])
        problems.setdefault(index, []).append(
            {
                "column": column.name,
                "reason": problem.reason,
                "message": problem.message,
                "value": rejected_value(cells.iat[j], chunk.record(index), position),
            }
        )
    return bad


def _absent_column(column: ColumnSpec, count: int) -> np.ndarray:
    if column.type == "string":
        return np.full(count, None, dtype=object)
    return finalize(np.full(count, np.nan), column)


def convert_rows(chunk: Chunk, plan: HeaderPlan, screened: ScreenedChunk) -> ConvertedRows:
    """Parse and convert the rows that passed screening; rows with a bad cell are added to
    `screened.problems` and left out of the result."""
    parse_rows = screened.parse_rows()
    if not len(parse_rows):
        return ConvertedRows(parse_rows, {})
    parsed = parse_columns(_parser_input(chunk, parse_rows), plan.positions, plan.present)
    if len(parsed) != len(parse_rows):  # a parser disagreement is a bug, never silent
        raise RuntimeError(f"CSV parser returned {len(parsed)} rows for {len(parse_rows)} records")
    ok = np.ones(len(parse_rows), dtype=bool)
    converted = []
    for column, position in zip(plan.present, plan.positions, strict=True):
        array, code, cell_problems = convert_column(parsed[position], column)
        converted.append(array)
        if cell_problems:
            ok &= ~_report_cells(
                screened.problems, chunk, parse_rows, column, position, parsed[position], code, cell_problems
            )
    rows = parse_rows[ok]
    columns: dict[str, Any] = {
        column.name: finalize(array[ok], column) for column, array in zip(plan.present, converted, strict=True)
    }
    for column in plan.absent:
        columns[column.name] = _absent_column(column, len(rows))
    return ConvertedRows(rows, columns)
