"""Whole-column conversion of CSV text to the signature's dtypes, finding bad cells
vectorized. Per-row Python work happens only for the rows that are bad.

The result matches what `mlserve.scoring.column_array` builds for the API (same dtypes,
missing -> NaN/None), so a row scores the same in batch as online.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlserve.csv_cells import FALSE_STRINGS, MISSING_TEXT, NUMERIC_TYPES, TRUE_STRINGS, empty_is_missing
from mlserve.mlmodel import ColumnSpec
from mlserve.schema import NUMPY_DTYPES


@dataclass(frozen=True)
class CellProblem:
    reason: str  # stable code, used to count rejections
    message: str


MISSING = CellProblem("missing_value", "a value is required")
NOT_A_NUMBER = CellProblem("invalid_number", "not a number")
NOT_FINITE = CellProblem("not_finite", "must be a finite number")
NOT_AN_INTEGER = CellProblem("invalid_integer", "not an integer")
NOT_A_BOOLEAN = CellProblem("invalid_boolean", "not a boolean (use true/false or 1/0)")
NOT_A_DATETIME = CellProblem("invalid_datetime", "not a date/time")


def parse_columns(data: bytes, positions: list[int], columns: tuple[ColumnSpec, ...]) -> pd.DataFrame:
    """Parse only the signature's columns (by position) with pandas' C parser.

    Empty cells are missing, except in string columns where "" is a value (as in the API);
    "nan"/"NA" and friends are NOT treated as missing - they are reported as bad values.
    """
    string_positions = {p for p, c in zip(positions, columns, strict=True) if not empty_is_missing(c.type)}
    frame = pd.read_csv(
        io.BytesIO(data),
        header=None,
        usecols=positions,
        dtype={p: object for p in string_positions} or None,
        keep_default_na=False,
        na_values={p: [MISSING_TEXT] for p in positions if p not in string_positions},
        skip_blank_lines=False,
        engine="c",
        # Records were split on LF only (CR of CRLF already stripped): a stray CR is data,
        # as it is for our splitter, so both agree on the row count.
        lineterminator="\n",
        encoding="utf-8",
        low_memory=False,
    )
    return frame


def convert_column(values: pd.Series, column: ColumnSpec) -> tuple[np.ndarray, np.ndarray, list[CellProblem]]:
    """(array for the model, per-row problem index or -1, problems) for one column."""
    problems: list[CellProblem] = []
    code = np.full(len(values), -1, dtype=np.int8)

    def flag(mask: np.ndarray, problem: CellProblem) -> None:
        mask = mask & (code < 0)
        if mask.any():
            code[mask] = len(problems)
            problems.append(problem)

    kind = column.type
    missing = values.isna().to_numpy()
    if kind in NUMERIC_TYPES:
        if values.dtype.kind not in "iufb":
            # Text in the column (pandas 3 infers `str`, older pandas `object`).
            numbers = pd.to_numeric(values.astype(object), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            flag(np.isnan(numbers) & ~missing, NOT_A_NUMBER)
        elif values.dtype.kind == "b":
            # The whole column read as true/false: booleans are not numbers (as in the API).
            numbers = np.full(len(values), np.nan)
            flag(~missing, NOT_A_NUMBER)
        else:
            numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
        flag(np.isinf(numbers), NOT_FINITE)
        if kind in ("long", "integer"):
            with np.errstate(invalid="ignore"):
                flag(np.isfinite(numbers) & (numbers != np.round(numbers)), NOT_AN_INTEGER)
            if values.dtype.kind in "iu":
                numbers = values.to_numpy()  # keep exact int64 (floats lose precision > 2**53)
        if column.required:
            flag(missing, MISSING)
        return numbers, code, problems
    if kind == "boolean":
        lowered = values.astype("string").str.strip().str.lower()  # as csv_cells.boolean_text
        truthy = lowered.isin(TRUE_STRINGS).to_numpy(dtype=bool, na_value=False)
        falsy = lowered.isin(FALSE_STRINGS).to_numpy(dtype=bool, na_value=False)
        flag(~truthy & ~falsy & ~missing, NOT_A_BOOLEAN)
        if column.required:
            flag(missing, MISSING)
        array = truthy.astype(object)
        array[missing] = None
        return array, code, problems
    if kind == "string":
        array = values.to_numpy(dtype=object)
        return array, code, problems
    if kind == "datetime":
        # utc=True: offsets are converted (and may differ row to row); naive values stay
        # as written, the same rule as the online API.
        parsed = pd.to_datetime(values, errors="coerce", format="ISO8601", utc=True).dt.tz_localize(None)
        flag(parsed.isna().to_numpy() & ~missing, NOT_A_DATETIME)
        if column.required:
            flag(missing, MISSING)
        return parsed.to_numpy(dtype="datetime64[ns]"), code, problems
    raise ValueError(f"unsupported column type {kind!r}")


def finalize(array: np.ndarray, column: ColumnSpec) -> np.ndarray:
    """The dtype `column_array` would give these (already validated) rows."""
    kind = column.type
    if kind in NUMERIC_TYPES:
        if array.dtype.kind == "f" and np.isnan(array).any():
            return array.astype(np.float64, copy=False)  # gaps: NaN, as imputers expect
        return array.astype(NUMPY_DTYPES[kind], copy=False)
    if kind == "boolean":
        if any(v is None for v in array):
            return array
        return array.astype(np.bool_)
    return array
