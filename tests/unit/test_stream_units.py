"""mlserve.stream pieces: partial write failures (throttling) are retried, then reported as
batch item failures in shard order; oversized outputs and failure-queue errors; Firehose."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlserve.stream import (
    FailureQueue,
    FirehoseWriter,
    KinesisWriter,
    StreamRecord,
    process_batch,
    records_from_event,
)


class Throttling:
    """A real (moto) Kinesis client whose PutRecords answers ProvisionedThroughputExceeded for
    the records whose data contains one of ``stubborn`` (always) or ``flaky`` (first call)."""

    def __init__(self, client: Any, stubborn: tuple[bytes, ...] = (), flaky: tuple[bytes, ...] = ()) -> None:
        self.client, self.stubborn, self.flaky, self.calls = client, stubborn, set(flaky), 0

    def put_records(self, StreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls += 1
        entries: list[dict[str, Any]] = []
        passing = []
        for record in Records:
            data = record["Data"]
            flaky = next((f for f in self.flaky if f in data), None)
            if any(s in data for s in self.stubborn) or flaky:
                if flaky:
                    self.flaky.discard(flaky)
                entries.append({"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "slow down"})
            else:
                entries.append({})
                passing.append(record)
        if passing:
            real = iter(self.client.put_records(StreamName=StreamName, Records=passing)["Records"])
            entries = [entry if entry else next(real) for entry in entries]
        failed = sum(1 for e in entries if e.get("ErrorCode"))
        return {"FailedRecordCount": failed, "Records": entries}


@pytest.fixture
def aws() -> Iterator[tuple[Any, Any, str]]:
    import boto3
    from moto import mock_aws

    with mock_aws():
        kinesis = boto3.client("kinesis", region_name="us-east-1")
        kinesis.create_stream(StreamName="out", ShardCount=1)
        sqs = boto3.client("sqs", region_name="us-east-1")
        yield kinesis, sqs, sqs.create_queue(QueueName="failures")["QueueUrl"]


@pytest.fixture(scope="module")
def model(demo_registry: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from mlserve.live import LiveModel
    from mlserve.store import open_store
    from tests.conftest import publish

    store = open_store((tmp_path_factory.mktemp("s") / "store").as_uri())
    publish(store, demo_registry.classifier_dir, name="demo-classifier", version="1")
    return LiveModel(store, "demo-classifier", cache_dir=Path(tmp_path_factory.mktemp("c"))).get()


def records(rows: list[dict[str, Any]]) -> list[StreamRecord]:
    return [
        StreamRecord(str(100 + i), f"k{i}", json.dumps({"id": f"r{i}", "instances": [row]}).encode())
        for i, row in enumerate(rows)
    ]


def test_throttled_entries_are_retried_then_reported_in_shard_order(
    aws: tuple[Any, Any, str], model: Any, breast_cancer: Any
) -> None:
    kinesis, sqs, queue = aws
    batch = records(breast_cancer.head(6).to_dict(orient="records"))
    client = Throttling(kinesis, stubborn=(b'"r4"', b'"r2"'), flaky=(b'"r0"',))
    writer = KinesisWriter(client, "out", sleep=lambda _: None)
    outcome = process_batch(batch, model, writer, FailureQueue(sqs, queue))
    assert outcome.response() == {"batchItemFailures": [{"itemIdentifier": "102"}, {"itemIdentifier": "104"}]}
    assert outcome.written == 4 and client.calls == 4  # 1 call + 3 retries
    shard = kinesis.list_shards(StreamName="out")["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(StreamName="out", ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    written = [
        json.loads(r["Data"])["id"] for r in kinesis.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
    ]
    assert sorted(written) == ["r0", "r1", "r3", "r5"]  # r0 made it on the retry


def test_failure_queue_errors_are_reported_not_lost(aws: tuple[Any, Any, str], model: Any) -> None:
    kinesis, sqs, _ = aws
    batch = [StreamRecord("7", "k", b"not json")]
    broken_queue = FailureQueue(sqs, "https://sqs.us-east-1.amazonaws.com/123456789012/missing", sleep=lambda _: None)
    with pytest.raises(Exception, match="NonExistentQueue|does not exist"):
        process_batch(batch, model, KinesisWriter(kinesis, "out"), broken_queue)


def test_oversized_predictions_go_to_the_failure_queue(
    aws: tuple[Any, Any, str], model: Any, breast_cancer: Any
) -> None:
    kinesis, sqs, queue = aws
    writer = KinesisWriter(kinesis, "out", max_record_bytes=50)
    batch = records(breast_cancer.head(1).to_dict(orient="records"))
    outcome = process_batch(batch, model, writer, FailureQueue(sqs, queue))
    assert outcome.response() == {"batchItemFailures": []} and outcome.malformed == 1
    [message] = sqs.receive_message(QueueUrl=queue)["Messages"]
    assert json.loads(message["Body"])["reason"]["code"] == "output_too_large"


def test_bad_base64_is_malformed_with_the_reason() -> None:
    event = {
        "Records": [{"kinesis": {"data": "***", "sequenceNumber": "1", "partitionKey": "p"}, "eventID": "shardId-1:1"}]
    }
    [record] = records_from_event(event)
    assert record.decode_error and "base64" in record.decode_error
    assert record.shard_id == "shardId-1"


def test_large_failure_data_is_truncated_in_the_message(aws: tuple[Any, Any, str], model: Any) -> None:
    kinesis, sqs, queue = aws
    data = b"x" * 200_000
    process_batch([StreamRecord("9", "k", data)], model, KinesisWriter(kinesis, "out"), FailureQueue(sqs, queue))
    body = json.loads(sqs.receive_message(QueueUrl=queue)["Messages"][0]["Body"])
    assert body["record"]["data_truncated"] is True and body["record"]["data_bytes"] == 200_000
    assert base64.b64decode(body["record"]["data_base64"]) == data[: 64 * 1024]


def test_firehose_output_is_json_lines_with_the_partition_key(model: Any, breast_cancer: Any) -> None:
    import boto3
    from moto import mock_aws

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="out")
        firehose = boto3.client("firehose", region_name="us-east-1")
        firehose.create_delivery_stream(
            DeliveryStreamName="preds",
            ExtendedS3DestinationConfiguration={
                "RoleARN": "arn:aws:iam::123456789012:role/firehose",
                "BucketARN": "arn:aws:s3:::out",
                "Prefix": "stream-output/",
            },
        )
        sqs = boto3.client("sqs", region_name="us-east-1")
        queue = sqs.create_queue(QueueName="f")["QueueUrl"]
        batch = records(breast_cancer.head(3).to_dict(orient="records"))
        outcome = process_batch(batch, model, FirehoseWriter(firehose, "preds"), FailureQueue(sqs, queue))
        assert outcome.response() == {"batchItemFailures": []}
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="out")["Contents"]]
        lines = b"".join(s3.get_object(Bucket="out", Key=k)["Body"].read() for k in keys).splitlines()
        bodies = [json.loads(line) for line in lines]
        assert [b["partition_key"] for b in bodies] == ["k0", "k1", "k2"]
        assert all(len(b["predictions"]) == 1 for b in bodies)
