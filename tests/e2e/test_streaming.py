"""Streaming and scheduled scoring on the deployed stack (MiniStack implements Kinesis event
source mappings and EventBridge Scheduler): records put into the input stream come back
on the output stream with predictions equal to ``model.predict``; a malformed record lands
in the failure queue with its reason while the records around it are scored; the schedule
fires and scores two CSVs, and a rerun scores nothing.

Needs the stack deployed with the stream and a schedule that fires every minute, e.g.
``-c stream=true -c stream_batching_window_seconds=0 -c functions='{"stream":{"timeout_seconds":300}}'
-c schedules='[{"name":"e2e","cron":"* * * * ? *","input_prefix":"scheduled/e2e/"}]'``
in MLSERVE_E2E_CDK_CONTEXT; skipped with the reason otherwise."""

from __future__ import annotations

import base64
import io
import json
import time
import uuid
from typing import Any

import pandas as pd
import pytest

from tests.conftest import publish
from tests.e2e.conftest import Deployed

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]
MODEL = "demo-classifier"
SCHEDULE = "e2e"
SCHEDULE_PREFIX = "scheduled/e2e/"


def wait_for(what: str, probe: Any, timeout: float = 180, interval: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def model_predict(demo_registry: Any, frame: pd.DataFrame) -> list[Any]:
    import skops.io

    from mlserve.loader import TRUSTED_TYPES

    model = skops.io.load(demo_registry.classifier_dir / "model.skops", trusted=list(TRUSTED_TYPES))
    return list(model.predict(frame).tolist())


def live_model(deployed: Deployed, demo_registry: Any) -> dict[str, Any]:
    """The live pointer, publishing version 1 first when nothing is live yet (the other
    e2e module may already have published or promoted the same demo model)."""
    from mlserve.store import open_store

    store = open_store(f"s3://{deployed.model_bucket}", s3_client=deployed.client("s3"))
    try:
        return dict(json.loads(store.read_bytes(f"models/{MODEL}/live.json")))
    except KeyError:
        publish(store, demo_registry.classifier_dir, name=MODEL, version="1", run_id=demo_registry.classifier_run_id)
        return dict(json.loads(store.read_bytes(f"models/{MODEL}/live.json")))


@pytest.fixture(scope="module")
def streaming(deployed: Deployed, demo_registry: Any) -> Deployed:
    if "StreamInputName" not in deployed.outputs or "StreamOutputName" not in deployed.outputs:
        pytest.skip(
            "the deployed stack has no Kinesis stream output (StreamInputName/StreamOutputName): deploy with "
            "-c stream=true (stream_output=kinesis) in MLSERVE_E2E_CDK_CONTEXT"
        )
    live_model(deployed, demo_registry)
    return deployed


class OutputTail:
    """Reads the output stream from TRIM_HORIZON, keeps every record seen."""

    def __init__(self, deployed: Deployed) -> None:
        self.kinesis = deployed.client("kinesis")
        self.stream = deployed.outputs["StreamOutputName"]
        self.iterators: dict[str, str] = {}
        self.records: list[tuple[str, dict[str, Any], float]] = []
        for shard in self.kinesis.list_shards(StreamName=self.stream)["Shards"]:
            self.iterators[shard["ShardId"]] = self.kinesis.get_shard_iterator(
                StreamName=self.stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]

    def poll(self) -> list[tuple[str, dict[str, Any], float]]:
        for shard, iterator in list(self.iterators.items()):
            response = self.kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            now = time.time()
            for record in response["Records"]:
                self.records.append((record["PartitionKey"], json.loads(record["Data"]), now))
            self.iterators[shard] = response["NextShardIterator"]
        return self.records

    def by_id(self, ids: set[str]) -> dict[str, tuple[str, dict[str, Any], float]]:
        return {body["id"]: (key, body, at) for key, body, at in self.poll() if body.get("id") in ids}


def put(deployed: Deployed, payloads: list[tuple[str, Any]]) -> list[str]:
    kinesis = deployed.client("kinesis")
    records = [
        {"Data": payload if isinstance(payload, bytes) else json.dumps(payload).encode(), "PartitionKey": key}
        for key, payload in payloads
    ]
    response = kinesis.put_records(StreamName=deployed.outputs["StreamInputName"], Records=records)
    assert response["FailedRecordCount"] == 0
    return [entry["SequenceNumber"] for entry in response["Records"]]


def test_stream_predictions_equal_model_predict(streaming: Deployed, demo_registry: Any, breast_cancer: Any) -> None:
    run = uuid.uuid4().hex[:8]
    frame = breast_cancer.head(30)
    rows = frame.to_dict(orient="records")
    payloads: list[tuple[str, Any]] = [
        (f"customer-{i % 3}", {"id": f"{run}-{i}", "instances": rows[3 * i : 3 * i + 3]}) for i in range(10)
    ]
    tail = OutputTail(streaming)
    sent_at = time.time()
    sequence_numbers = put(streaming, payloads)
    ids = {f"{run}-{i}" for i in range(10)}
    # Generous: the consumer's first invocation is a cold start (deps layer import), slow on a busy emulator.
    found = wait_for(
        "10 prediction records on the output stream",
        lambda: (lambda f: f if len(f) == 10 else None)(tail.by_id(ids)),
        timeout=420,
    )
    expected = model_predict(demo_registry, frame)
    pointer = live_model(streaming, demo_registry)
    for i, (key, payload) in enumerate(payloads):
        out_key, body, _ = found[payload["id"]]
        assert out_key == key
        assert body["predictions"] == expected[3 * i : 3 * i + 3]
        assert body["sequence_number"] == sequence_numbers[i]
        assert body["model"]["name"] == MODEL and body["model"]["version"] == pointer["version"]
    latency = max(at for _, _, at in found.values()) - sent_at
    print(f"e2e stream latency (put -> last of 10 output records seen, 1 s polling): {latency:.2f}s")


def test_malformed_record_goes_to_the_failure_queue_without_blocking(
    streaming: Deployed, demo_registry: Any, breast_cancer: Any
) -> None:
    run = uuid.uuid4().hex[:8]
    rows = breast_cancer.head(2).to_dict(orient="records")
    tail = OutputTail(streaming)
    sequence_numbers = put(
        streaming,
        [
            ("k", {"id": f"{run}-before", "instances": [rows[0]]}),
            ("k", b'{"id": "broken", "instances": [{"mean radius": "not a number"'),
            ("k", {"id": f"{run}-after", "instances": [rows[1]]}),
        ],
    )
    found = wait_for(
        "the records around the malformed one",
        lambda: (lambda f: f if len(f) == 2 else None)(tail.by_id({f"{run}-before", f"{run}-after"})),
    )
    expected = model_predict(demo_registry, breast_cancer.head(2))
    assert found[f"{run}-before"][1]["predictions"] == [expected[0]]
    assert found[f"{run}-after"][1]["predictions"] == [expected[1]]

    sqs = streaming.client("sqs")
    queue_url = streaming.outputs["StreamFailureQueueUrl"]

    def malformed_message() -> dict[str, Any] | None:
        for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
            body = json.loads(message["Body"])
            if body.get("record", {}).get("sequence_number") == sequence_numbers[1]:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                return dict(body)
        return None

    message = wait_for("the malformed record in the failure queue", malformed_message, timeout=60)
    assert message["kind"] == "malformed_record"
    assert message["reason"]["code"] == "malformed_json"
    assert base64.b64decode(message["record"]["data_base64"]).startswith(b'{"id": "broken"')
    assert message["record"]["partition_key"] == "k"


@pytest.fixture(scope="module")
def scheduled(deployed: Deployed, demo_registry: Any) -> Deployed:
    if "ScheduledFunctionName" not in deployed.outputs:
        pytest.skip(
            "the deployed stack has no schedules (ScheduledFunctionName): deploy with "
            f"""-c schedules='[{{"name":"{SCHEDULE}","cron":"* * * * ? *","input_prefix":"{SCHEDULE_PREFIX}"}}]'"""
        )
    live_model(deployed, demo_registry)
    return deployed


def summaries(deployed: Deployed) -> list[dict[str, Any]]:
    s3 = deployed.client("s3")
    listed = s3.list_objects_v2(Bucket=deployed.batch_bucket, Prefix=f"results/_runs/{SCHEDULE}/").get("Contents", [])
    return [
        json.loads(s3.get_object(Bucket=deployed.batch_bucket, Key=o["Key"])["Body"].read())
        for o in sorted(listed, key=lambda o: o["Key"])
    ]


def test_schedule_scores_two_files_and_a_rerun_scores_none(
    scheduled: Deployed, demo_registry: Any, breast_cancer: Any
) -> None:
    """Waits for the real schedule (every minute on MiniStack's Scheduler) to fire, then
    invokes the function directly once more: the same files are up to date."""
    scheduler = scheduled.client("scheduler")
    names = [s["Name"] for s in scheduler.list_schedules()["Schedules"]]
    targets = [scheduler.get_schedule(Name=name)["Target"] for name in names]
    assert any(json.loads(t.get("Input") or "{}").get("schedule") == SCHEDULE for t in targets), targets

    run = uuid.uuid4().hex[:8]
    s3 = scheduled.client("s3")
    frames = {
        f"{SCHEDULE_PREFIX}{run}/a.csv": breast_cancer.head(25),
        f"{SCHEDULE_PREFIX}{run}/b.csv": breast_cancer.iloc[25:60],
    }
    for key, frame in frames.items():
        s3.put_object(Bucket=scheduled.batch_bucket, Key=key, Body=frame.to_csv(index=False).encode())

    def scored_both() -> dict[str, Any] | None:
        for summary in summaries(scheduled):
            keys = {item["key"] for item in summary.get("scored", [])}
            if set(frames) <= keys:
                return summary
        return None

    summary = wait_for("a scheduled run that scored both files", scored_both, timeout=240, interval=5)
    assert summary["status"] == "succeeded", summary
    for key, frame in frames.items():
        body = s3.get_object(Bucket=scheduled.batch_bucket, Key=f"results/{key}.predictions.csv")["Body"].read()
        assert pd.read_csv(io.BytesIO(body))["prediction"].tolist() == model_predict(demo_registry, frame)
        report = json.loads(
            s3.get_object(Bucket=scheduled.batch_bucket, Key=f"results/{key}.report.json")["Body"].read()
        )
        assert report["status"] == "succeeded"

    response = scheduled.client("lambda").invoke(
        FunctionName=scheduled.outputs["ScheduledFunctionName"],
        Payload=json.dumps({"schedule": SCHEDULE}).encode(),
    )
    rerun = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, rerun
    assert rerun["files_scored"] == 0 and rerun["files_up_to_date"] >= 2, rerun


def test_stream_latency_put_to_output(streaming: Deployed, breast_cancer: Any) -> None:
    """Figure for docs/streaming.md (no timing assert): ten single records, one at a time,
    each read back from the output stream. Written to MLSERVE_STREAM_LATENCY_OUT if set."""
    import os
    import statistics

    from benchmarks.streaming import measure_latency

    row = breast_cancer.head(1).to_dict(orient="records")[0]
    samples = measure_latency(
        streaming.client("kinesis"), streaming.outputs["StreamInputName"], streaming.outputs["StreamOutputName"], row
    )
    assert len(samples) == 10
    figures = {"samples_seconds": samples, "p50": statistics.median(samples), "max": max(samples)}
    print(f"e2e stream latency put -> output record: {figures}")
    target = os.environ.get("MLSERVE_STREAM_LATENCY_OUT")
    if target:
        with open(target, "w") as handle:
            json.dump(figures, handle, indent=1)
