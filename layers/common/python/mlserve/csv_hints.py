"""Say what is really wrong with a CSV a person saved: a spreadsheet's ';'-separated export
(not "30 missing columns"), and a rejected cell as they typed it (`1e400`, not `inf`).

Shared by the batch scorer and `/invocations`' CSV path; only ever runs on a failure path.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable

from mlserve.errors import ErrorDetail, InputError

# Other separators spreadsheets export (Excel uses ';' where ',' is the decimal comma).
OTHER_SEPARATORS = (";", "\t", "|")
MAX_CELL_CHARS = 200


def _unquote(name: str) -> str:
    return name.strip().strip('"').strip()


def separator_hint(header: list[str], expected: Iterable[str]) -> str | None:
    """If most of the expected columns the header lacks appear once its fields are split on
    another separator, the message to give instead of a missing-columns list."""
    present = {_unquote(name) for name in header}
    missing = {name for name in expected if name not in present}
    if not missing:
        return None
    for separator in OTHER_SEPARATORS:
        if not any(separator in name for name in header):
            continue
        names = {_unquote(part) for name in header for part in name.split(separator)}
        if len(missing & names) * 2 > len(missing):
            shown = "tab" if separator == "\t" else repr(separator)
            return f"the file looks like {shown}-separated; save it as comma-separated CSV (',' between fields)"
    return None


def raise_if_wrong_separator(header: list[str], expected: Iterable[str], *, loc: list[str | int] | None = None) -> None:
    """Raise the clear InputError (code wrong_separator) when `separator_hint` finds one."""
    hint = separator_hint(header, expected)
    if hint:
        details = [ErrorDetail(loc, hint)] if loc is not None else []
        raise InputError(hint, code="wrong_separator", details=details)


def typed_cell(record: bytes, position: int) -> str | None:
    """The text of field `position` in one raw CSV record, as it was written (quotes removed).
    None when the record cannot be split so (the caller keeps its own value then)."""
    try:
        fields = next(csv.reader([record.decode("utf-8", errors="replace").rstrip("\r\n")]))
    except (csv.Error, StopIteration):
        return None
    return fields[position][:MAX_CELL_CHARS] if position < len(fields) else None


def rejected_value(parsed: object, record: bytes, position: int) -> str | None:
    """The value to echo for a rejected cell: what was typed when the parser turned it into a
    float (`1e400` became inf, `2.50` 2.5), else the parsed text."""
    import pandas as pd

    if pd.isna(parsed):  # the cell was empty
        return None
    if isinstance(parsed, float):
        typed = typed_cell(record, position)
        if typed is not None:
            return typed
    return str(parsed)[:MAX_CELL_CHARS]
