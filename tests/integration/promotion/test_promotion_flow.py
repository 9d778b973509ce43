"""The whole flow with a real MLflow server: alias set -> signed webhook -> receiver ->
moto EventBridge -> redeploy -> live.json -> the API handler answers with the new version."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.promotion.conftest import MODEL, WEBHOOK_SECRET, Aws, MlflowServer, Receiver

ROW_COUNT = 2


def example_rows() -> list[dict[str, Any]]:
    from examples.train import breast_cancer_frame

    features, _ = breast_cancer_frame()
    return json.loads(features.head(ROW_COUNT).to_json(orient="records"))


def pump(aws: Aws, want: int = 1, timeout: float = 60.0) -> list[dict[str, Any]]:
    """Deliver what the rule routed to its target to the redeploy handler (as Lambda would)."""
    from lambda_promote.redeploy import handler

    outcomes: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(outcomes) < want and time.monotonic() < deadline:
        for event in aws.drain(wait=min(2.0, max(0.0, deadline - time.monotonic()))):
            outcomes.append(handler(event, None))
    assert len(outcomes) >= want, f"only {len(outcomes)} redeploy events arrived in {timeout}s"
    return outcomes


def ensure_webhook(server: MlflowServer, url: str) -> None:
    client = server.client()
    for hook in client.list_webhooks():
        client.delete_webhook(hook.webhook_id)
    client.create_webhook(name="mlserve", url=url, events=["model_version_alias.created"], secret=WEBHOOK_SECRET)


def test_alias_promotion_redeploys_and_api_serves_new_version(
    mlflow_server: MlflowServer, aws: Aws, receiver: Receiver, api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLSERVE_MLFLOW_TRACKING_URI", mlflow_server.url)
    ensure_webhook(mlflow_server, receiver.url)
    client = mlflow_server.client()
    v1, v2 = mlflow_server.versions["v1"], mlflow_server.versions["v2"]
    rows = example_rows()

    client.set_registered_model_alias(MODEL, "champion", v1)
    assert pump(aws)[0]["status"] == "deployed"
    status, body, headers = api(rows)
    assert status == 200, body
    assert body["model"]["version"] == v1 and headers["x-mlserve-model-version"] == v1

    client.set_registered_model_alias(MODEL, "champion", v2)
    outcome = pump(aws)[0]
    assert outcome == {**outcome, "status": "deployed", "version": v2}
    status, body, headers = api(rows)
    assert status == 200 and body["model"]["version"] == v2
    assert body["model"]["run_id"] == client.get_model_version(MODEL, v2).run_id
    assert [code for code, _ in receiver.responses] == [202, 202]

    # the audit trail and the outcome events
    outcomes = aws.drain(aws.outcomes_queue_url, wait=2)
    assert [(e["detail-type"], e["detail"]["version"]) for e in outcomes] == [
        ("ModelDeployed", v1),
        ("ModelDeployed", v2),
    ]
    from mlserve.promotion.status import status as deployment_status
    from mlserve.store import open_store

    report = deployment_status(open_store("s3://mlserve-models-test"), MODEL)
    assert report["live"]["version"] == v2
    assert [a["status"] for a in report["attempts"]][:2] == ["succeeded", "succeeded"]


def test_out_of_order_and_duplicate_events_never_override_the_registry(
    mlflow_server: MlflowServer, aws: Aws, api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lambda_promote.redeploy import handler
    from mlserve.promotion.events import MODEL_PROMOTED, ModelPromoted, put_event

    client = mlflow_server.client()
    v1, v2, v3 = (mlflow_server.versions[k] for k in ("v1", "v2", "v3"))
    aws_env_registry = mlflow_server.url
    monkeypatch.setenv("MLSERVE_MLFLOW_TRACKING_URI", aws_env_registry)

    client.set_registered_model_alias(MODEL, "champion", v3)

    def promoted(version: str) -> None:
        put_event(
            aws.events,
            "mlserve-test-bus",
            MODEL_PROMOTED,
            ModelPromoted(MODEL, version, "mlflow-alias", registry_uri=aws_env_registry, alias="champion").to_detail(),
        )

    promoted(v3)
    promoted(v2)  # older promotion delivered late
    promoted(v3)  # duplicate
    events = aws.drain(wait=5)
    assert len(events) == 3
    results = [handler(event, None) for event in events]
    assert [r["status"] for r in results] == ["deployed", "superseded", "already_live"]
    status, body, _ = api(example_rows())
    assert status == 200 and body["model"]["version"] == v3
    # an event for a version the alias no longer names is refused even when the pointer is older
    client.set_registered_model_alias(MODEL, "champion", v1)
    promoted(v3)
    assert handler(aws.drain(wait=5)[0], None)["status"] == "superseded"


def test_cli_promote_with_legacy_stage_goes_through_the_bus(
    mlflow_server: MlflowServer, aws: Aws, api: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    from mlserve.cli import main

    monkeypatch.setenv("MLSERVE_MLFLOW_TRACKING_URI", mlflow_server.url)
    v1 = mlflow_server.versions["v1"]
    args = ["--stage", "--tracking-uri", mlflow_server.url, "--bus", "mlserve-test-bus", "--requested-by", "alice"]
    assert main(["promote", MODEL, v1, *args]) == 0
    sent = json.loads(capsys.readouterr().out)
    assert sent["promotion"]["source"] == "mlflow-stage" and sent["event_id"]
    [outcome] = pump(aws)
    assert (outcome["status"], outcome["version"]) == ("deployed", v1)
    assert mlflow_server.client().get_model_version(MODEL, v1).current_stage == "Production"
    status, body, _ = api(example_rows())
    assert status == 200 and body["model"]["version"] == v1


def test_rest_resolver_downloads_proxied_artifacts_and_reads_force_tag(
    mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    from mlserve.promotion.events import ModelPromoted
    from mlserve.promotion.mlflow_rest import MlflowRest
    from mlserve.promotion.redeploy import RestRegistry

    client = mlflow_server.client()
    v2 = mlflow_server.versions["v2"]
    registry = RestRegistry(MlflowRest(mlflow_server.url), alias="champion", stage="Production")
    resolved = registry.resolve(ModelPromoted(MODEL, v2, "mlflow-alias"), tmp_path / "a")
    assert (resolved.model_dir / "MLmodel").is_file() and (resolved.model_dir / "model.skops").is_file()
    assert resolved.run_id == client.get_model_version(MODEL, v2).run_id and resolved.force is False
    client.set_model_version_tag(MODEL, v2, "mlserve.force", "true")
    try:
        assert registry.resolve(ModelPromoted(MODEL, v2, "mlflow-alias"), tmp_path / "b").force is True
    finally:
        client.delete_model_version_tag(MODEL, v2, "mlserve.force")
