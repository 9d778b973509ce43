"""Read-ahead and background part uploads: same bytes, bounded, errors in the caller's thread."""

from __future__ import annotations

import io
import random
from typing import Any

import pytest

from mlserve.batch.overlap import BackgroundPartsSink, ReadAhead

MIB = 1024 * 1024
BUCKET = "overlap-test"


class Trickle:
    """A stream returning short, uneven reads (as a network body does)."""

    def __init__(self, data: bytes, fail_after: int | None = None) -> None:
        self._data = io.BytesIO(data)
        self._rng = random.Random(3)
        self._fail_after = fail_after

    def read(self, n: int = -1) -> bytes:
        if self._fail_after is not None and self._data.tell() >= self._fail_after:
            raise ConnectionError("connection reset (injected)")
        return self._data.read(min(n, self._rng.randint(1, 5000)))


@pytest.mark.parametrize("ask", [1, 7, 4096, 1 << 20])
def test_read_ahead_delivers_every_byte_in_order(ask: int) -> None:
    data = bytes(random.Random(1).getrandbits(8) for _ in range(200_000))
    reader = ReadAhead(Trickle(data), block_bytes=3000, depth=2)
    out = bytearray()
    while chunk := reader.read(ask):
        assert len(chunk) <= ask
        out += chunk
    assert bytes(out) == data
    assert reader.read(10) == b""


def test_read_ahead_raises_the_source_error_in_the_reader() -> None:
    reader = ReadAhead(Trickle(b"x" * 100_000, fail_after=20_000), block_bytes=1000)
    with pytest.raises(ConnectionError, match="injected"):
        while reader.read(4096):
            pass


def test_read_ahead_stops_when_closed_early() -> None:
    reader = ReadAhead(io.BytesIO(b"y" * (10 * MIB)), block_bytes=1024, depth=2)
    assert reader.read(10) == b"y" * 10
    reader.close()
    reader._thread.join(timeout=5)
    assert not reader._thread.is_alive()


@pytest.fixture
def bucket(s3: Any) -> Any:
    s3.create_bucket(Bucket=BUCKET)
    return s3


def test_background_parts_are_the_same_object(bucket: Any) -> None:
    payload = [bytes([i % 256]) * (MIB + 12345 * i) for i in range(20)]
    sink = BackgroundPartsSink(bucket, BUCKET, "results/x.csv", part_bytes=5 * MIB, in_flight=2)
    for piece in payload:
        sink.write(piece)
    sink.commit()
    assert bucket.get_object(Bucket=BUCKET, Key="results/x.csv")["Body"].read() == b"".join(payload)


def test_background_sink_small_output_is_one_put_and_abort_leaves_nothing(bucket: Any) -> None:
    small = BackgroundPartsSink(bucket, BUCKET, "results/small.csv")
    small.write(b"a,b\n1,2\n")
    small.commit()
    assert bucket.get_object(Bucket=BUCKET, Key="results/small.csv")["Body"].read() == b"a,b\n1,2\n"
    aborted = BackgroundPartsSink(bucket, BUCKET, "results/gone.csv", part_bytes=5 * MIB)
    for _ in range(3):
        aborted.write(b"z" * (6 * MIB))
    aborted.abort()
    assert "Contents" not in bucket.list_objects_v2(Bucket=BUCKET, Prefix="results/gone")
    assert not bucket.list_multipart_uploads(Bucket=BUCKET).get("Uploads")


def test_a_failed_part_upload_surfaces_and_nothing_appears(bucket: Any) -> None:
    sink = BackgroundPartsSink(bucket, BUCKET, "results/fail.csv", part_bytes=5 * MIB)
    original = bucket.upload_part
    calls = []

    def flaky(**kwargs: Any) -> Any:
        calls.append(kwargs["PartNumber"])
        if kwargs["PartNumber"] == 2:
            raise ConnectionError("upload failed (injected)")
        return original(**kwargs)

    bucket.upload_part = flaky
    with pytest.raises(ConnectionError, match="injected"):
        for _ in range(6):
            sink.write(b"q" * (6 * MIB))
        sink.commit()
    sink.abort()
    assert "Contents" not in bucket.list_objects_v2(Bucket=BUCKET, Prefix="results/fail")
