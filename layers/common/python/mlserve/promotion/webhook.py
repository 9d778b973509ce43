"""MLflow webhook receiver: verify, de-duplicate, normalize, put `ModelPromoted`.

MLflow 3 signs each delivery (mlflow/webhooks/delivery.py):
    X-MLflow-Delivery-Id: <uuid4>
    X-MLflow-Timestamp:   <unix seconds>
    X-MLflow-Signature:   v1,<base64(HMAC-SHA256(secret, f"{delivery_id}.{timestamp}.{body}"))>
and the body is {"entity", "action", "timestamp", "data": {...}}; for
`model_version_alias.created` data is {"name", "alias", "version"}.

Answers: 401 bad/missing signature or stale timestamp, 400 malformed body,
200 ignored (other events, other aliases/models, repeated delivery), 202 accepted.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ParamSpec, Protocol

from mlserve.aws_clients import LazyClient
from mlserve.contract import MODEL_PROMOTED
from mlserve.observability import clear_model_keys, record_webhook_delivery, set_model_keys
from mlserve.promotion.events import ModelPromoted, put_event, utc_now
from mlserve.safe_paths import UnsafeNameError, check_model_name, check_version

logger = logging.getLogger(__name__)
P = ParamSpec("P")

SIGNATURE_HEADER = "x-mlflow-signature"
TIMESTAMP_HEADER = "x-mlflow-timestamp"
DELIVERY_ID_HEADER = "x-mlflow-delivery-id"
SIGNATURE_VERSION = "v1"
MAX_AGE_SECONDS = 300
MAX_FUTURE_SKEW_SECONDS = 60
ACCEPTED_EVENT = ("model_version_alias", "created")


def sign(secret: str, delivery_id: str, timestamp: str, payload: str) -> str:
    """The signature MLflow sends (same construction as mlflow.webhooks.delivery)."""
    digest = hmac.new(secret.encode(), f"{delivery_id}.{timestamp}.{payload}".encode(), hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def verify_signature(secrets: list[str], delivery_id: str, timestamp: str, payload: str, signature: str) -> bool:
    """Constant-time check against every current secret (more than one during a rotation)."""
    if not signature.startswith(f"{SIGNATURE_VERSION},") or not signature.isascii():
        return False  # compare_digest raises TypeError on non-ASCII str: that is a bad signature
    return any(hmac.compare_digest(sign(secret, delivery_id, timestamp, payload), signature) for secret in secrets)


class DeliveryLedger(Protocol):
    def claim(self, delivery_id: str) -> bool:
        """Record the delivery id; False when it was already recorded (a replay)."""

    def release(self, delivery_id: str) -> None:
        """Forget a claim (the event could not be forwarded; MLflow will retry it)."""


class DynamoLedger:
    """A conditional put per delivery id; items expire (TTL attribute `expires_at`) well
    after the 5-minute replay window."""

    def __init__(self, table: str, client: Any = None, ttl_seconds: int = 24 * 3600) -> None:
        self.table = table
        self.ttl_seconds = ttl_seconds
        self._client = client

    client = LazyClient[Any]("dynamodb")

    def claim(self, delivery_id: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.put_item(
                TableName=self.table,
                Item={"delivery_id": {"S": delivery_id}, "expires_at": {"N": str(int(time.time()) + self.ttl_seconds)}},
                ConditionExpression="attribute_not_exists(delivery_id)",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def release(self, delivery_id: str) -> None:
        self.client.delete_item(TableName=self.table, Key={"delivery_id": {"S": delivery_id}})


class SecretProvider:
    """The webhook secret from Secrets Manager, cached. The secret string is the secret
    itself, or JSON {"secret": ..., "previous": ...} during a rotation.

    A flood of bad signatures must not become a flood of GetSecretValue calls:
    - the value is cached for `ttl_seconds`;
    - a signature mismatch re-fetches (to pick up a rotation) at most once per
      `refetch_after_seconds`, not once per bad request;
    - a failed fetch keeps serving the cached value, and is retried no sooner than
      `retry_after_seconds` (with nothing cached, calls fail fast until then).
    """

    def __init__(
        self,
        secret_id: str,
        client: Any = None,
        ttl_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        refetch_after_seconds: float = 60.0,
        retry_after_seconds: float = 30.0,
    ) -> None:
        self.secret_id = secret_id
        self.ttl_seconds = ttl_seconds
        self.refetch_after_seconds = refetch_after_seconds
        self.retry_after_seconds = retry_after_seconds
        self._client = client
        self._clock = clock
        self._cached: list[str] | None = None
        self._fetched_at = 0.0
        self._stale = False
        self._failed_at: float | None = None
        self._failure: Exception | None = None
        self._lock = threading.Lock()
        self.fetches = 0  # GetSecretValue calls made (observability, tests)

    client = LazyClient[Any]("secretsmanager")

    def __call__(self) -> list[str]:
        with self._lock:
            now = self._clock()
            due = self._cached is None or self._stale or now - self._fetched_at >= self.ttl_seconds
            backing_off = self._failed_at is not None and now - self._failed_at < self.retry_after_seconds
            if due and not backing_off:
                try:
                    self._cached = self._fetch()
                    self._fetched_at = now
                    self._stale = False
                    self._failed_at = self._failure = None
                except Exception as exc:
                    self._failed_at, self._failure = now, exc
                    if self._cached is None:
                        raise
                    logger.warning("could not refresh the webhook secret, keeping the cached one: %s", exc)
            if self._cached is None:
                raise RuntimeError(f"webhook secret unavailable (retrying later): {self._failure}")
            return self._cached

    def invalidate(self) -> bool:
        """A signature did not match: maybe the secret was rotated. Mark the cache stale
        (True) unless it was fetched less than `refetch_after_seconds` ago (False: the
        mismatch is the sender's, not a rotation we missed)."""
        with self._lock:
            if self._cached is not None and self._clock() - self._fetched_at < self.refetch_after_seconds:
                return False
            self._stale = True
            return True

    def _fetch(self) -> list[str]:
        self.fetches += 1
        raw = str(self.client.get_secret_value(SecretId=self.secret_id)["SecretString"])
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError:
            return [raw]
        if isinstance(parsed, dict):
            return [str(parsed[k]) for k in ("secret", "previous") if parsed.get(k)]
        return [raw]


@dataclass
class WebhookConfig:
    bus: str
    alias: str = "champion"
    registry_uri: str | None = None
    model_names: frozenset[str] = field(default_factory=frozenset)  # empty: any model
    max_age_seconds: int = MAX_AGE_SECONDS


@dataclass
class WebhookResult:
    status: int
    body: dict[str, Any]
    # For logs and metrics only: a fixed reason code, never text taken from the request, and
    # the delivery id once the signature checked out.
    reason: str = ""
    delivery_id: str | None = None

    @property
    def outcome(self) -> str:
        if self.status == 202:
            return "accepted"
        if self.status == 200:
            return "duplicate" if self.body.get("status") == "duplicate" else "ignored"
        return "rejected" if self.status < 500 else "error"

    def to_proxy_response(self) -> dict[str, Any]:
        return {
            "statusCode": self.status,
            "headers": {"Content-Type": "application/json"},
            "body": json.dumps(self.body),
        }


def _logs_outcome(handle: Callable[P, WebhookResult]) -> Callable[P, WebhookResult]:
    """Log and count what became of each delivery `handle` saw. The log line has the
    outcome, a fixed reason code and (once the signature checked out) the delivery id, plus
    the model name/version of an accepted promotion — never the body, the headers, the
    signature or the secret."""

    @functools.wraps(handle)
    def logged(*args: P.args, **kwargs: P.kwargs) -> WebhookResult:
        clear_model_keys()  # a previous delivery's model is not this one's
        result = handle(*args, **kwargs)
        outcome = result.outcome
        record_webhook_delivery(outcome)
        fields: dict[str, Any] = {"webhook_outcome": outcome, "reason": result.reason, "status_code": result.status}
        if result.delivery_id:
            fields["delivery_id"] = result.delivery_id
        if outcome == "rejected":
            logger.warning("webhook delivery rejected: %s", result.reason, extra=fields)
        elif outcome == "error":
            logger.error("webhook delivery not forwarded: %s", result.reason, extra=fields)
        else:
            logger.info("webhook delivery %s: %s", outcome, result.reason, extra=fields)
        return result

    return logged


@_logs_outcome
def handle_delivery(
    headers: dict[str, str],
    body: str,
    *,
    config: WebhookConfig,
    secrets: Callable[[], list[str]],
    ledger: DeliveryLedger,
    events_client: Any,
    now: Callable[[], float] = time.time,
) -> WebhookResult:
    """Verify and forward one delivery (logged and counted by `_logs_outcome`)."""
    h = {k.lower(): v for k, v in headers.items()}
    delivery_id = h.get(DELIVERY_ID_HEADER, "")
    timestamp = h.get(TIMESTAMP_HEADER, "")
    signature = h.get(SIGNATURE_HEADER, "")
    if not (delivery_id and timestamp and signature):
        return WebhookResult(401, {"error": "missing MLflow signature headers"}, "missing_signature_headers")
    try:
        current_secrets = secrets()
    except Exception as exc:
        logger.error("webhook secret unavailable: %s", exc)
        return WebhookResult(503, {"error": "webhook secret unavailable, retry later"}, "secret_unavailable")
    if not verify_signature(current_secrets, delivery_id, timestamp, body, signature):
        # maybe the secret was rotated since we cached it: refetch once
        invalidate = getattr(secrets, "invalidate", None)
        if invalidate is None or invalidate() is False:
            return WebhookResult(401, {"error": "bad signature"}, "bad_signature")
        if not verify_signature(secrets(), delivery_id, timestamp, body, signature):
            return WebhookResult(401, {"error": "bad signature"}, "bad_signature")
    try:
        sent_at = int(timestamp)
    except ValueError:
        return WebhookResult(401, {"error": "bad timestamp"}, "bad_timestamp")
    age = now() - sent_at
    if age > config.max_age_seconds or age < -MAX_FUTURE_SKEW_SECONDS:
        return WebhookResult(401, {"error": f"stale delivery (timestamp {age:.0f}s old)"}, "stale_timestamp")
    try:
        payload = json.loads(body)
        entity, action, data = payload["entity"], payload["action"], payload.get("data") or {}
    except (json.JSONDecodeError, KeyError, TypeError):
        return WebhookResult(400, {"error": "body is not an MLflow webhook payload"}, "malformed_body", delivery_id)
    if (entity, action) != ACCEPTED_EVENT:
        return WebhookResult(
            200,
            {"status": "ignored", "reason": f"event {entity}.{action} does not promote"},
            "event_does_not_promote",
            delivery_id,
        )
    name, alias, version = data.get("name"), data.get("alias"), data.get("version")
    if not (name and alias and version):
        return WebhookResult(
            400,
            {"error": "model_version_alias.created without name, alias or version"},
            "incomplete_alias_event",
            delivery_id,
        )
    if alias != config.alias:
        return WebhookResult(
            200, {"status": "ignored", "reason": f"alias {alias!r} is not {config.alias!r}"}, "other_alias", delivery_id
        )
    try:  # the one validator for names/versions: they become store keys and paths downstream
        check_model_name(name)
        check_version(version)
    except UnsafeNameError as exc:
        return WebhookResult(400, {"error": str(exc)}, "unsafe_name", delivery_id)
    if config.model_names and name not in config.model_names:
        return WebhookResult(
            200, {"status": "ignored", "reason": f"model {name!r} is not served here"}, "other_model", delivery_id
        )
    if not ledger.claim(delivery_id):
        return WebhookResult(200, {"status": "duplicate", "delivery_id": delivery_id}, "replayed_delivery", delivery_id)
    set_model_keys(str(name), str(version))  # signed, and for a model served here
    promotion = ModelPromoted(
        model_name=str(name),
        version=str(version),
        source="mlflow-alias",
        registry_uri=config.registry_uri,
        promoted_at=str(payload.get("timestamp") or utc_now()),
        requested_by="mlflow-webhook",
        alias=str(alias),
        delivery_id=delivery_id,
    )
    try:
        event_id = put_event(events_client, config.bus, MODEL_PROMOTED, promotion.to_detail())
    except Exception as exc:
        ledger.release(delivery_id)  # let MLflow's retry through
        logger.error("could not put the ModelPromoted event: %s", exc)
        return WebhookResult(502, {"error": "could not forward the promotion"}, "event_put_failed", delivery_id)
    logger.info("ModelPromoted %s v%s put on the bus (event %s)", name, version, event_id)
    return WebhookResult(
        202,
        {"status": "accepted", "model_name": name, "version": str(version), "event_id": event_id},
        "promoted",
        delivery_id,
    )


def proxy_request(event: dict[str, Any]) -> tuple[dict[str, str], str]:
    """Headers and raw body of an API Gateway proxy event (REST v1 or HTTP API v2)."""
    headers = {str(k): str(v) for k, v in (event.get("headers") or {}).items()}
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        body = base64.b64decode(body).decode("utf-8")
    return headers, body
