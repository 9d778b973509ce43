"""Overlap S3 I/O with scoring inside one function, with bounded memory.

The scorer is CPU-bound (parse, convert, predict, format) while GetObject and UploadPart
are network waits; run sequentially they add up. Two small wrappers overlap them:

- ``ReadAhead``: a thread reads the input stream ``depth`` blocks ahead of the scorer
  (memory: depth x block, 2 x 4 MiB by default);
- ``BackgroundPartsSink``: an ``S3MultipartSink`` whose parts are uploaded by one
  background thread, at most ``in_flight`` parts queued (memory: in_flight x part size);
- ``WriteBehind``: the same for any sink (local files: ``mlserve score``, its ``--workers``).

Both keep the output identical (same bytes, same part order) and every error surfaces in
the scorer's thread (on the next read, or at commit), so the job's failure handling and
reports are unchanged. pyarrow's multithreaded CSV reader was measured and not used in
Lambda: 151 MB unzipped for the aarch64 cp314 wheel (pyarrow 26.0.1), against a 250 MB
limit the deps layer already nearly fills (docs/performance.md).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from mlserve.batch.output import S3MultipartSink, Sink

READ_AHEAD_BLOCK_BYTES = 4 * 1024 * 1024


class ReadAhead:
    """`.read(n)` over `source`, filled by a background thread `depth` blocks ahead."""

    def __init__(self, source: Any, *, block_bytes: int = READ_AHEAD_BLOCK_BYTES, depth: int = 2) -> None:
        self._source = source
        self._block_bytes = block_bytes
        self._blocks: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._pending = b""
        self._offset = 0
        self._eof = False
        self._thread = threading.Thread(target=self._fill, name="mlserve-read-ahead", daemon=True)
        self._thread.start()

    def _put(self, item: bytes | BaseException) -> bool:
        while not self._stop.is_set():
            try:
                self._blocks.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def _fill(self) -> None:
        try:
            while not self._stop.is_set():
                block = bytes(self._source.read(self._block_bytes))
                if not self._put(block) or not block:
                    return
        except BaseException as exc:  # handed to the reader, raised in its thread
            self._put(exc)

    def read(self, n: int = -1) -> bytes:
        if self._offset >= len(self._pending):
            if self._eof:
                return b""
            item = self._blocks.get()
            if isinstance(item, BaseException):
                self._eof = True
                raise item
            if not item:
                self._eof = True
                return b""
            self._pending, self._offset = item, 0
        if n is None or n < 0:
            n = len(self._pending) - self._offset
        data = self._pending[self._offset : self._offset + n]
        self._offset += len(data)
        return data

    def close(self) -> None:
        self._stop.set()


class _WriteQueue:
    """Calls `write(data)` in order on one background thread, at most `in_flight` queued
    (bounded memory); a failed call is raised in the caller's thread, on the next `submit`
    or at `drain`."""

    def __init__(self, write: Callable[[bytes], None], *, in_flight: int, thread_name: str) -> None:
        self._write = write
        self._in_flight = max(1, in_flight)
        self._thread_name = thread_name
        self._executor: ThreadPoolExecutor | None = None
        self._futures: deque[Future[None]] = deque()

    def submit(self, data: bytes) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self._thread_name)
        while self._futures and (len(self._futures) >= self._in_flight or self._futures[0].done()):
            self._futures.popleft().result()  # bounded memory; raises a failed write here
        self._futures.append(self._executor.submit(self._write, data))

    def drain(self, *, raise_errors: bool) -> None:
        while self._futures:
            future = self._futures.popleft()
            if raise_errors:
                future.result()
            else:
                with contextlib.suppress(Exception):  # aborting anyway
                    future.result()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None


class BackgroundPartsSink(S3MultipartSink):
    """An S3MultipartSink whose writes (buffering, and the part uploads they trigger) run in
    one background thread, at most `in_flight` writes queued, while the scorer formats the
    next chunk. Same parts in the same order; an upload error is raised on the next write or
    at commit, in the caller's thread."""

    def __init__(self, *args: Any, in_flight: int = 2, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._queue = _WriteQueue(super().write, in_flight=in_flight, thread_name="mlserve-upload")

    def write(self, data: bytes) -> None:
        self._queue.submit(data)

    def commit(self) -> None:
        self._queue.drain(raise_errors=True)
        super().commit()

    def abort(self) -> None:
        self._queue.drain(raise_errors=False)
        super().abort()


class WriteBehind:
    """Any sink, its writes done by one background thread (at most `in_flight` queued) while
    the scorer parses the next chunk - for local files, where a write is a copy into the page
    cache that releases the GIL. Same bytes in the same order; a write error is raised on the
    next write, at `drain` or at commit, in the caller's thread."""

    def __init__(self, sink: Sink, *, in_flight: int = 2) -> None:
        self._sink = sink
        self._queue = _WriteQueue(sink.write, in_flight=in_flight, thread_name="mlserve-write")

    def write(self, data: bytes) -> None:
        self._queue.submit(data)

    def drain(self, *, raise_errors: bool = True) -> None:
        """Wait for every queued write (then the wrapped sink holds all bytes written so far)."""
        self._queue.drain(raise_errors=raise_errors)

    def commit(self) -> None:
        self.drain()
        self._sink.commit()

    def abort(self) -> None:
        self.drain(raise_errors=False)
        self._sink.abort()
