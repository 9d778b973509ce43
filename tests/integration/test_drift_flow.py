"""The whole drift flow against moto: publish with a reference profile -> the real Mangum
handler captures requests through Kinesis Data Firehose into S3 -> the drift job Lambda
handler finds the injected shift (and only it), writes the JSON + HTML report, publishes
CloudWatch metrics and puts ModelDriftDetected on the bus -> the API serves the report."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.apigw_events import FakeLambdaContext, rest_v1_event
from tests.conftest import MODEL_BUCKET

MONITORING_BUCKET = "mlserve-monitoring-test"
STREAM = "mlserve-capture-test"
BUS = "mlserve-test-bus"
SHIFTED = "mean radius"
MODEL = "demo-classifier"


@pytest.fixture
def aws(s3: Any) -> Iterator[dict[str, Any]]:
    """moto (already active through the s3 fixture): buckets, the Firehose stream, the bus
    with a rule that copies ModelDriftDetected events into an SQS queue we can read."""
    import boto3

    s3.create_bucket(Bucket=MONITORING_BUCKET)
    iam = boto3.client("iam")
    role = iam.create_role(RoleName="firehose", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    firehose = boto3.client("firehose")
    firehose.create_delivery_stream(
        DeliveryStreamName=STREAM,
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": role,
            "BucketARN": f"arn:aws:s3:::{MONITORING_BUCKET}",
            "Prefix": f"capture/{MODEL}/",
            "CompressionFormat": "GZIP",
            "BufferingHints": {"IntervalInSeconds": 60, "SizeInMBs": 5},
        },
    )
    events = boto3.client("events")
    events.create_event_bus(Name=BUS)
    sqs = boto3.client("sqs")
    queue_url = sqs.create_queue(QueueName="drift-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name="drift",
        EventBusName=BUS,
        EventPattern=json.dumps({"source": ["mlserve.monitoring"], "detail-type": ["ModelDriftDetected"]}),
    )
    events.put_targets(Rule="drift", EventBusName=BUS, Targets=[{"Id": "q", "Arn": queue_arn}])
    yield {"s3": s3, "sqs": sqs, "queue_url": queue_url, "cloudwatch": boto3.client("cloudwatch")}


@pytest.fixture
def published(aws: dict[str, Any], demo_registry: Any, breast_cancer: Any, tmp_path: Path) -> Path:
    from mlserve.registry import publish_model_uri

    reference = tmp_path / "reference.csv"
    breast_cancer.to_csv(reference, index=False)
    publish_model_uri(
        str(demo_registry.classifier_dir), f"s3://{MODEL_BUCKET}", name=MODEL, version="1", reference=reference
    )
    return reference


@pytest.fixture
def api(published: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("MLSERVE_STORE", f"s3://{MODEL_BUCKET}")
    monkeypatch.setenv("MLSERVE_MODEL_NAME", MODEL)
    monkeypatch.setenv("MLSERVE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MLSERVE_MONITORING_STORE", f"s3://{MONITORING_BUCKET}")
    monkeypatch.setenv("MLSERVE_CAPTURE_STREAM", STREAM)
    monkeypatch.setenv("MLSERVE_CAPTURE_COLUMNS", "*")
    monkeypatch.setenv("MLSERVE_CAPTURE_MAX_ROWS_PER_MINUTE", "100000")
    monkeypatch.setenv("MLSERVE_CAPTURE_FLUSH_SECONDS", "3600")  # the test flushes explicitly
    monkeypatch.setenv("MLSERVE_EVENT_BUS", BUS)
    import lambda_api.app
    import lambda_api.handler as module
    from mlserve.monitoring import capture

    capture.reset_capturer()
    monkeypatch.setattr(module.handler, "app", module.StagePrefix(lambda_api.app.create_app()))
    yield module.handler
    capture.reset_capturer()


def call(handler: Any, method: str, path: str, body: Any = None) -> tuple[int, dict[str, str], Any]:
    payload = json.dumps(body) if body is not None else None
    headers = {"Content-Type": "application/json"} if payload else {}
    response = handler(rest_v1_event(method, path, payload, headers), FakeLambdaContext())
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    content = response["body"]
    if headers.get("content-type", "").startswith("application/json"):
        content = json.loads(content)
    return response["statusCode"], headers, content


def send_shifted_traffic(api: Any, features: Any) -> int:
    """Every reference row again (shuffled), with one feature shifted by +60 %."""
    current = features.sample(frac=1.0, random_state=7).reset_index(drop=True)
    current[SHIFTED] = current[SHIFTED] * 1.6
    records = current.to_dict(orient="records")
    for start in range(0, len(records), 50):
        status, _, body = call(api, "POST", "/predict", {"instances": records[start : start + 50]})
        assert status == 200, body
    return len(records)


def test_capture_through_firehose_then_the_job_finds_only_the_shifted_feature(
    api: Any, aws: dict[str, Any], breast_cancer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlserve.monitoring.capture import capturer

    sent = send_shifted_traffic(api, breast_cancer)
    recorder = capturer()
    assert recorder is not None
    recorder.flush()
    assert recorder.stats["captured_rows"] == sent and recorder.stats["failed_records"] == 0
    captured = aws["s3"].list_objects_v2(Bucket=MONITORING_BUCKET, Prefix=f"capture/{MODEL}/")
    assert captured["KeyCount"] >= 1

    import lambda_batch.drift as job

    result = job.handler({"source": "aws.scheduler"}, None)
    assert result["status"] == "ok"
    assert result["drifted_features"] == [SHIFTED]
    assert result["current_rows"]["captured"] == sent
    assert result["share_drifted"] == pytest.approx(1 / 30)

    date = f"{datetime.now(UTC):%Y-%m-%d}"
    report = json.loads(
        aws["s3"].get_object(Bucket=MONITORING_BUCKET, Key=f"monitoring/{MODEL}/drift/{date}.json")["Body"].read()
    )
    assert report["features"][SHIFTED]["drifted"] is True
    assert report["features"][SHIFTED]["psi"] > 0.5
    assert all(not f["drifted"] for name, f in report["features"].items() if name != SHIFTED)
    assert all(f["psi"] < 1e-9 for name, f in report["features"].items() if name != SHIFTED)
    html = aws["s3"].get_object(Bucket=MONITORING_BUCKET, Key=f"monitoring/{MODEL}/drift/{date}.html")["Body"].read()
    assert b"<svg" in html and b"mean radius" in html and b"<script" not in html

    metrics = aws["cloudwatch"].list_metrics(Namespace="mlserve", MetricName="DriftedFeatureShare")["Metrics"]
    assert metrics and metrics[0]["Dimensions"] == [{"Name": "Model", "Value": MODEL}]
    drifted = aws["cloudwatch"].list_metrics(
        Namespace="mlserve", MetricName="FeatureDrifted", Dimensions=[{"Name": "Feature", "Value": SHIFTED}]
    )["Metrics"]
    assert drifted

    messages = aws["sqs"].receive_message(QueueUrl=aws["queue_url"], MaxNumberOfMessages=10)["Messages"]
    events = [json.loads(m["Body"]) for m in messages]
    assert [e["detail-type"] for e in events] == ["ModelDriftDetected"]
    assert events[0]["detail"]["drifted_features"] == [SHIFTED]
    assert events[0]["detail"]["report"] == f"s3://{MONITORING_BUCKET}/monitoring/{MODEL}/drift/{date}.json"

    status, _, latest = call(api, "GET", "/monitoring/latest")
    assert status == 200 and latest["drifted_features"] == [SHIFTED]
    status, headers, page = call(api, "GET", "/monitoring/latest.html")
    assert status == 200 and "script-src" not in headers["content-security-policy"]
    assert "default-src 'none'" in headers["content-security-policy"] and "<svg" in page


def test_unshifted_traffic_is_not_drift_and_puts_no_event(api: Any, aws: dict[str, Any], breast_cancer: Any) -> None:
    from mlserve.monitoring.capture import capturer

    records = breast_cancer.sample(frac=1.0, random_state=3).to_dict(orient="records")
    for start in range(0, len(records), 100):
        assert call(api, "POST", "/predict", {"instances": records[start : start + 100]})[0] == 200
    recorder = capturer()
    assert recorder is not None
    recorder.flush()
    import lambda_batch.drift as job

    result = job.handler({}, None)
    assert result["status"] == "ok" and result["drifted_features"] == [] and not result["dataset_drift"]
    assert "Messages" not in aws["sqs"].receive_message(QueueUrl=aws["queue_url"], WaitTimeSeconds=0)


def test_capture_failure_never_fails_a_prediction(api: Any, aws: dict[str, Any], breast_cancer: Any) -> None:
    """The stream is gone: predictions still answer 200; the failed records are counted."""
    import boto3

    from mlserve.monitoring.capture import capturer

    boto3.client("firehose").delete_delivery_stream(DeliveryStreamName=STREAM)
    records = breast_cancer.head(5).to_dict(orient="records")
    status, _, body = call(api, "POST", "/predict", {"instances": records})
    assert status == 200 and len(body["predictions"]) == 5
    recorder = capturer()
    assert recorder is not None
    assert recorder.flush() == 0
    assert recorder.stats["failed_records"] == 1


def test_without_a_reference_the_job_says_so(
    aws: dict[str, Any], demo_registry: Any, s3_store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import publish

    publish(s3_store, demo_registry.classifier_dir, name=MODEL, version="1")
    monkeypatch.setenv("MLSERVE_STORE", f"s3://{MODEL_BUCKET}")
    monkeypatch.setenv("MLSERVE_MODEL_NAME", MODEL)
    monkeypatch.setenv("MLSERVE_MONITORING_STORE", f"s3://{MONITORING_BUCKET}")
    import lambda_batch.drift as job

    result = job.handler({}, None)
    assert result["status"] == "no_reference"
    date = f"{datetime.now(UTC):%Y-%m-%d}"
    report = json.loads(
        aws["s3"].get_object(Bucket=MONITORING_BUCKET, Key=f"monitoring/{MODEL}/drift/{date}.json")["Body"].read()
    )
    assert "no reference profile" in report["message"] and "--reference" in report["message"]
