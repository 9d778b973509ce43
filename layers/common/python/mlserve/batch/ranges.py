"""Split a plain CSV into byte ranges that start and end on record boundaries.

How a boundary is found: one sequential scan from the start of the file - the only point
known to be outside a quoted field - carrying the quote parity from block to block (numpy
over the raw bytes, the same rule as ``mlserve.batch.reader``: a newline ends a record when
the number of quotes before it is even; an escaped quote ``""`` adds two). A cut is placed
just after the first record-ending newline at or past each target offset, so a quoted
newline can never split a record and the cut agrees exactly with where the single-function
reader would end that record.

Why not seek to the target and guess the quote state there: a CSV position's quote state
is not decidable locally (a ``\\n"`` can open or close a field), and a wrong guess
silently splits a record. The scan costs one read of the file at numpy speed (~1 GB/s per
core plus the S3 read); it is the plan step's whole job, and its limit: the plan step must
read the file once within its own timeout (at ~100 MB/s from S3, ~10 GB in 15 minutes,
which is also the default ``batch_max_bytes``).

The header travels with each range: a range scorer reads ``file[0:header_end]`` (BOM, header
and its line end) followed by ``file[start:end]``, so BOM handling, CRLF and quoted header
fields behave exactly as for the whole file. ``lines_before`` (newlines before ``start``)
turns a range's local line numbers into line numbers of the whole file.

gzip is not splittable (no random access into a deflate stream): a gzip input is never
split here; it stays on the single-function path (see docs/batch.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, BinaryIO

import numpy as np

from mlserve.batch.reader import GZIP_MAGIC, NL, QUOTE

SCAN_BLOCK_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class ByteRange:
    index: int
    start: int  # file offset of the range's first byte: the start of a record
    end: int  # exclusive; the byte after a record-ending newline, or the file size
    lines_before: int  # newlines in file[0:start]

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ByteRange:
        return cls(int(data["index"]), int(data["start"]), int(data["end"]), int(data["lines_before"]))


@dataclass(frozen=True)
class RangePlan:
    size: int
    header_end: int  # offset just after the header's line end (BOM included before it)
    header_lines: int  # newlines in file[0:header_end]
    ranges: list[ByteRange] = field(default_factory=list)


class NotSplittable(ValueError):
    """The input cannot be split into ranges (gzip, or no header line end)."""


def plan_ranges(stream: BinaryIO, range_bytes: int, *, block_bytes: int = SCAN_BLOCK_BYTES) -> RangePlan:
    """Scan `stream` (a plain CSV from its first byte) and cut it into ranges of about
    `range_bytes` of data each (a range is never shorter than `range_bytes` unless it is the
    last one). A file whose header never ends, or that is only a header, is one range."""
    if range_bytes < 1:
        raise ValueError("range_bytes must be positive")
    offset = 0  # file offset of the current block
    newlines_before_block = 0
    parity = 0  # quotes seen so far, mod 2
    header_end: int | None = None
    header_lines = 0
    cuts: list[tuple[int, int]] = []  # (offset, newlines before it)
    next_target = 0
    first = True
    while True:
        block = stream.read(block_bytes)
        if not block:
            break
        if first:
            if block[:2] == GZIP_MAGIC:
                raise NotSplittable("gzip is not splittable")
            first = False
        arr = np.frombuffer(block, dtype=np.uint8)
        newlines = np.flatnonzero(arr == NL)
        quotes = arr == QUOTE
        if quotes.any():
            # uint8 cumsum wraps at 256, which keeps the parity right (as in the reader).
            inside = (np.cumsum(quotes, dtype=np.uint8) + np.uint8(parity)) & 1
            boundaries = newlines[inside[newlines] == 0]
            parity = int(inside[-1])
        else:  # no quote in this block: all its newlines are inside or all outside a field
            boundaries = newlines if parity == 0 else newlines[:0]
        if header_end is None and len(boundaries):
            header_end = offset + int(boundaries[0]) + 1
            header_lines = newlines_before_block + int(np.searchsorted(newlines, boundaries[0], side="right"))
            next_target = header_end + range_bytes
        if header_end is not None:
            while True:
                # The first record end whose following byte is at or past the target.
                at = int(np.searchsorted(boundaries, next_target - 1 - offset, side="left"))
                if at >= len(boundaries):
                    break
                cut_local = int(boundaries[at])
                cut = offset + cut_local + 1
                lines = newlines_before_block + int(np.searchsorted(newlines, cut_local, side="right"))
                cuts.append((cut, lines))
                next_target = cut + range_bytes
        newlines_before_block += len(newlines)
        offset += len(block)
    size = offset
    if header_end is None:
        # No line end outside quotes: header only (or nothing); the scorer says what is wrong.
        return RangePlan(size, size, newlines_before_block, [ByteRange(0, size, size, newlines_before_block)])
    starts = [(header_end, header_lines)] + [c for c in cuts if c[0] < size]
    ranges = []
    for index, (start, lines) in enumerate(starts):
        end = starts[index + 1][0] if index + 1 < len(starts) else size
        ranges.append(ByteRange(index, start, end, lines))
    return RangePlan(size, header_end, header_lines, ranges)
