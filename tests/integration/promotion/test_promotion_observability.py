"""Powertools wiring of the promotion functions: the EventBridge event id / API Gateway
request id as correlation id, the model name/version on log lines, EMF metrics for
redeploy outcomes (model version as a dimension) and webhook deliveries, and no webhook
payload, signature or secret in any log line."""

from __future__ import annotations

import io
import json
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlserve import observability
from mlserve.errors import MlserveError
from mlserve.promotion.webhook import sign
from tests.apigw_events import FakeLambdaContext
from tests.integration.promotion.conftest import MODEL, WEBHOOK_SECRET, Aws, api_gateway_event
from tests.log_capture import capture_logs, dimensions, emf, json_lines

SENTINEL = "SENTINEL-5d21f0-do-not-log"


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    yield from capture_logs(monkeypatch)


# -- redeploy ---------------------------------------------------------------------------------


def promoted_event(version: str, event_id: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "ModelPromoted",
        "source": "mlserve.registry",
        "account": "123456789012",
        "time": "2026-11-25T12:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {"model_name": MODEL, "version": version, "source": "cli", "requested_by": "tests"},
    }


@pytest.fixture
def redeploy_handler(
    demo_registry: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Any, dict[str, Any]]]:
    """The real Lambda handler over a Redeployer with a local store and a resolver that
    copies the demo model; ``knobs`` steers the registry's answers."""
    import lambda_promote.redeploy as module
    from mlserve.promotion.redeploy import RedeployConfig, Redeployer, Resolved

    knobs: dict[str, Any] = {"target": None, "fail": False}

    def resolve(promotion: Any, dest: Path) -> Resolved:
        if knobs["fail"]:
            raise MlserveError("artifact is gone", code="artifact_unavailable")
        shutil.copytree(demo_registry.classifier_dir, dest)
        return Resolved(dest, f"models:/{promotion.model_name}/{promotion.version}", None)

    config = RedeployConfig(store_uri=(tmp_path / "store").as_uri(), work_dir=tmp_path / "work")
    redeployer = Redeployer(config, target_lookup=lambda promotion: knobs["target"], resolver=resolve)
    monkeypatch.setitem(module._state, "redeployer", redeployer)
    yield module.handler, knobs
    module.reset()


def test_redeploy_outcomes_are_metrics_with_model_version(
    redeploy_handler: tuple[Any, dict[str, Any]], logs: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    handler, knobs = redeploy_handler
    outcomes = [handler(promoted_event("2", "evt-deployed"), FakeLambdaContext())["status"]]
    outcomes.append(handler(promoted_event("2", "evt-again"), FakeLambdaContext())["status"])
    knobs["target"] = "9"
    outcomes.append(handler(promoted_event("3", "evt-superseded"), FakeLambdaContext())["status"])
    knobs["target"], knobs["fail"] = None, True
    outcomes.append(handler(promoted_event("4", "evt-failed"), FakeLambdaContext())["status"])
    assert outcomes == ["deployed", "already_live", "superseded", "failed"]

    out = capsys.readouterr().out
    redeploys = emf(out, observability.REDEPLOYS)
    seen = [(b["outcome"], b["model_name"], b["model_version"]) for b in redeploys]
    assert seen == [
        ("deployed", MODEL, "2"),
        ("already_live", MODEL, "2"),
        ("superseded", MODEL, "3"),
        ("failed", MODEL, "4"),
    ]
    for blob in redeploys:
        assert blob["_aws"]["CloudWatchMetrics"][0]["Namespace"] == observability.NAMESPACE
        # the dashboard's SEARCH schema: exactly these dimensions
        assert dimensions(blob) == {"model_name", "model_version", "outcome", "service"}
    seconds = emf(out, observability.REDEPLOY_SECONDS)
    assert [b["outcome"] for b in seconds] == ["deployed", "already_live", "superseded", "failed"]
    for blob in seconds:
        value = blob[observability.REDEPLOY_SECONDS]
        assert all(v >= 0 for v in (value if isinstance(value, list) else [value]))

    lines = json_lines(logs.getvalue())
    final = [line for line in lines if line.get("message") == "redeploy outcome"]
    assert [(line["correlation_id"], line["model_version"]) for line in final] == [
        ("evt-deployed", "2"),
        ("evt-again", "2"),
        ("evt-superseded", "3"),
        ("evt-failed", "4"),
    ]
    assert all(line["model_name"] == MODEL for line in final)
    # lines of the runtime (stdlib loggers) carry them too
    live = [line for line in lines if "is live" in str(line.get("message"))]
    assert live and live[0]["correlation_id"] == "evt-deployed" and live[0]["model_version"] == "2"


def test_transient_failure_counts_as_failed_before_the_retry(
    redeploy_handler: tuple[Any, dict[str, Any]], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlserve.promotion.redeploy import TransientRedeployError

    handler, _ = redeploy_handler

    def unavailable(promotion: Any) -> str | None:
        from mlserve.promotion.mlflow_rest import RegistryError

        error = RegistryError("registry down")
        error.transient = True
        raise error

    import lambda_promote.redeploy

    monkeypatch.setattr(lambda_promote.redeploy._state["redeployer"], "target_lookup", unavailable)
    with pytest.raises(TransientRedeployError):
        handler(promoted_event("5", "evt-transient"), FakeLambdaContext())
    [blob] = emf(capsys.readouterr().out, observability.REDEPLOYS)
    assert (blob["outcome"], blob["model_version"]) == ("failed", "5")


# -- webhook ----------------------------------------------------------------------------------


def webhook_event(payload: str, *, secret: str = WEBHOOK_SECRET, delivery_id: str | None = None) -> dict[str, Any]:
    delivery_id = delivery_id or str(uuid.uuid4())
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-MLflow-Delivery-Id": delivery_id,
        "X-MLflow-Timestamp": timestamp,
        "X-MLflow-Signature": sign(secret, delivery_id, timestamp, payload),
    }
    event = api_gateway_event("POST", "/registry/events", headers, payload)
    event["requestContext"]["requestId"] = f"apigw-{uuid.uuid4()}"
    return event


def alias_payload(name: str = MODEL, alias: str = "champion", version: str = "4", **extra: Any) -> str:
    return json.dumps(
        {
            "entity": "model_version_alias",
            "action": "created",
            "timestamp": "2026-01-01T00:00:00+00:00",
            "data": {"name": name, "alias": alias, "version": version, **extra},
            "note": SENTINEL,
        }
    )


def test_webhook_deliveries_logged_by_outcome_without_payload_or_secret(
    aws: Aws, logs: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    from lambda_promote.webhook import handler

    accepted = webhook_event(alias_payload(description=SENTINEL))
    cases = [
        (accepted, 202),
        (accepted, 200),  # replay: duplicate
        (webhook_event(alias_payload(alias=SENTINEL)), 200),  # other alias: ignored
        (webhook_event(alias_payload(name=SENTINEL)), 200),  # other model: ignored
        (webhook_event(alias_payload(), secret=SENTINEL), 401),  # bad signature: rejected
        (webhook_event(SENTINEL), 400),  # signed, but not a webhook payload: rejected
    ]
    statuses = [handler(event, FakeLambdaContext())["statusCode"] for event, _ in cases]
    assert statuses == [status for _, status in cases]

    captured = capsys.readouterr()
    logged = logs.getvalue() + captured.out + captured.err
    assert SENTINEL not in logged
    assert WEBHOOK_SECRET not in logged
    for event, _ in cases:
        assert event["headers"]["X-MLflow-Signature"] not in logged

    lines = [line for line in json_lines(logs.getvalue()) if "webhook_outcome" in line]
    assert [(line["webhook_outcome"], line["reason"]) for line in lines] == [
        ("accepted", "promoted"),
        ("duplicate", "replayed_delivery"),
        ("ignored", "other_alias"),
        ("ignored", "other_model"),
        ("rejected", "bad_signature"),
        ("rejected", "malformed_body"),
    ]
    for line, (event, _) in zip(lines, cases, strict=True):
        assert line["correlation_id"] == event["requestContext"]["requestId"]
    assert (lines[0]["model_name"], lines[0]["model_version"]) == (MODEL, "4")
    assert lines[0]["delivery_id"] == accepted["headers"]["X-MLflow-Delivery-Id"]
    assert all("model_name" not in line for line in lines[1:])  # not carried over
    assert "delivery_id" not in lines[4]  # unsigned: nothing of it is trusted

    outcomes = [b["outcome"] for b in emf(captured.out, observability.WEBHOOK_DELIVERIES)]
    assert outcomes == ["accepted", "duplicate", "ignored", "ignored", "rejected", "rejected"]
