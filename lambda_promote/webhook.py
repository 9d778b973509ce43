"""API Gateway `POST /registry/events` -> verified MLflow webhook -> `ModelPromoted` on the bus.

Thin: parses the proxy event and calls `mlserve.promotion.webhook`. Configuration:
    MLSERVE_EVENT_BUS                 bus name
    MLSERVE_WEBHOOK_SECRET_ID         Secrets Manager secret (ARN or name) holding the webhook secret
    MLSERVE_WEBHOOK_DELIVERIES_TABLE  DynamoDB table recording delivery ids (replay protection)
    MLSERVE_REGISTRY_ALIAS           alias that promotes (default champion)
    MLSERVE_MODEL_NAMES               comma-separated registered models served here (default: MLSERVE_MODEL_NAME)
    MLSERVE_MLFLOW_TRACKING_URI       the registry's URL, recorded in the event

Powertools: JSON logs with the API Gateway request id as the correlation id; one line per
delivery (accepted / ignored / duplicate / rejected, with a fixed reason code) is written by
`mlserve.promotion.webhook` — never the body, the signature or the secret.
"""

from __future__ import annotations

import os
from typing import Any

from mlserve.contract import Env
from mlserve.observability import API_GATEWAY_REQUEST_ID, lambda_entry
from mlserve.promotion.webhook import (
    DynamoLedger,
    SecretProvider,
    WebhookConfig,
    handle_delivery,
    proxy_request,
)

_state: dict[str, Any] = {}


def _runtime() -> dict[str, Any]:
    if not _state:
        import boto3

        names = os.environ.get(Env.MODEL_NAMES) or os.environ.get(Env.MODEL_NAME, "")
        _state["config"] = WebhookConfig(
            bus=os.environ[Env.EVENT_BUS],
            alias=os.environ.get(Env.REGISTRY_ALIAS) or "champion",
            registry_uri=os.environ.get(Env.MLFLOW_TRACKING_URI) or None,
            model_names=frozenset(n.strip() for n in names.split(",") if n.strip()),
        )
        _state["secrets"] = SecretProvider(os.environ[Env.WEBHOOK_SECRET_ID])
        _state["ledger"] = DynamoLedger(os.environ[Env.WEBHOOK_DELIVERIES_TABLE])
        _state["events"] = boto3.client("events")
    return _state


def reset() -> None:
    """Forget cached clients and configuration (tests, config changes)."""
    _state.clear()


def _handle(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    headers, body = proxy_request(event)
    runtime = _runtime()
    result = handle_delivery(
        headers,
        body,
        config=runtime["config"],
        secrets=runtime["secrets"],
        ledger=runtime["ledger"],
        events_client=runtime["events"],
    )
    return result.to_proxy_response()


handler = lambda_entry(_handle, correlation_id_path=API_GATEWAY_REQUEST_ID)
