"""MLflow's scoring protocol (`/invocations`) -> rows, so existing MLflow clients work.

Accepted JSON bodies, as `mlflow models serve` accepts them:
    {"dataframe_split": {"columns": [...], "data": [[...], ...]}}
    {"dataframe_records": [{...}, ...]}
    {"instances": [{...}, ...]}  or  [[...], ...] (positional, signature order)
    {"inputs": ...}              same as instances, or {"col": [values, ...], ...}
and `text/csv` bodies with a header row.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson

from mlserve.csv_cells import cell_value
from mlserve.csv_hints import raise_if_wrong_separator
from mlserve.errors import ErrorDetail, InputError

FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def _bad(message: str, loc: list[str | int], code: str = "invalid_payload", status: int = 422) -> InputError:
    return InputError(message, code=code, status=status, details=[ErrorDetail(loc, message)])


def parse_json(body: bytes) -> Any:
    if not body.strip():
        raise _bad("the request body is empty", ["body"], code="empty_body", status=400)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _bad(f"malformed JSON: {exc}", ["body"], code="malformed_json", status=400) from None


def _positional(rows: list[Any], columns: list[str], loc: list[str | int]) -> list[dict[str, Any]]:
    result = []
    for index, row in enumerate(rows):
        if not isinstance(row, list):
            raise _bad("each row must be an object or a list of values", [*loc, index])
        if len(row) != len(columns):
            raise _bad(
                f"row has {len(row)} values, the model expects {len(columns)} ({', '.join(columns)})", [*loc, index]
            )
        result.append(dict(zip(columns, row, strict=True)))
    return result


def _rows_or_positional(value: Any, columns: list[str], loc: list[str | int]) -> list[Any]:
    if not isinstance(value, list):
        raise _bad(f"'{loc[0]}' must be a list of rows", loc)
    if value and all(isinstance(row, list) for row in value):
        return _positional(value, columns, loc)
    return value


def too_many_rows(count: int, max_rows: int) -> InputError:
    return InputError(
        f"too many rows: {count} > MLSERVE_MAX_ROWS={max_rows}",
        code="too_many_rows",
        status=413,
        details=[ErrorDetail(["instances"], f"at most {max_rows} rows per request")],
    )


def _check_count(count: int, max_rows: int | None) -> None:
    if max_rows is not None and count > max_rows:
        raise too_many_rows(count, max_rows)


def rows_from_payload(payload: Any, columns: list[str], max_rows: int | None = None) -> list[Any]:
    """Rows (dicts, not yet validated) from a decoded /invocations JSON payload. With
    `max_rows`, the row count is checked before any per-row dict is built."""
    if not isinstance(payload, dict):
        raise _bad(f"the body must be a JSON object with one of: {', '.join(FORMATS)}", ["body"])
    present = [key for key in FORMATS if key in payload]
    if len(present) != 1:
        found = ", ".join(present) if present else ", ".join(sorted(payload)[:5]) or "nothing"
        raise _bad(f"the body must have exactly one of {', '.join(FORMATS)} (found: {found})", ["body"])
    key = present[0]
    value = payload[key]
    if key == "dataframe_split":
        if not isinstance(value, dict) or "data" not in value:
            raise _bad("dataframe_split must be an object with 'columns' and 'data'", [key])
        split_columns = value.get("columns", columns)
        data = value["data"]
        if not isinstance(split_columns, list) or not all(isinstance(c, str) for c in split_columns):
            raise _bad("dataframe_split.columns must be a list of column names", [key, "columns"])
        if not isinstance(data, list):
            raise _bad("dataframe_split.data must be a list of rows", [key, "data"])
        _check_count(len(data), max_rows)
        return _positional(data, split_columns, [key, "data"])
    if key == "dataframe_records":
        if not isinstance(value, list):
            raise _bad("dataframe_records must be a list of objects", [key])
        _check_count(len(value), max_rows)
        return value
    if key == "inputs" and isinstance(value, dict):
        # Columnar: {"col": [v1, v2], ...} (or a single row of scalars).
        if all(isinstance(v, list) for v in value.values()):
            lengths = {len(v) for v in value.values()}
            if len(lengths) > 1:
                raise _bad("all columns of 'inputs' must have the same length", [key])
            count = lengths.pop() if lengths else 0
            _check_count(count, max_rows)
            return [{col: values[i] for col, values in value.items()} for i in range(count)]
        return [value]
    if isinstance(value, list):
        _check_count(len(value), max_rows)
    return _rows_or_positional(value, columns, [key])


def count_csv_records(body: bytes) -> int:
    """Non-blank data records of a CSV body (header excluded), counted over the raw bytes
    with numpy (quote-aware, as the batch reader splits): no per-row Python object."""
    from mlserve.batch.reader import _split

    starts, ends, _, _, _, _ = _split(body, final=True)
    return max(int((ends > starts).sum()) - 1, 0)


def rows_from_csv(body: bytes, column_types: dict[str, str], max_rows: int | None = None) -> list[dict[str, Any]]:
    """CSV with a header; cells are converted by the signature's column type so the same
    schema checks apply as for JSON. A cell that does not convert is left as text and is
    reported by validation, naming the row and column. With `max_rows`, rows are counted
    before any is built: 5 MB of tiny rows is a 413, not millions of dicts."""
    if max_rows is not None:
        _check_count(count_csv_records(body), max_rows)
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _bad(f"CSV body is not UTF-8: {exc}", ["body"], code="bad_encoding", status=400) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise _bad("CSV body is empty", ["body"], code="empty_body", status=400) from None
    except csv.Error as exc:
        raise _bad(f"CSV body is malformed: {exc}", ["body"], status=400) from None
    raise_if_wrong_separator(header, column_types, loc=["body", 1])
    rows = []
    try:
        for line_number, record in enumerate(reader, start=2):
            if not record:
                continue
            if len(record) != len(header):
                raise _bad(
                    f"CSV line {line_number} has {len(record)} fields, the header has {len(header)}",
                    ["body", line_number],
                )
            rows.append(
                {name: csv_cell(value, column_types.get(name)) for name, value in zip(header, record, strict=True)}
            )
    except csv.Error as exc:
        raise _bad(f"CSV body is malformed: {exc}", ["body"], status=400) from None
    return rows


def csv_cell(value: str, column_type: str | None) -> Any:
    """One CSV cell as the signature's type; empty is missing; unconvertible stays text.
    The rules are `mlserve.csv_cells`, which the batch scorer's conversion also follows."""
    return cell_value(value, column_type)
