"""The webhook Lambda behind POST /registry/events: signature, freshness, replays, routing.
Deliveries are signed exactly as MLflow signs them (mlflow.webhooks.delivery)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from tests.integration.promotion.conftest import MODEL, WEBHOOK_SECRET, Aws, api_gateway_event


def delivery(
    data: dict[str, Any] | None = None,
    *,
    entity: str = "model_version_alias",
    action: str = "created",
    secret: str = WEBHOOK_SECRET,
    age: float = 0,
    delivery_id: str | None = None,
) -> dict[str, Any]:
    from mlflow.webhooks.delivery import _generate_hmac_signature

    payload = json.dumps(
        {
            "entity": entity,
            "action": action,
            "timestamp": "2026-01-01T00:00:00+00:00",
            "data": data if data is not None else {"name": MODEL, "alias": "champion", "version": "4"},
        }
    )
    delivery_id = delivery_id or str(uuid.uuid4())
    timestamp = str(int(time.time() - age))
    headers = {
        "Content-Type": "application/json",
        "X-MLflow-Delivery-Id": delivery_id,
        "X-MLflow-Timestamp": timestamp,
        "X-MLflow-Signature": _generate_hmac_signature(secret, delivery_id, timestamp, payload),
    }
    return api_gateway_event("POST", "/registry/events", headers, payload)


def call(event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    from lambda_promote.webhook import handler

    result = handler(event, None)
    return result["statusCode"], json.loads(result["body"])


def test_accepted_delivery_puts_model_promoted(aws: Aws) -> None:
    status, body = call(delivery())
    assert (status, body["status"]) == (202, "accepted")
    [event] = aws.drain(wait=2)
    assert (event["source"], event["detail-type"]) == ("mlserve.registry", "ModelPromoted")
    detail = event["detail"]
    assert (detail["model_name"], detail["version"], detail["source"], detail["alias"]) == (
        MODEL,
        "4",
        "mlflow-alias",
        "champion",
    )
    assert detail["requested_by"] == "mlflow-webhook" and detail["delivery_id"]


def test_bad_signature_is_401_and_puts_nothing(aws: Aws) -> None:
    assert call(delivery(secret="wrong"))[0] == 401
    tampered = delivery()
    tampered["body"] = tampered["body"].replace('"4"', '"5"')
    assert call(tampered)[0] == 401
    unsigned = delivery()
    del unsigned["headers"]["X-MLflow-Signature"]
    assert call(unsigned)[0] == 401
    assert aws.drain(wait=0.5) == []


def test_replayed_delivery_is_ignored(aws: Aws) -> None:
    event = delivery()
    assert call(event)[0] == 202
    status, body = call(event)
    assert (status, body["status"]) == (200, "duplicate")
    assert len(aws.drain(wait=1)) == 1


def test_stale_timestamp_is_rejected(aws: Aws) -> None:
    status, body = call(delivery(age=301))
    assert status == 401 and "stale" in body["error"]
    assert call(delivery(age=240))[0] == 202


@pytest.mark.parametrize(
    "kwargs",
    [
        {"entity": "model_version", "action": "created", "data": {"name": MODEL, "version": "4"}},
        {"data": {"name": MODEL, "alias": "challenger", "version": "4"}},
        {"data": {"name": "some-other-model", "alias": "champion", "version": "4"}},
    ],
    ids=["other-event", "other-alias", "other-model"],
)
def test_other_events_are_200_ignored(aws: Aws, kwargs: dict[str, Any]) -> None:
    status, body = call(delivery(**kwargs))
    assert (status, body["status"]) == (200, "ignored")
    assert aws.drain(wait=0.3) == []


def test_malformed_signed_body_is_400(aws: Aws) -> None:
    assert call(delivery(data={"name": MODEL}))[0] == 400


def test_sagemaker_approval_is_routed_and_mapped(aws: Aws) -> None:
    from mlserve.promotion.events import promotion_from_eventbridge

    detail = {
        "ModelPackageGroupName": "mlserve-demo-group",
        "ModelPackageVersion": 3,
        "ModelPackageArn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlserve-demo-group/3",
        "ModelApprovalStatus": "Approved",
        "InferenceSpecification": {"Containers": [{"ModelDataUrl": "s3://registry-bucket/models/demo/3/"}]},
    }
    for group, status in (
        ("mlserve-demo-group", "Approved"),
        ("other-group", "Approved"),
        ("mlserve-demo-group", "PendingManualApproval"),
    ):
        aws.events.put_events(
            Entries=[
                {
                    "Source": "aws.sagemaker",
                    "DetailType": "SageMaker Model Package State Change",
                    "Detail": json.dumps({**detail, "ModelPackageGroupName": group, "ModelApprovalStatus": status}),
                    "EventBusName": "mlserve-test-bus",
                }
            ]
        )
    [event] = aws.drain(wait=2)
    promotion = promotion_from_eventbridge(event, package_group="mlserve-demo-group", model_name=MODEL)
    assert promotion is not None
    assert (promotion.model_name, promotion.version, promotion.source, promotion.artifact_uri) == (
        MODEL,
        "3",
        "sagemaker",
        "s3://registry-bucket/models/demo/3/",
    )
