"""Drift monitoring on the deployed stack: publish a version with its reference profile,
send shifted traffic through the API (captured via the Firehose stream into the
monitoring bucket) and drop a shifted CSV into the batch bucket (read in place), invoke
the drift job, and find the injected drift on the shifted feature and on no other; the
report is in the bucket and served by GET /monitoring/latest, ModelDriftDetected reaches
the bus, DriftedFeatureShare is in CloudWatch.

Uses only the deployed defaults: capture_columns is empty, so requests are captured with
their predictions only, and the features come from the batch input. With
``-c capture_columns='["*"]'`` the captured requests carry every feature too (checked
when the deployed API says so)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import publish
from tests.e2e.conftest import Deployed, find_output, http

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]
MODEL = "demo-classifier"
SHIFTED = "mean radius"


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 120, interval: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except OSError as exc:  # a cold start on a busy emulator can outlast one HTTP timeout
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def test_drift_job_finds_only_the_shifted_feature(
    deployed: Deployed, demo_registry: Any, breast_cancer: Any, tmp_path: Path
) -> None:
    from mlserve.monitoring.profile import PROFILE_FILE, profile_bytes, reference_profile_for_model
    from mlserve.store import open_store

    monitoring_bucket = find_output(deployed.outputs, "monitoring", "bucket")
    drift_function = find_output(deployed.outputs, "drift", "function")
    s3 = deployed.client("s3")

    # 1. A new version with its reference profile becomes live.
    reference = tmp_path / "reference.csv"
    breast_cancer.to_csv(reference, index=False)
    profile = reference_profile_for_model(demo_registry.classifier_dir, reference, allow_pickle=False)
    version = f"drift-{uuid.uuid4().hex[:6]}"
    store = open_store(f"s3://{deployed.model_bucket}", s3_client=s3)
    publish(
        store,
        demo_registry.classifier_dir,
        name=MODEL,
        version=version,
        extra_files={PROFILE_FILE: profile_bytes(profile)},
    )
    wait_for(
        f"the API to serve {version}",
        lambda: (lambda r: r[0] == 200 and r[1]["model"]["version"] == version)(http("GET", f"{deployed.api}/health")),
        timeout=300,
    )

    # 2. Shifted traffic: requests (captured) and a batch input (read in place).
    shifted = breast_cancer.sample(frac=1.0, random_state=11).reset_index(drop=True)
    shifted[SHIFTED] = shifted[SHIFTED] * 1.6
    records = shifted.to_dict(orient="records")
    for start in range(0, len(records), 50):
        status, body = http(
            "POST", f"{deployed.api}/predict", json.dumps({"instances": records[start : start + 50]}).encode()
        )
        assert status == 200, body
    s3.put_object(
        Bucket=deployed.batch_bucket, Key=f"incoming/drift-{version}.csv", Body=shifted.to_csv(index=False).encode()
    )
    capture_prefix = f"capture/{MODEL}/{version}/"

    def captured() -> int:
        listing = s3.list_objects_v2(Bucket=monitoring_bucket, Prefix=capture_prefix)
        return int(listing.get("KeyCount", 0))

    wait_for(f"captured requests under s3://{monitoring_bucket}/{capture_prefix}", captured, timeout=120, interval=2)

    # 3. Catch the event the job puts on the project bus.
    sqs = deployed.client("sqs")
    events = deployed.client("events")
    queue_url = sqs.create_queue(QueueName=f"drift-{version}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule = f"drift-test-{version}"
    events.put_rule(
        Name=rule,
        EventBusName=deployed.event_bus,
        EventPattern=json.dumps({"source": ["mlserve.monitoring"], "detail-type": ["ModelDriftDetected"]}),
    )
    events.put_targets(Rule=rule, EventBusName=deployed.event_bus, Targets=[{"Id": "queue", "Arn": queue_arn}])

    # 4. Run the job now (the schedule would, daily).
    response = deployed.client("lambda").invoke(FunctionName=drift_function, Payload=b"{}")
    result = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, result
    assert result["status"] == "ok" and result["version"] == version
    assert result["drifted_features"] == [SHIFTED], result
    assert result["current_rows"]["captured"] >= len(records)
    assert result["current_rows"]["batch"] >= len(records)

    report = json.loads(s3.get_object(Bucket=monitoring_bucket, Key=result["report"])["Body"].read())
    assert report["features"][SHIFTED]["drifted"] and report["features"][SHIFTED]["psi"] > 0.2
    assert [name for name, feature in report["features"].items() if feature["drifted"]] == [SHIFTED]
    html = s3.get_object(Bucket=monitoring_bucket, Key=result["html"])["Body"].read()
    assert b"<svg" in html and SHIFTED.encode() in html

    status, latest = http("GET", f"{deployed.api}/monitoring/latest")
    assert status == 200 and latest["version"] == version and latest["drifted_features"] == [SHIFTED]

    def drift_event() -> Any:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in messages]

    [event] = wait_for("ModelDriftDetected on the bus", drift_event, timeout=60, interval=2)
    assert event["detail"]["drifted_features"] == [SHIFTED] and event["detail"]["version"] == version

    metrics = deployed.client("cloudwatch").list_metrics(Namespace="mlserve", MetricName="DriftedFeatureShare")
    assert any(m["Dimensions"] == [{"Name": "Model", "Value": MODEL}] for m in metrics["Metrics"])
