"""The scheduled batch function over moto S3: the real handler
(``lambda_batch.scheduled.handler``) invoked with the Scheduler target's input, scoring
with the batch job's code into the same results, reports and markers as dropped CSVs."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mlserve.batch.scheduled import ScheduledRunFailed
from tests.conftest import MODEL_BUCKET, publish
from tests.integration.streaming.conftest import MODEL, model_predict

BUCKET = "mlserve-batch-scheduled"
SCHEDULES = {"daily": "scheduled/daily/", "incoming": "incoming/"}


class Context:
    function_name = "mlserve-scheduled"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:mlserve-scheduled"
    memory_limit_in_mb = 3008
    aws_request_id = "req-1"

    def __init__(self, remaining_ms: int = 900_000) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@dataclass
class World:
    s3: Any
    store: Any

    def run(self, schedule: str = "daily", remaining_ms: int = 900_000) -> dict[str, Any]:
        from lambda_batch.scheduled import handler

        return dict(handler({"schedule": schedule, "input_prefix": SCHEDULES[schedule]}, Context(remaining_ms)))

    def report(self, key: str) -> dict[str, Any]:
        rel = key.removeprefix("incoming/")
        return dict(json.loads(self.s3.get_object(Bucket=BUCKET, Key=f"results/{rel}.report.json")["Body"].read()))

    def predictions(self, key: str) -> pd.DataFrame:
        rel = key.removeprefix("incoming/")
        body = self.s3.get_object(Bucket=BUCKET, Key=f"results/{rel}.predictions.csv")["Body"].read()
        return pd.read_csv(io.BytesIO(body))

    def summaries(self, schedule: str) -> list[dict[str, Any]]:
        listed = self.s3.list_objects_v2(Bucket=BUCKET, Prefix=f"results/_runs/{schedule}/").get("Contents", [])
        return [
            json.loads(self.s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read())
            for o in sorted(listed, key=lambda o: o["Key"])
        ]


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[World]:
    import boto3
    from moto import mock_aws

    import lambda_batch.handler as dropped_handler
    import lambda_batch.scheduled as scheduled_handler
    from mlserve.store import open_store

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=MODEL_BUCKET)
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        for key, value in {
            "MLSERVE_STORE": f"s3://{MODEL_BUCKET}",
            "MLSERVE_MODEL_NAME": MODEL,
            "MLSERVE_REFRESH_SECONDS": "0",
            "MLSERVE_CACHE_DIR": str(tmp_path / "cache"),
            "MLSERVE_BATCH_BUCKET": BUCKET,
            "MLSERVE_SCHEDULES": json.dumps(SCHEDULES),
            "POWERTOOLS_METRICS_DISABLED": "true",
        }.items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("MLSERVE_RESULTS_PREFIX", raising=False)
        scheduled_handler.reset_runtime()
        dropped_handler.reset_runtime()
        yield World(s3, open_store(f"s3://{MODEL_BUCKET}", s3_client=s3))
        scheduled_handler.reset_runtime()
        dropped_handler.reset_runtime()


@pytest.fixture
def published(world: World, demo_registry: Any) -> World:
    publish(world.store, demo_registry.classifier_dir, name=MODEL, version="1")
    return world


def upload(world: World, key: str, frame: pd.DataFrame) -> None:
    world.s3.put_object(Bucket=BUCKET, Key=key, Body=frame.to_csv(index=False).encode())


def test_scores_two_files_then_a_rerun_scores_nothing(
    published: World, demo_registry: Any, breast_cancer: pd.DataFrame
) -> None:
    first, second = breast_cancer.head(40), breast_cancer.iloc[40:100]
    upload(published, "scheduled/daily/a.csv", first)
    upload(published, "scheduled/daily/sub/b.csv", second)
    upload(published, "scheduled/daily/notes.txt", first)  # not a CSV: never listed

    summary = published.run()
    assert summary["status"] == "succeeded"
    assert (summary["files_listed"], summary["files_scored"], summary["files_up_to_date"]) == (2, 2, 0)
    assert summary["rows_scored"] == 100 and summary["stopped_early"] is False
    assert summary["model"]["version"] == "1"
    for key, frame in (("scheduled/daily/a.csv", first), ("scheduled/daily/sub/b.csv", second)):
        report = published.report(key)
        assert report["status"] == "succeeded" and report["model"]["version"] == "1"
        assert published.predictions(key)["prediction"].tolist() == model_predict(demo_registry, frame)
    report_versions = {
        v["VersionId"]
        for v in published.s3.list_object_versions(Bucket=BUCKET, Prefix="results/scheduled/daily/a.csv.report.json")[
            "Versions"
        ]
    }

    again = published.run()
    assert (again["files_scored"], again["files_up_to_date"], again["status"]) == (0, 2, "succeeded")
    versions_after = published.s3.list_object_versions(
        Bucket=BUCKET, Prefix="results/scheduled/daily/a.csv.report.json"
    )["Versions"]
    assert {v["VersionId"] for v in versions_after} == report_versions  # nothing rewritten
    summaries = published.summaries("daily")
    assert [s["files_scored"] for s in summaries] == [2, 0]
    assert summary["summary_key"].startswith("results/_runs/daily/")


def test_a_new_live_version_rescores_every_file(
    published: World, demo_registry: Any, breast_cancer: pd.DataFrame
) -> None:
    upload(published, "scheduled/daily/a.csv", breast_cancer.head(10))
    upload(published, "scheduled/daily/b.csv", breast_cancer.head(20))
    assert published.run()["files_scored"] == 2
    publish(published.store, demo_registry.classifier_dir, name=MODEL, version="2")
    summary = published.run()
    assert summary["files_scored"] == 2
    assert {item["reason"] for item in summary["scored"]} == {"other_model"}
    assert published.report("scheduled/daily/a.csv")["model"]["version"] == "2"
    assert published.run()["files_up_to_date"] == 2  # and exactly once for version 2


def test_a_new_upload_of_the_same_key_is_scored_again(published: World, breast_cancer: pd.DataFrame) -> None:
    upload(published, "scheduled/daily/a.csv", breast_cancer.head(10))
    published.run()
    upload(published, "scheduled/daily/a.csv", breast_cancer.head(30))
    summary = published.run()
    assert summary["scored"][0]["reason"] == "new_object"
    assert published.report("scheduled/daily/a.csv")["rows_scored"] == 30


def test_shares_results_and_markers_with_dropped_csvs(published: World, breast_cancer: pd.DataFrame) -> None:
    """A CSV dropped into incoming/ and scored by the S3-triggered function is up to date
    for a schedule over incoming/: one result, one marker, one scoring."""
    from lambda_batch.handler import handler as dropped
    from tests.unit.batch.conftest import FakeContext, s3_event

    response = published.s3.put_object(
        Bucket=BUCKET, Key="incoming/x.csv", Body=breast_cancer.head(5).to_csv(index=False).encode()
    )
    dropped(
        s3_event(BUCKET, "incoming/x.csv", version_id=response["VersionId"], etag=response["ETag"], size=1),
        FakeContext(),
    )
    summary = published.run("incoming")
    assert (summary["files_up_to_date"], summary["files_scored"]) == (1, 0)


def test_max_files_bounds_a_run_and_the_next_run_continues(
    published: World, breast_cancer: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lambda_batch.scheduled as scheduled_handler

    monkeypatch.setenv("MLSERVE_SCHEDULE_MAX_FILES", "2")
    scheduled_handler.reset_runtime()
    for name in "abc":
        upload(published, f"scheduled/daily/{name}.csv", breast_cancer.head(5))
    first = published.run()
    assert (first["files_scored"], first["files_not_started"], first["status"]) == (2, 1, "stopped_early")
    assert first["stop_reason"].startswith("max_files")
    assert first["not_started"] == ["scheduled/daily/c.csv"]
    second = published.run()
    assert (second["files_scored"], second["files_up_to_date"], second["files_not_started"]) == (1, 2, 0)


def test_stops_before_the_deadline_and_says_so(published: World, breast_cancer: pd.DataFrame) -> None:
    upload(published, "scheduled/daily/a.csv", breast_cancer.head(5))
    summary = published.run(remaining_ms=30_000)  # less than the 60 s stop margin
    assert summary["files_scored"] == 0 and summary["files_not_started"] == 1
    assert summary["stop_reason"].startswith("deadline")
    assert not published.s3.list_objects_v2(Bucket=BUCKET, Prefix="results/scheduled/").get("KeyCount")


def test_rejected_file_is_reported_not_retried(published: World) -> None:
    published.s3.put_object(Bucket=BUCKET, Key="scheduled/daily/bad.csv", Body=b"nothing,useful\n1,2\n")
    summary = published.run()
    assert summary["scored"][0]["status"] == "rejected"
    assert published.report("scheduled/daily/bad.csv")["error"]["code"]
    assert published.run()["files_up_to_date"] == 1


def test_no_model_fails_the_run_with_a_summary(world: World, breast_cancer: pd.DataFrame) -> None:
    upload(world, "scheduled/daily/a.csv", breast_cancer.head(5))
    with pytest.raises(ScheduledRunFailed, match="not available"):
        world.run()
    [summary] = world.summaries("daily")
    assert summary["status"] == "failed" and summary["error"]["code"] == "model_unavailable"
    assert summary["files_scored"] == 0


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({}, "no valid 'schedule'"),
        ({"schedule": "weekly"}, "not configured"),
        ({"schedule": "daily", "input_prefix": "incoming/"}, "scores 'scheduled/daily/'"),
        ({"schedule": "../x"}, "no valid 'schedule'"),
    ],
)
def test_bad_events_are_refused(published: World, event: dict[str, Any], message: str) -> None:
    from lambda_batch.scheduled import handler
    from mlserve.errors import MlserveError

    with pytest.raises(MlserveError, match=message):
        handler(event, Context())
