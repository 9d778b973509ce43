"""Bounds on what one batch input may cost, whatever its content.

Every limit has a stable error code, the setting that changes it (an MLSERVE_* environment
variable, set by the stack from a `cdk.json` context key) and ends the job with a `failed`
report that says how far it got, instead of a killed or timed-out function with no report.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from mlserve.config import env_number
from mlserve.contract import Env
from mlserve.errors import InputError, MlserveError

GIB = 1024**3
MIB = 1024**2
DEFAULT_MAX_BYTES = 10 * GIB  # decompressed input bytes (context batch_max_bytes)
DEFAULT_MAX_RECORD_BYTES = 1 * MIB  # one CSV record (context batch_max_record_bytes)
DEFAULT_MAX_COLUMNS = 10_000  # header columns (context batch_max_columns)
# gzip of real CSVs is ~3-20x, of very repetitive ones up to ~200x; zlib's ceiling is ~1032x.
DEFAULT_MAX_RATIO = 200.0  # decompressed / compressed bytes (context batch_max_decompression_ratio)
# The ratio is checked only past this many decompressed bytes: small repetitive files pass.
DEFAULT_RATIO_GRACE_BYTES = 64 * MIB
DEFAULT_DEADLINE_MARGIN_SECONDS = 60.0  # stop this long before the Lambda deadline


@dataclass(frozen=True)
class BatchLimits:
    max_bytes: int = DEFAULT_MAX_BYTES
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    max_columns: int = DEFAULT_MAX_COLUMNS
    max_ratio: float = DEFAULT_MAX_RATIO
    ratio_grace_bytes: int = DEFAULT_RATIO_GRACE_BYTES
    deadline_margin_seconds: float = DEFAULT_DEADLINE_MARGIN_SECONDS

    @classmethod
    def from_env(cls) -> BatchLimits:
        return cls(
            max_bytes=int(env_number(Env.BATCH_MAX_BYTES, DEFAULT_MAX_BYTES, minimum=1)),
            max_record_bytes=int(env_number(Env.BATCH_MAX_RECORD_BYTES, DEFAULT_MAX_RECORD_BYTES, minimum=64)),
            max_columns=int(env_number(Env.BATCH_MAX_COLUMNS, DEFAULT_MAX_COLUMNS, minimum=1)),
            max_ratio=env_number(Env.BATCH_MAX_DECOMPRESSION_RATIO, DEFAULT_MAX_RATIO, minimum=1),
            ratio_grace_bytes=int(env_number(Env.BATCH_RATIO_GRACE_BYTES, DEFAULT_RATIO_GRACE_BYTES)),
            deadline_margin_seconds=env_number(Env.BATCH_DEADLINE_MARGIN_SECONDS, DEFAULT_DEADLINE_MARGIN_SECONDS),
        )


class LimitExceeded(InputError):
    """The input passed a configured bound. Deterministic: a retry would fail the same way,
    so the job ends `failed` (with the limit named) and is not retried."""


class DeadlineReached(MlserveError):
    """The invocation is about to time out; stopped cleanly so a report and marker exist."""


def limit_error(code: str, message: str, setting: str) -> LimitExceeded:
    return LimitExceeded(f"{message} (limit set by {setting})", code=code, status=413)


class CountingRaw(io.RawIOBase):
    """Any object with `.read(n)` (botocore's StreamingBody included) as a raw stream that
    counts the bytes it delivered, so it can sit under io.BufferedReader / gzip.GzipFile."""

    def __init__(self, source: Any) -> None:
        self._source = source
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._source.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.bytes_read += n
        return n


class CountingFile:
    """`.read(n)` passthrough counting what the gzip decompressor actually consumed (it asks
    for ~128 KiB at a time), so the expansion ratio is not diluted by read-ahead."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        data: bytes = self._inner.read(size)
        self.bytes_read += len(data)
        return data


class BoundedReader(io.RawIOBase):
    """The (decompressed) stream, refusing to deliver more than `max_bytes` in total or more
    than `max_ratio` times what was read from the wire (a gzip bomb), checked on every read so
    the failure comes before the bytes are processed, not after."""

    def __init__(self, inner: Any, wire: CountingRaw | CountingFile, limits: BatchLimits, compressed: bool) -> None:
        self._inner = inner
        self._wire = wire
        self._limits = limits
        self._compressed = compressed
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        limits = self._limits
        # Ask for one byte past the limit at most, so a file of exactly max_bytes passes.
        want = min(len(buffer), limits.max_bytes + 1 - self.bytes_read)
        if want <= 0:
            raise self._too_many_bytes()
        data = self._inner.read(want)
        n = len(data)
        buffer[:n] = data
        self.bytes_read += n
        if self.bytes_read > limits.max_bytes:
            raise self._too_many_bytes()
        if (
            self._compressed
            and self.bytes_read > limits.ratio_grace_bytes
            and self.bytes_read > limits.max_ratio * max(self._wire.bytes_read, 1)
        ):
            raise limit_error(
                "decompression_ratio_exceeded",
                f"the gzip input expands more than {limits.max_ratio:g}x "
                f"({self._wire.bytes_read} compressed bytes gave over {self.bytes_read}): refusing a likely gzip bomb",
                "MLSERVE_BATCH_MAX_DECOMPRESSION_RATIO / context batch_max_decompression_ratio",
            )
        return n

    def _too_many_bytes(self) -> LimitExceeded:
        return limit_error(
            "input_too_large",
            f"the input is larger than {self._limits.max_bytes} bytes"
            + (" once decompressed" if self._compressed else ""),
            "MLSERVE_BATCH_MAX_BYTES / context batch_max_bytes",
        )
