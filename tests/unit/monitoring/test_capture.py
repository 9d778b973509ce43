"""Request capture: sampling, the per-minute cap, the personal-data rule, Firehose's
record and batch limits, and that a capture failure never reaches the request."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from mlserve.monitoring.capture import (
    MAX_BATCH_RECORDS,
    MAX_RECORD_BYTES,
    Capturer,
    CaptureSettings,
    Pending,
    batches,
    encode_records,
)


class FakeFirehose:
    def __init__(self, fail: int = 0, raise_error: bool = False) -> None:
        self.calls: list[list[bytes]] = []
        self.fail = fail
        self.raise_error = raise_error

    def put_record_batch(self, DeliveryStreamName: str, Records: list[dict[str, bytes]]) -> dict[str, Any]:
        if self.raise_error:
            raise ConnectionError("endpoint unreachable")
        self.calls.append([r["Data"] for r in Records])
        return {"FailedPutCount": min(self.fail, len(Records)), "RequestResponses": []}


def capturer(client: Any, **settings: Any) -> Capturer:
    values: dict[str, Any] = {"stream": "s", "directory": None, "flush_seconds": 3600.0, **settings}
    return Capturer(CaptureSettings(**values), client_factory=lambda: client, clock=lambda: 1_800_000_000.0)


ROWS = [{"age": 41, "income": 5200.0, "email": "a@example.com"}, {"age": 19, "income": 800.0, "email": "b@example.com"}]
COLUMNS = ["age", "income", "email"]


def sent_lines(client: FakeFirehose) -> list[dict[str, Any]]:
    return [json.loads(data) for call in client.calls for data in call]


def test_by_default_no_input_field_is_captured_only_predictions() -> None:
    client = FakeFirehose()
    recorder = capturer(client)
    recorder.record("m", "3", COLUMNS, ROWS, [1, 0])
    recorder.flush()
    [line] = sent_lines(client)
    assert line["columns"] == [] and line["data"] == [] and line["predictions"] == [1, 0]
    assert line["model"] == "m" and line["version"] == "3" and line["t"] == 1_800_000_000.0


def test_only_listed_columns_are_captured_and_star_means_the_signature() -> None:
    client = FakeFirehose()
    capturer_listed = capturer(client, columns=("income", "not-in-signature"))
    capturer_listed.record("m", "3", COLUMNS, ROWS, [1, 0])
    capturer_listed.flush()
    assert sent_lines(client)[0]["columns"] == ["income"]
    assert sent_lines(client)[0]["data"] == [[5200.0], [800.0]]
    assert "a@example.com" not in json.dumps(sent_lines(client))

    everything = FakeFirehose()
    recorder = capturer(everything, columns=("*",))
    recorder.record("m", "3", COLUMNS, ROWS, [1, 0])
    recorder.flush()
    assert sent_lines(everything)[0]["columns"] == COLUMNS


def test_sample_rate_and_per_minute_cap() -> None:
    client = FakeFirehose()
    draws = iter([0.1, 0.9, 0.2, 0.3])
    recorder = Capturer(
        CaptureSettings(stream="s", directory=None, sample_rate=0.5, max_rows_per_minute=3),
        client_factory=lambda: client,
        clock=lambda: 60.0,
        rng=lambda: next(draws),
    )
    for _ in range(4):
        recorder.record("m", "1", COLUMNS, ROWS, [1, 0])
    # draws 0.1 (kept, 2 rows), 0.9 (not sampled), 0.2 (1 row left this minute), 0.3 (cap reached)
    assert recorder.stats["captured_rows"] == 3 and recorder.stats["dropped_rows"] == 3
    recorder.flush()
    assert sum(len(line["predictions"]) for line in sent_lines(client)) == 3


def test_record_never_raises_even_on_garbage() -> None:
    recorder = capturer(FakeFirehose(), columns=("*",))
    recorder.record("m", "1", COLUMNS, None, None)  # type: ignore[arg-type]
    recorder.record("m", "1", COLUMNS, ROWS, [1, 0])
    assert recorder.stats["captured_rows"] == 2


def test_firehose_errors_are_counted_not_raised() -> None:
    down = FakeFirehose(raise_error=True)
    recorder = capturer(down)
    recorder.record("m", "1", COLUMNS, ROWS, [1, 0])
    assert recorder.flush() == 0 and recorder.stats["failed_records"] == 1
    partial = FakeFirehose(fail=1)
    recorder = capturer(partial)
    recorder.record("m", "1", COLUMNS, ROWS, [1, 0])
    recorder.record("m", "1", COLUMNS, ROWS, [1, 0])
    assert recorder.flush() == 1 and recorder.stats["failed_records"] == 1


def test_big_requests_split_under_firehoses_record_limit() -> None:
    rows = [{"text": "x" * 2000} for _ in range(1500)]
    records = encode_records([Pending(0.0, "m", "1", ["text"], rows, list(range(1500)))])
    assert len(records) > 1 and all(len(r) <= MAX_RECORD_BYTES for r in records)
    assert sum(len(json.loads(r)["predictions"]) for r in records) == 1500


def test_batches_respect_500_records_and_4_mib() -> None:
    small = [b"x" * 10] * 1201
    assert [len(b) for b in batches(small)] == [MAX_BATCH_RECORDS, MAX_BATCH_RECORDS, 201]
    large = [b"y" * (900 * 1024)] * 10
    assert all(sum(map(len, b)) <= 4 * 1024 * 1024 for b in batches(large))


def test_the_background_thread_flushes(tmp_path: Path) -> None:
    recorder = Capturer(CaptureSettings(stream=None, directory=tmp_path, flush_seconds=0.01, columns=("*",)))
    recorder.record("m", "7", COLUMNS, ROWS, [1, 0])
    assert recorder._thread is not None
    recorder._thread.join(timeout=0.0)  # never waits on it in the request path
    for _ in range(500):  # functional wait for the daemon thread, not a timing assert
        if recorder.stats["sent_records"]:
            break
        recorder._wake.set()
        import time

        time.sleep(0.01)
    files = list((tmp_path / "capture" / "m" / "7").glob("dt=*/*.jsonl.gz"))
    assert len(files) == 1
    line = json.loads(gzip.decompress(files[0].read_bytes()))
    assert line["data"] == [[41, 5200.0, "a@example.com"], [19, 800.0, "b@example.com"]]


def test_bad_settings_turn_capture_off_not_the_api(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlserve.monitoring import capture

    monkeypatch.setenv("MLSERVE_CAPTURE_STREAM", "s")
    monkeypatch.setenv("MLSERVE_CAPTURE_SAMPLE_RATE", "3")
    capture.reset_capturer()
    try:
        assert capture.capturer() is None
    finally:
        capture.reset_capturer()
