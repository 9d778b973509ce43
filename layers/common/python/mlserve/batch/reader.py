"""Split a CSV byte stream into chunks of whole records, vectorized.

The hot path never builds one Python object per cell: record boundaries and field
counts come from numpy over the raw bytes (a newline ends a record only when the number
of quotes before it is even - RFC 4180 quoting, where an escaped quote `""` adds two).
Each record keeps its raw bytes so extra columns can be passed through untouched.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlserve.batch.limits import BatchLimits, BoundedReader, CountingFile, CountingRaw, limit_error
from mlserve.errors import InputError

BOM = b"\xef\xbb\xbf"
GZIP_MAGIC = b"\x1f\x8b"
NL, QUOTE, COMMA, CR = 10, 34, 44, 13
DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024


def open_binary(source: Any, limits: BatchLimits | None = None) -> io.BufferedReader:
    """A buffered binary stream over `source`, transparently un-gzipped (detected by the
    magic bytes, not the key, so a mislabelled file still works) and bounded by `limits`
    (total and decompression ratio, checked while reading). `stream.raw` is the
    BoundedReader: its `bytes_read` is how far the input was read."""
    limits = limits or BatchLimits()
    wire = CountingRaw(source)
    peekable = io.BufferedReader(wire, buffer_size=1024 * 1024)
    compressed = peekable.peek(2)[:2] == GZIP_MAGIC
    if not compressed:
        return io.BufferedReader(BoundedReader(peekable, wire, limits, False), buffer_size=1024 * 1024)
    consumed = CountingFile(peekable)  # compressed bytes the decompressor really took
    inner = gzip.GzipFile(fileobj=consumed, mode="rb")  # type: ignore[call-overload]
    return io.BufferedReader(BoundedReader(inner, consumed, limits, True), buffer_size=1024 * 1024)


def is_gzip_file(path: Any) -> bool:
    """Whether a local file is gzip, reading its first two bytes only."""
    with open(path, "rb") as handle:
        return handle.read(2) == GZIP_MAGIC


@dataclass
class Chunk:
    """Complete records from one block of input.

    `data` holds the records back to back; record i is data[starts[i]:ends[i]] without its
    line terminator. `first_line` is the 1-based physical line number where `data` starts.
    """

    data: bytes
    starts: np.ndarray
    ends: np.ndarray
    fields: np.ndarray  # number of fields per record (unquoted commas + 1)
    newlines: np.ndarray  # offsets of every newline in `data`, for line numbers
    first_line: int
    unterminated: bool = False  # the last record of the file ends inside a quoted field

    def __len__(self) -> int:
        return len(self.starts)

    def record(self, i: int) -> bytes:
        return self.data[self.starts[i] : self.ends[i]]

    def line_of(self, i: int) -> int:
        return self.first_line + int(np.searchsorted(self.newlines, self.starts[i]))


def _split(data: bytes, final: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, bool]:
    """Record starts/ends/field counts in `data`; returns how many bytes were consumed."""
    arr = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(arr == NL)
    if b'"' in data:
        # uint8 cumsum wraps at 256, which keeps the parity right and the memory small.
        outside = (np.cumsum(arr == QUOTE, dtype=np.uint8) & 1) == 0
        boundaries = newlines[outside[newlines]]
        commas = np.flatnonzero((arr == COMMA) & outside)
        open_quote = bool(not outside[-1]) if len(arr) else False
    else:
        boundaries = newlines
        commas = np.flatnonzero(arr == COMMA)
        open_quote = False
    consumed = int(boundaries[-1]) + 1 if len(boundaries) else 0
    ends = boundaries
    if final and consumed < len(data):
        ends = np.append(boundaries, len(data))
        consumed = len(data)
    starts = np.empty_like(ends)
    if len(ends):
        starts[0] = 0
        starts[1:] = ends[:-1] + 1
    # Commas before each record's end; a record's own count is the difference with the
    # previous record's (no comma sits on a boundary newline): one search instead of two.
    commas_before_end = np.searchsorted(commas, ends)
    fields = np.diff(commas_before_end, prepend=0) + 1
    # Strip the CR of CRLF line ends (only where a newline ended the record).
    ends = ends.copy()
    if len(ends):
        has_cr = np.zeros(len(ends), dtype=bool)
        valid = ends > starts
        has_cr[valid] = arr[ends[valid] - 1] == CR
        ends[has_cr] -= 1
    return starts, ends, fields, newlines[newlines < consumed], consumed, open_quote and final


def _too_long(what: str, limit: int, line: int) -> Exception:
    return limit_error(
        "record_too_long",
        f"{what} starting at line {line} is longer than {limit} bytes",
        "MLSERVE_BATCH_MAX_RECORD_BYTES / context batch_max_record_bytes",
    )


def _check_record_lengths(starts: np.ndarray, ends: np.ndarray, limit: int, first_line: int) -> None:
    if len(starts):
        lengths = ends - starts
        longest = int(np.argmax(lengths))
        if int(lengths[longest]) > limit:
            raise _too_long(f"record {longest + 1} of the block", limit, first_line)


def iter_chunks(
    stream: io.BufferedIOBase, chunk_bytes: int = DEFAULT_CHUNK_BYTES, limits: BatchLimits | None = None
) -> tuple[list[str], bytes, Iterator[Chunk]]:
    """Read the header, then yield chunks of whole records.

    Returns (column names, the header's raw bytes, chunk iterator). Raises InputError for
    an empty file or a header that is not valid UTF-8 CSV, and LimitExceeded for a record
    longer than `limits.max_record_bytes` or a header wider than `limits.max_columns` -
    detected while reading, so one endless line never has to fit in memory.
    """
    limits = limits or BatchLimits()
    max_record = limits.max_record_bytes
    pieces = [stream.read(chunk_bytes)]
    if pieces[0].startswith(BOM):
        pieces[0] = pieces[0][len(BOM) :]
    held = len(pieces[0])
    # The header may be longer than a block (very wide files): read until it ends, keeping
    # the blocks in a list (no re-copy per block) and joining only when a newline arrived.
    while True:
        buffer = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        pieces = [buffer]
        starts, ends, fields, _, consumed, _ = _split(buffer, final=False)
        if len(starts) or not buffer:
            break
        while True:
            if held > max_record:
                raise _too_long("the header row", max_record, 1)
            more = stream.read(chunk_bytes)
            if not more or b"\n" in more:
                break
            pieces.append(more)
            held += len(more)
        if not more:
            buffer = b"".join(pieces)
            starts, ends, fields, _, consumed, _ = _split(buffer, final=True)
            break
        pieces.append(more)
        held += len(more)
    if not len(starts) or not buffer.strip():
        raise InputError("the file is empty: it has no header row", code="empty_file")
    if int(ends[0] - starts[0]) > max_record:
        raise _too_long("the header row", max_record, 1)
    if int(fields[0]) > limits.max_columns:
        # Counted from the raw bytes (unquoted commas), before any per-column Python work.
        raise limit_error(
            "too_many_columns",
            f"the header has {int(fields[0])} columns, more than {limits.max_columns}",
            "MLSERVE_BATCH_MAX_COLUMNS / context batch_max_columns",
        )
    header_raw = buffer[starts[0] : ends[0]]
    try:
        header = next(csv.reader([header_raw.decode("utf-8")]))
    except UnicodeDecodeError as exc:
        raise InputError(f"the header row is not valid UTF-8: {exc}", code="bad_header") from None
    except (csv.Error, StopIteration) as exc:
        raise InputError(f"the header row is not valid CSV: {exc}", code="bad_header") from None
    if not any(h.strip() for h in header):
        raise InputError("the header row is blank", code="bad_header")
    rest = buffer[int(starts[1]) if len(starts) > 1 else consumed :]
    line = 1 + header_raw.count(b"\n") + 1

    def chunks() -> Iterator[Chunk]:
        nonlocal line
        # The unfinished record carried over, as a list of blocks: a record that spans many
        # blocks is joined once when its end may have arrived, never re-copied per block.
        pending = [rest] if rest else []
        pending_bytes = len(rest)
        eof = False
        while not eof:
            block = stream.read(chunk_bytes)
            eof = not block
            if block and pending and b"\n" not in block:
                pending.append(block)
                pending_bytes += len(block)
                if pending_bytes > max_record:
                    raise _too_long("a record", max_record, line)
                continue
            if block:
                pending.append(block)
            data = pending[0] if len(pending) == 1 else b"".join(pending)
            pending, pending_bytes = [], 0
            if not data:
                return
            s, e, f, nls, consumed, unterminated = _split(data, final=eof)
            if consumed == 0:
                if len(data) > max_record:
                    raise _too_long("a record", max_record, line)
                pending, pending_bytes = [data], len(data)  # one record longer than a block: keep reading
                continue
            _check_record_lengths(s, e, max_record, line)
            body = data[:consumed] if consumed < len(data) else data
            if consumed < len(data):
                tail = data[consumed:]
                if len(tail) > max_record:
                    raise _too_long("a record", max_record, line + len(nls))
                pending, pending_bytes = [tail], len(tail)
            yield Chunk(body, s, e, f, nls, line, unterminated)
            line += len(nls)

    return header, header_raw, chunks()
