"""`mlserve score --workers`: the parent scores range 0 into the output itself and appends the
other parts; local writes go through a write-behind thread. Same bytes as one worker, and
nothing appears when any range fails."""

from __future__ import annotations

import dataclasses
import os
import random
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mlserve.batch.core import BatchOptions
from mlserve.batch.job import score_local
from mlserve.batch.limits import BatchLimits
from mlserve.batch.output import LocalFileSink
from mlserve.batch.overlap import WriteBehind
from mlserve.batch.parallel import MIN_LOCAL_RANGE_BYTES, score_local_parallel
from mlserve.live import LiveModel

MIB = 1024 * 1024


def test_append_file_appends_every_byte_after_what_was_written(tmp_path: Path) -> None:
    part = tmp_path / "part.csv"
    payload = random.Random(5).randbytes(3 * MIB + 17)
    part.write_bytes(payload)
    sink = LocalFileSink(tmp_path / "out.csv")
    sink.write(b"head\n")
    sink.append_file(part)
    sink.write(b"tail\n")
    sink.commit()
    assert (tmp_path / "out.csv").read_bytes() == b"head\n" + payload + b"tail\n"


def test_append_file_finishes_through_a_buffer_when_the_kernel_copy_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A filesystem without copy_file_range (or one that stops half way) still gets every byte."""
    part = tmp_path / "part.csv"
    payload = random.Random(6).randbytes(2 * MIB + 3)
    part.write_bytes(payload)
    real = getattr(os, "copy_file_range", None)
    calls = []

    def copy_then_fail(src: int, dst: int, count: int, *args: Any) -> int:
        calls.append(count)
        if len(calls) == 1 and real is not None:
            return int(real(src, dst, 1000))  # a short copy first
        raise OSError(38, "Function not implemented (injected)")

    monkeypatch.setattr(os, "copy_file_range", copy_then_fail, raising=False)
    sink = LocalFileSink(tmp_path / "out.csv")
    sink.write(b"x")
    sink.append_file(part)
    sink.commit()
    assert (tmp_path / "out.csv").read_bytes() == b"x" + payload
    assert calls


class FailingSink:
    def __init__(self, fail_at: int) -> None:
        self.data = bytearray()
        self.fail_at = fail_at
        self.writes = 0
        self.committed = self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes += 1
        if self.writes == self.fail_at:
            raise OSError(28, "No space left on device (injected)")
        self.data += data

    def commit(self) -> None:
        self.committed = True

    def abort(self) -> None:
        self.aborted = True


def test_write_behind_keeps_order_and_bytes() -> None:
    target = FailingSink(fail_at=0)
    sink = WriteBehind(target, in_flight=2)
    blocks = [bytes([i % 251]) * (i * 37 % 5000 + 1) for i in range(300)]
    for block in blocks:
        sink.write(block)
    sink.commit()
    assert bytes(target.data) == b"".join(blocks) and target.committed


def test_write_behind_raises_a_failed_write_in_the_caller_and_never_commits() -> None:
    """A disk-full write in the background thread surfaces in the scorer's thread (on a later
    write or at commit), so the job aborts the output instead of committing a short file."""
    target = FailingSink(fail_at=3)
    sink = WriteBehind(target, in_flight=1)
    with pytest.raises(OSError, match="injected"):
        for _ in range(10):
            sink.write(b"row\n")
        sink.commit()
    sink.abort()
    assert target.aborted and not target.committed


def big_csv(breast_cancer: pd.DataFrame, path: Path, long_record_at: float | None = None) -> bytes:
    """A plain CSV over 2 x MIN_LOCAL_RANGE_BYTES (so --workers 2 really splits it), with one
    over-long record at the given fraction of the rows."""
    data = pd.concat([breast_cancer] * 20, ignore_index=True)
    data.insert(0, "note", ["two\nlines" if i % 5 == 0 else "plain" for i in range(len(data))])
    if long_record_at is not None:
        data.loc[int(len(data) * long_record_at), "note"] = "z" * 300_000
    body = data.to_csv(index=False).encode()
    assert len(body) > 2 * MIN_LOCAL_RANGE_BYTES
    path.write_bytes(body)
    return body


@pytest.mark.parametrize("where", [0.1, 0.9], ids=["in-the-parents-range", "in-a-workers-range"])
def test_a_failed_range_leaves_no_output_and_no_temp_files(
    batch_store: Any, breast_cancer: pd.DataFrame, tmp_path: Path, where: float
) -> None:
    """A record over the record-length bound fails its range - range 0 (scored by the parent
    into the output's temp file) or a later one (a worker's part): the file fails, the report
    names the limit and the range, and neither predictions nor temp files remain."""
    src = tmp_path / "in" / "big.csv"
    src.parent.mkdir()
    big_csv(breast_cancer, src, long_record_at=where)
    out_dir = tmp_path / "out"
    options = BatchOptions(limits=dataclasses.replace(BatchLimits(), max_record_bytes=200_000))
    report = score_local_parallel(
        src,
        out_dir / "big.predictions.csv",
        store_uri=batch_store.uri,
        model_name="demo-classifier",
        options=options,
        workers=2,
        cache_dir=tmp_path / "cache",
    )
    assert report["status"] == "failed"
    assert report["error"]["code"] == "record_too_long"
    assert report["failed_ranges"][0]["index"] == (0 if where < 0.5 else 1)
    assert sorted(p.name for p in out_dir.iterdir()) == ["big.report.json"]


def test_two_workers_write_what_one_writes(batch_store: Any, breast_cancer: pd.DataFrame, tmp_path: Path) -> None:
    src = tmp_path / "big.csv"
    big_csv(breast_cancer, src)
    live = LiveModel(batch_store, "demo-classifier", cache_dir=tmp_path / "cache")
    one = score_local(src, tmp_path / "one.predictions.csv", live, BatchOptions())
    two = score_local_parallel(
        src,
        tmp_path / "two.predictions.csv",
        store_uri=batch_store.uri,
        model_name="demo-classifier",
        options=BatchOptions(),
        workers=2,
        cache_dir=tmp_path / "cache",
    )
    assert one["status"] == two["status"] == "succeeded"
    assert two["workers"]["ranges"] == 2
    assert (tmp_path / "two.predictions.csv").read_bytes() == (tmp_path / "one.predictions.csv").read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file or parts dir left
