"""moto Kinesis in and out, an SQS failure queue, the demo model published into moto S3,
and the stream handler's environment pointing at them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MODEL_BUCKET, publish

MODEL = "demo-classifier"
IN_STREAM = "mlserve-in"
OUT_STREAM = "mlserve-out"


@dataclass
class StreamWorld:
    s3: Any
    kinesis: Any
    sqs: Any
    queue_url: str
    store: Any

    def put(self, payloads: list[tuple[str, bytes | str | dict[str, Any]]]) -> list[str]:
        """put_records (partition key, payload) in order; returns the sequence numbers."""
        records = []
        for key, payload in payloads:
            data = (
                payload
                if isinstance(payload, bytes)
                else (payload if isinstance(payload, str) else json.dumps(payload))
            )
            records.append({"Data": data.encode() if isinstance(data, str) else data, "PartitionKey": key})
        response = self.kinesis.put_records(StreamName=IN_STREAM, Records=records)
        assert response["FailedRecordCount"] == 0
        return [entry["SequenceNumber"] for entry in response["Records"]]

    def failures(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while True:
            got = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                return messages
            for message in got:
                messages.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def stream_world(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[StreamWorld]:
    import boto3
    from moto import mock_aws

    import lambda_batch.stream as stream_handler
    from mlserve.store import open_store

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=MODEL_BUCKET)
        kinesis = boto3.client("kinesis", region_name="us-east-1")
        kinesis.create_stream(StreamName=IN_STREAM, ShardCount=1)
        kinesis.create_stream(StreamName=OUT_STREAM, ShardCount=1)
        sqs = boto3.client("sqs", region_name="us-east-1")
        queue_url = sqs.create_queue(QueueName="mlserve-stream-failures")["QueueUrl"]
        for key, value in {
            "MLSERVE_STORE": f"s3://{MODEL_BUCKET}",
            "MLSERVE_MODEL_NAME": MODEL,
            "MLSERVE_REFRESH_SECONDS": "0",
            "MLSERVE_CACHE_DIR": str(tmp_path / "cache"),
            "MLSERVE_STREAM_OUTPUT": "kinesis",
            "MLSERVE_STREAM_OUTPUT_NAME": OUT_STREAM,
            "MLSERVE_STREAM_FAILURE_QUEUE_URL": queue_url,
            "POWERTOOLS_METRICS_DISABLED": "true",
        }.items():
            monkeypatch.setenv(key, value)
        stream_handler.reset_runtime()
        yield StreamWorld(s3, kinesis, sqs, queue_url, open_store(f"s3://{MODEL_BUCKET}", s3_client=s3))
        stream_handler.reset_runtime()


@pytest.fixture
def published_world(stream_world: StreamWorld, demo_registry: Any) -> StreamWorld:
    publish(
        stream_world.store,
        demo_registry.classifier_dir,
        name=MODEL,
        version="1",
        run_id=demo_registry.classifier_run_id,
    )
    return stream_world


def model_predict(demo_registry: Any, frame: Any) -> list[Any]:
    import skops.io

    from mlserve.loader import TRUSTED_TYPES

    model = skops.io.load(demo_registry.classifier_dir / "model.skops", trusted=list(TRUSTED_TYPES))
    return list(model.predict(frame).tolist())
