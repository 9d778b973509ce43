"""The stream consumer end to end over moto Kinesis: real ``put_records`` into an input
stream, the Lambda Kinesis event built from real ``get_records`` output, the real handler
(``lambda_batch.stream.handler``), predictions read back from the output stream."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest

from mlserve.errors import ModelUnavailableError
from tests.conftest import publish
from tests.integration.streaming.conftest import IN_STREAM, MODEL, OUT_STREAM, StreamWorld, model_predict
from tests.kinesis_events import read_stream, shard_batches


def handle(event: dict[str, Any]) -> dict[str, Any]:
    import lambda_batch.stream as stream_handler

    return stream_handler.handler(event, None)


def test_predictions_equal_model_predict(published_world: StreamWorld, demo_registry: Any, breast_cancer: Any) -> None:
    frame = breast_cancer.head(60)
    rows = frame.to_dict(orient="records")
    payloads: list[tuple[str, Any]] = []
    # 20 records of {"id", "instances": [2 rows]} and 20 single-row objects.
    for i in range(20):
        payloads.append((f"customer-{i % 4}", {"id": f"req-{i}", "instances": rows[2 * i : 2 * i + 2]}))
    for i in range(20):
        payloads.append((f"customer-{i % 4}", rows[40 + i]))
    sequence_numbers = published_world.put(payloads)

    for event in shard_batches(published_world.kinesis, IN_STREAM, batch_size=100):
        assert handle(event) == {"batchItemFailures": []}

    out = read_stream(published_world.kinesis, OUT_STREAM)
    assert len(out) == 40
    expected = model_predict(demo_registry, frame)
    by_sequence = {body["sequence_number"]: (key, body) for key, body in out}
    for i, sequence in enumerate(sequence_numbers):
        key, body = by_sequence[sequence]
        assert key == payloads[i][0]  # same partition key as the input record
        assert body["partition_key"] == key
        assert body["model"] == {"name": MODEL, "version": "1", "run_id": demo_registry.classifier_run_id}
        if i < 20:
            assert body["id"] == f"req-{i}"
            assert body["predictions"] == expected[2 * i : 2 * i + 2]
        else:
            assert body["id"] is None
            assert body["predictions"] == [expected[20 + i]]
    assert published_world.failures() == []


def test_malformed_records_go_to_the_failure_queue_and_the_rest_are_scored(
    published_world: StreamWorld, demo_registry: Any, breast_cancer: Any
) -> None:
    rows = breast_cancer.head(3).to_dict(orient="records")
    missing = dict(rows[1])
    del missing["mean radius"]
    wrong_type = dict(rows[1]) | {"mean texture": "high"}
    payloads: list[tuple[str, Any]] = [
        ("a", {"id": "good-1", "instances": [rows[0]]}),
        ("b", b"{not json"),
        ("c", "[1, 2, 3]"),
        ("d", {"id": "missing", "instances": [missing]}),
        ("e", {"id": "typed", "instances": [wrong_type]}),
        ("f", {"id": "extra", "instances": [rows[1]], "priority": "high"}),
        ("g", {"id": "empty", "instances": []}),
        ("h", {"id": "good-2", "instances": [rows[2]]}),
    ]
    sequence_numbers = published_world.put(payloads)

    [event] = shard_batches(published_world.kinesis, IN_STREAM, batch_size=100)
    # Malformed records are NOT reported as failures: they would be retried forever.
    assert handle(event) == {"batchItemFailures": []}

    out = read_stream(published_world.kinesis, OUT_STREAM)
    assert [body["id"] for _, body in out] == ["good-1", "good-2"]
    expected = model_predict(demo_registry, breast_cancer.head(3))
    assert [body["predictions"] for _, body in out] == [[expected[0]], [expected[2]]]

    failures = {m["record"]["sequence_number"]: m for m in published_world.failures()}
    assert set(failures) == set(sequence_numbers[1:7])
    for message in failures.values():
        assert message["kind"] == "malformed_record"
        assert message["model"]["version"] == "1"
        assert message["record"]["event_source_arn"].endswith(f"stream/{IN_STREAM}")
        assert message["record"]["shard_id"].startswith("shardId-")
    assert failures[sequence_numbers[1]]["reason"]["code"] == "malformed_json"
    assert failures[sequence_numbers[1]]["record"]["partition_key"] == "b"
    import base64

    assert base64.b64decode(failures[sequence_numbers[1]]["record"]["data_base64"]) == b"{not json"
    assert "JSON object" in failures[sequence_numbers[2]]["reason"]["message"]
    missing_reason = failures[sequence_numbers[3]]["reason"]
    assert missing_reason["code"] == "validation_error"
    assert missing_reason["details"][0]["loc"] == ["instances", 0, "mean radius"]
    assert failures[sequence_numbers[4]]["reason"]["details"][0]["loc"] == ["instances", 0, "mean texture"]
    assert "priority" in failures[sequence_numbers[5]]["reason"]["message"]
    assert "at least one row" in failures[sequence_numbers[6]]["reason"]["message"]


def test_model_that_cannot_load_fails_the_whole_batch(stream_world: StreamWorld, breast_cancer: Any) -> None:
    """No live model: the handler raises, so the mapping retries the batch; nothing is
    written and nothing is called malformed."""
    rows = breast_cancer.head(2).to_dict(orient="records")
    stream_world.put([("a", {"instances": [rows[0]]}), ("b", b"{not json")])
    [event] = shard_batches(stream_world.kinesis, IN_STREAM, batch_size=100)
    with pytest.raises(ModelUnavailableError, match="not available"):
        handle(event)
    assert read_stream(stream_world.kinesis, OUT_STREAM) == []
    assert stream_world.failures() == []


def test_a_tampered_model_fails_the_batch_instead_of_scoring(published_world: StreamWorld, breast_cancer: Any) -> None:
    """A live pointer whose checksum does not match the artifact: refused before loading."""
    s3 = published_world.s3
    from tests.conftest import MODEL_BUCKET

    pointer = json.loads(s3.get_object(Bucket=MODEL_BUCKET, Key=f"models/{MODEL}/live.json")["Body"].read())
    pointer["checksums"] = {name: "0" * 64 for name in pointer["checksums"]}
    s3.put_object(Bucket=MODEL_BUCKET, Key=f"models/{MODEL}/live.json", Body=json.dumps(pointer).encode())
    published_world.put([("a", breast_cancer.head(1).to_dict(orient="records")[0])])
    [event] = shard_batches(published_world.kinesis, IN_STREAM, batch_size=100)
    with pytest.raises(ModelUnavailableError):
        handle(event)
    assert read_stream(published_world.kinesis, OUT_STREAM) == []


def test_replayed_batch_carries_the_same_sequence_numbers(published_world: StreamWorld, breast_cancer: Any) -> None:
    """At-least-once: a replayed batch produces the same output records (same sequence
    number, same predictions), so a consumer dedupes on sequence_number."""
    rows = breast_cancer.head(5).to_dict(orient="records")
    published_world.put([(str(i), row) for i, row in enumerate(rows)])
    [event] = shard_batches(published_world.kinesis, IN_STREAM, batch_size=100)
    handle(event)
    handle(event)
    out = [body for _, body in read_stream(published_world.kinesis, OUT_STREAM)]
    assert len(out) == 10
    deduped = {body["sequence_number"]: body for body in out}
    assert len(deduped) == 5
    assert out[:5] == out[5:]


def test_hot_swap_between_batches(published_world: StreamWorld, demo_registry: Any, breast_cancer: Any) -> None:
    row = breast_cancer.head(1).to_dict(orient="records")[0]
    published_world.put([("a", row)])
    [first] = shard_batches(published_world.kinesis, IN_STREAM, batch_size=100)
    handle(first)
    publish(published_world.store, demo_registry.classifier_dir, name=MODEL, version="2")
    handle(first)  # refresh_seconds=0: the next batch is scored by the new live version
    versions = [body["model"]["version"] for _, body in read_stream(published_world.kinesis, OUT_STREAM)]
    assert versions == ["1", "2"]


def test_batch_of_1000_records_is_one_predict_and_all_written(
    published_world: StreamWorld, demo_registry: Any, breast_cancer: Any
) -> None:
    """More than one PutRecords call (500 records each) on the way out."""
    frame = pd.concat([breast_cancer] * 2).head(1000)
    published_world.put([(f"k{i % 7}", row) for i, row in enumerate(frame.to_dict(orient="records")[:500])])
    published_world.put([(f"k{i % 7}", row) for i, row in enumerate(frame.to_dict(orient="records")[500:])])
    events = shard_batches(published_world.kinesis, IN_STREAM, batch_size=1000)
    assert sum(len(event["Records"]) for event in events) == 1000
    for event in events:
        assert handle(event) == {"batchItemFailures": []}
    out = read_stream(published_world.kinesis, OUT_STREAM)
    assert [p for _, body in out for p in body["predictions"]] == model_predict(demo_registry, frame)
