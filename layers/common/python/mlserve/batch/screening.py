"""Stage 2 of scoring a CSV: screen one chunk's records before any cell is parsed.

Blank lines are skipped (not counted); a record with the wrong number of fields, an
unclosed quote at the end of the file or bytes that are not UTF-8 is rejected as a whole,
so the parser only ever sees well-formed records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mlserve.batch.reader import Chunk

# Problems by record index within the chunk, each a report entry
# {"column", "reason", "message"[, "value"]}; rows of this dict are rejected.
RowProblems = dict[int, list[dict[str, Any]]]


@dataclass
class ScreenedChunk:
    record_numbers: np.ndarray  # per record index: its 1-based data-record number in the file
    nonblank: np.ndarray  # indexes of the records that count as rows
    problems: RowProblems  # records rejected whole, added to by the conversion stage

    def parse_rows(self) -> np.ndarray:
        """The non-blank records that passed screening, in order."""
        if not self.problems:
            return self.nonblank
        return np.asarray([i for i in self.nonblank.tolist() if i not in self.problems], dtype=np.int64)


def bad_utf8(chunk: Chunk, candidates: np.ndarray) -> np.ndarray:
    """Indexes (among `candidates`) of records that are not valid UTF-8."""
    if chunk.data.isascii():
        return np.empty(0, dtype=np.int64)
    try:
        chunk.data.decode("utf-8")
        return np.empty(0, dtype=np.int64)
    except UnicodeDecodeError:
        pass
    # Slow path, only for a chunk that holds bad bytes. UTF-8 multi-byte sequences never
    # contain newline, quote or comma bytes, so record boundaries are still right.
    bad = []
    for i in candidates.tolist():
        try:
            chunk.record(i).decode("utf-8")
        except UnicodeDecodeError:
            bad.append(i)
    return np.asarray(bad, dtype=np.int64)


def _whole_record(reason: str, message: str) -> dict[str, Any]:
    return {"column": None, "reason": reason, "message": message}


def screen_chunk(chunk: Chunk, field_count: int, rows_before: int) -> ScreenedChunk:
    """Number the chunk's rows (continuing from `rows_before`) and reject malformed records."""
    blank = chunk.ends == chunk.starts
    record_numbers = rows_before + np.cumsum(~blank)
    nonblank = np.flatnonzero(~blank)
    problems: RowProblems = {}
    ragged = nonblank[chunk.fields[nonblank] != field_count]
    for i in ragged.tolist():
        problems[i] = [
            _whole_record("wrong_field_count", f"has {int(chunk.fields[i])} fields, the header has {field_count}")
        ]
    last = len(chunk) - 1
    if chunk.unterminated and len(nonblank) and nonblank[-1] == last:
        # Replaces a field-count complaint: the open quote is why the count is off.
        problems[last] = [
            _whole_record("unterminated_quote", "a quoted field is not closed before the end of the file")
        ]
    for i in bad_utf8(chunk, nonblank).tolist():
        problems.setdefault(i, []).append(_whole_record("invalid_utf8", "not valid UTF-8"))
    return ScreenedChunk(record_numbers=record_numbers, nonblank=nonblank, problems=problems)
