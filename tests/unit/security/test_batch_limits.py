"""Issue 11, Medium 3: batch input is bounded whatever its content, and every bound ends
the job with a clear `failed` report (how far it got) instead of a killed function.

Each test reproduces one fault of the review: a gzip bomb, one endless line, a 100k-column
header (quadratic `list.count`), a run that would time out, a `ClaimHeld` duplicate that
counted as a Lambda error.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

KEY = "incoming/limits.csv"


def marker_state(batch_env: Any, key: str) -> dict[str, Any]:
    listed = batch_env.s3.list_objects_v2(
        Bucket=batch_env.bucket, Prefix="results/.markers/" + key.removeprefix("incoming/")
    )
    (entry,) = listed["Contents"]
    return dict(json.loads(batch_env.s3.get_object(Bucket=batch_env.bucket, Key=entry["Key"])["Body"].read()))


def test_gzip_bomb_fails_on_the_ratio_with_a_report(
    batch_env: Any, breast_cancer: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 48 MiB of one repeated valid row compress ~1000x; the limit is 50x past 1 MiB.
    monkeypatch.setenv("MLSERVE_BATCH_MAX_DECOMPRESSION_RATIO", "50")
    monkeypatch.setenv("MLSERVE_BATCH_RATIO_GRACE_BYTES", str(1024 * 1024))
    text = breast_cancer.head(1).to_csv(index=False)
    header, row = text.split("\n", 1)
    bomb = gzip.compress((header + "\n" + row * (48 * 1024 * 1024 // len(row))).encode(), compresslevel=9)
    assert len(bomb) < 1024 * 1024

    response = batch_env.run(batch_env.upload(KEY + ".gz", bomb))  # returns: no pointless retry

    report = batch_env.report(KEY + ".gz")
    assert response["results"][0]["status"] == "failed"
    assert report["status"] == "failed" and report["retryable"] is False
    assert report["error"]["code"] == "decompression_ratio_exceeded"
    assert "MLSERVE_BATCH_MAX_DECOMPRESSION_RATIO" in report["error"]["message"]
    # Stopped within the first blocks (here: before the first chunk was even scored), not
    # after expanding the whole bomb.
    assert report["progress"]["bytes_read"] < 16 * 1024 * 1024
    assert report["progress"]["rows_scored"] < 100_000
    assert not batch_env.has_predictions(KEY + ".gz")
    assert marker_state(batch_env, KEY + ".gz")["status"] == "done"


def test_total_decompressed_bytes_are_bounded(
    batch_env: Any, breast_cancer: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLSERVE_BATCH_MAX_BYTES", str(256 * 1024))
    body = pd.concat([breast_cancer] * 4).to_csv(index=False).encode()
    assert len(body) > 256 * 1024
    batch_env.run(batch_env.upload(KEY, body))
    report = batch_env.report(KEY)
    assert report["status"] == "failed" and report["error"]["code"] == "input_too_large"
    assert "batch_max_bytes" in report["error"]["message"]
    assert not batch_env.has_predictions(KEY)


def test_a_file_of_exactly_the_limit_passes(
    batch_env: Any, breast_cancer: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = breast_cancer.head(20).to_csv(index=False).encode()
    monkeypatch.setenv("MLSERVE_BATCH_MAX_BYTES", str(len(body)))
    batch_env.run(batch_env.upload(KEY, body))
    assert batch_env.report(KEY)["status"] == "succeeded"


def test_record_longer_than_the_limit_fails(
    batch_env: Any, breast_cancer: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLSERVE_BATCH_MAX_RECORD_BYTES", "4096")
    text = breast_cancer.head(5).to_csv(index=False)
    header, rows = text.split("\n", 1)
    body = (f"note,{header}\n" + "".join(f"{'x' * 5000},{r}\n" for r in rows.splitlines())).encode()
    batch_env.run(batch_env.upload(KEY, body))
    report = batch_env.report(KEY)
    assert report["status"] == "failed" and report["error"]["code"] == "record_too_long"
    assert "line 2" in report["error"]["message"] and "batch_max_record_bytes" in report["error"]["message"]


LONG_LINE_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    from pathlib import Path
    from mlserve.batch.core import BatchOptions
    from mlserve.batch.job import score_local
    from mlserve.live import LiveModel
    from mlserve.store import open_store

    store_uri, cache, warm, bomb, out = sys.argv[1:6]
    live = LiveModel(open_store(store_uri), "demo-classifier", cache_dir=Path(cache))
    options = BatchOptions()  # the defaults: 1 MiB records, 4 MiB chunks
    score_local(warm, out + ".warm.csv", live, options)  # warm-up: imports, model, chunk-sized buffers
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    report = score_local(bomb, out, live, options)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"before_kb": before, "after_kb": after, "report": report}))
    """
)


@pytest.fixture(scope="module")
def one_gib_line(tmp_path_factory: pytest.TempPathFactory, breast_cancer: pd.DataFrame) -> Path:
    """The review's file: ~1 MB of gzip holding the model's header and ONE 1 GiB line."""
    path = tmp_path_factory.mktemp("long-line") / "line.csv.gz"
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
    block = b"7" * (1024 * 1024)
    with open(path, "wb") as handle:
        handle.write(compressor.compress((",".join(breast_cancer.columns) + "\n").encode()))
        for _ in range(1024):
            handle.write(compressor.compress(block))
        handle.write(compressor.compress(b"\n"))
        handle.write(compressor.flush())
    return path


def test_one_gib_line_fails_fast_with_bounded_memory(
    batch_store: Any, breast_cancer: pd.DataFrame, one_gib_line: Path, tmp_path: Path
) -> None:
    assert one_gib_line.stat().st_size < 8 * 1024 * 1024
    warm = tmp_path / "warm.csv"
    warm.write_text(pd.concat([breast_cancer] * 20).to_csv(index=False))
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            LONG_LINE_SCRIPT,
            batch_store.uri,
            str(tmp_path / "cache"),
            str(warm),
            str(one_gib_line),
            str(tmp_path / "out.predictions.csv"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    report = figures["report"]
    assert report["status"] == "failed" and report["error"]["code"] == "record_too_long"
    # Read a few MiB of the 1 GiB line, then stopped.
    assert report["progress"]["bytes_read"] < 16 * 1024 * 1024
    growth_mb = (figures["after_kb"] - figures["before_kb"]) / 1024
    assert growth_mb < 64, f"peak RSS grew {growth_mb:.0f} MB on a 1 GiB line"
    assert not (tmp_path / "out.predictions.csv").exists()


class CountingName(str):
    """A header cell that counts how often it is hashed or compared."""

    operations = 0

    def __eq__(self, other: object) -> bool:
        CountingName.operations += 1
        return str.__eq__(self, other)

    def __hash__(self) -> int:
        CountingName.operations += 1
        return str.__hash__(self)


def _wide_file(breast_cancer: pd.DataFrame, extra: int) -> bytes:
    frame = breast_cancer.head(2)
    names = [f"x{i}" for i in range(extra)]
    header = ",".join([*frame.columns, *names])
    rows = "".join(",".join([*map(repr, map(float, row)), *(["0"] * extra)]) + "\n" for row in frame.to_numpy())
    return (header + "\n" + rows).encode()


def test_wide_header_is_refused_by_the_column_limit(batch_env: Any, breast_cancer: pd.DataFrame) -> None:
    batch_env.run(batch_env.upload(KEY, _wide_file(breast_cancer, 100_000)))
    report = batch_env.report(KEY)
    assert report["status"] == "failed" and report["error"]["code"] == "too_many_columns"
    assert "100030 columns" in report["error"]["message"] and "batch_max_columns" in report["error"]["message"]


def test_header_checks_are_linear_in_the_number_of_columns(
    batch_env: Any, breast_cancer: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlserve.batch.core as core

    monkeypatch.setenv("MLSERVE_BATCH_MAX_COLUMNS", "200000")
    real = core.iter_chunks

    def counting_header(*args: Any, **kwargs: Any) -> Any:
        header, raw, chunks = real(*args, **kwargs)
        return [CountingName(h) for h in header], raw, chunks

    monkeypatch.setattr(core, "iter_chunks", counting_header)
    CountingName.operations = 0
    columns = 100_030
    batch_env.run(batch_env.upload(KEY, _wide_file(breast_cancer, columns - 30)))
    report = batch_env.report(KEY)
    assert report["status"] == "succeeded" and report["rows_scored"] == 2
    # `header.count(name)` per name compared ~n^2 = 10^10 times; now a few passes of n.
    assert CountingName.operations < 10 * columns, CountingName.operations


class DeadlineContext:
    """A Lambda context whose remaining time drops below the margin after `calls` asks."""

    function_name = "mlserve-batch"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:mlserve-batch"
    memory_limit_in_mb = 3008

    def __init__(self, calls: int, request_id: str = "req-deadline") -> None:
        self.calls = calls
        self.asked = 0
        self.aws_request_id = request_id

    def get_remaining_time_in_millis(self) -> int:
        self.asked += 1
        return 900_000 if self.asked <= self.calls else 45_000


def test_deadline_stops_cleanly_with_progress_and_a_retryable_marker(
    batch_env: Any, breast_cancer: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lambda_batch.handler import handler
    from mlserve.batch.limits import DeadlineReached

    monkeypatch.setenv("MLSERVE_BATCH_CHUNK_BYTES", str(64 * 1024))
    body = pd.concat([breast_cancer] * 4).to_csv(index=False).encode()  # ~8 chunks
    event = batch_env.upload(KEY, body)

    # Ask 1 computes the claim deadline; asks 2-4 are before chunks 1-3; chunk 4 stops.
    with pytest.raises(DeadlineReached):
        handler(event, DeadlineContext(calls=4))  # an error: Lambda retries, then the DLQ

    report = batch_env.report(KEY)
    assert report["status"] == "failed" and report["error"]["code"] == "deadline_reached"
    progress = report["progress"]
    assert 0 < progress["rows_read"] < 4 * len(breast_cancer)
    assert 0 < progress["bytes_read"] < len(body)
    assert f"after {progress['rows_read']} rows" in report["error"]["message"]
    assert not batch_env.has_predictions(KEY)
    assert marker_state(batch_env, KEY)["status"] == "failed"  # released: the retry may take over

    handler(event, DeadlineContext(calls=10**6, request_id="req-retry"))
    report = batch_env.report(KEY)
    assert report["status"] == "succeeded" and report["rows_scored"] == 4 * len(breast_cancer)


def test_retry_of_a_killed_attempt_takes_over_its_own_claim(batch_env: Any, breast_cancer: pd.DataFrame) -> None:
    """A killed attempt leaves `in_progress` with a far deadline; Lambda's retry carries the
    same request id, so it is not locked out for the rest of the dead attempt's timeout."""
    event = batch_env.upload(KEY, breast_cancer.head(10).to_csv(index=False).encode())
    version = event["Records"][0]["s3"]["object"]["versionId"]
    batch_env.s3.put_object(
        Bucket=batch_env.bucket,
        Key=f"results/.markers/limits.csv/{version}",
        Body=json.dumps({"status": "in_progress", "deadline": 4e9, "request_id": "req-1"}).encode(),
    )
    batch_env.run(event)  # FakeContext's request id is req-1
    assert batch_env.report(KEY)["status"] == "succeeded"


def test_claim_held_duplicate_returns_normally(batch_env: Any, breast_cancer: pd.DataFrame) -> None:
    event = batch_env.upload(KEY, breast_cancer.head(10).to_csv(index=False).encode())
    version = event["Records"][0]["s3"]["object"]["versionId"]
    batch_env.s3.put_object(
        Bucket=batch_env.bucket,
        Key=f"results/.markers/limits.csv/{version}",
        Body=json.dumps({"status": "in_progress", "deadline": 4e9, "request_id": "someone-else"}).encode(),
    )
    response = batch_env.run(event)  # no exception: the Lambda invocation succeeds
    assert response["results"][0]["status"] == "claim_held"
    assert not batch_env.has_predictions(KEY)
