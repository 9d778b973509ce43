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

from mlserve.errors import InputError

BOM = b"\xef\xbb\xbf"
GZIP_MAGIC = b"\x1f\x8b"
NL, QUOTE, COMMA, CR = 10, 34, 44, 13
DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024


class _RawAdapter(io.RawIOBase):
    """Any object with `.read(n)` (botocore's StreamingBody included) as a raw stream,
    so it can sit under io.BufferedReader / gzip.GzipFile."""

    def __init__(self, source: Any) -> None:
        self._source = source

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._source.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        return n


def open_binary(source: Any) -> io.BufferedIOBase:
    """A buffered binary stream over `source`, transparently un-gzipped (detected by the
    magic bytes, not the key, so a mislabelled file still works)."""
    stream = io.BufferedReader(_RawAdapter(source), buffer_size=1024 * 1024)
    if stream.peek(2)[:2] == GZIP_MAGIC:
        return io.BufferedReader(gzip.GzipFile(fileobj=stream, mode="rb"), buffer_size=1024 * 1024)
    return stream


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
    fields = np.searchsorted(commas, ends) - np.searchsorted(commas, starts) + 1
    # Strip the CR of CRLF line ends (only where a newline ended the record).
    ends = ends.copy()
    if len(ends):
        has_cr = np.zeros(len(ends), dtype=bool)
        valid = ends > starts
        has_cr[valid] = arr[ends[valid] - 1] == CR
        ends[has_cr] -= 1
    return starts, ends, fields, newlines[newlines < consumed], consumed, open_quote and final


def iter_chunks(
    stream: io.BufferedIOBase, chunk_bytes: int = DEFAULT_CHUNK_BYTES
) -> tuple[list[str], bytes, Iterator[Chunk]]:
    """Read the header, then yield chunks of whole records.

    Returns (column names, the header's raw bytes, chunk iterator). Raises InputError for
    an empty file or a header that is not valid UTF-8 CSV.
    """
    buffer = stream.read(chunk_bytes)
    if buffer.startswith(BOM):
        buffer = buffer[len(BOM) :]
    # The header may be longer than a block (very wide files): read until it ends.
    while True:
        starts, ends, _, _, consumed, _ = _split(buffer, final=False)
        if len(starts) or not buffer:
            break
        more = stream.read(chunk_bytes)
        if not more:
            starts, ends, _, _, consumed, _ = _split(buffer, final=True)
            break
        buffer += more
    if not len(starts) or not buffer.strip():
        raise InputError("the file is empty: it has no header row", code="empty_file")
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
        nonlocal rest, line
        pending = rest
        eof = False
        while not eof:
            block = stream.read(chunk_bytes)
            eof = not block
            data = pending + block if block else pending
            if not data:
                return
            s, e, f, nls, consumed, unterminated = _split(data, final=eof)
            if consumed == 0:
                pending = data  # one record longer than a block: keep reading
                continue
            body = data[:consumed] if consumed < len(data) else data
            pending = data[consumed:]
            yield Chunk(body, s, e, f, nls, line, unterminated)
            line += len(nls)

    return header, header_raw, chunks()
