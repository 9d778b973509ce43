"""Medium 6: the public webhook was cheap to abuse. Each bad signature fetched the secret
again; a non-ASCII X-MLflow-Signature raised in compare_digest (a 500 that paged on-call).
Also: the registry token comes from Secrets Manager, not a plaintext env var."""

from __future__ import annotations

import json
import threading
from typing import Any

import boto3
import pytest
from moto import mock_aws

from mlserve.promotion.mlflow_rest import MlflowRest
from mlserve.promotion.webhook import SecretProvider, WebhookConfig, handle_delivery, sign

SECRET = "right-secret"


class MemoryLedger:
    """A per-process `DeliveryLedger` (the deployed one is `DynamoLedger`)."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def claim(self, delivery_id: str) -> bool:
        with self._lock:
            if delivery_id in self._seen:
                return False
            self._seen.add(delivery_id)
            return True

    def release(self, delivery_id: str) -> None:
        with self._lock:
            self._seen.discard(delivery_id)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingSecrets:
    """A Secrets Manager client that counts calls and can fail."""

    def __init__(self, value: str = SECRET) -> None:
        self.value = value
        self.calls = 0
        self.fail = False

    def get_secret_value(self, SecretId: str) -> dict[str, str]:
        self.calls += 1
        if self.fail:
            raise ConnectionError("secrets manager unreachable")
        return {"SecretString": self.value}


def deliver(secrets: Any, signature: str, now: float = 1000.0) -> int:
    headers = {"X-MLflow-Delivery-Id": "d-1", "X-MLflow-Timestamp": str(int(now)), "X-MLflow-Signature": signature}
    result = handle_delivery(
        headers,
        "{}",
        config=WebhookConfig(bus="bus"),
        secrets=secrets,
        ledger=MemoryLedger(),
        events_client=None,
        now=lambda: now,
    )
    return result.status


def test_non_ascii_signature_is_401_not_an_exception() -> None:
    provider = SecretProvider("s", client=CountingSecrets())
    assert deliver(provider, "v1,\u00e9\u00e9\u00e9") == 401
    assert deliver(provider, "v1,\U0001f600") == 401


def test_a_flood_of_bad_signatures_fetches_the_secret_once() -> None:
    client, clock = CountingSecrets(), Clock()
    provider = SecretProvider("s", client=client, clock=clock)
    for _ in range(1000):
        assert deliver(provider, "v1,AAAA") == 401
    assert client.calls == 1


def test_rotation_is_still_honoured_after_the_refetch_interval() -> None:
    client, clock = CountingSecrets(), Clock()
    provider = SecretProvider("s", client=client, clock=clock, refetch_after_seconds=60)
    assert deliver(provider, sign(SECRET, "d-1", "1000", "{}")) != 401
    client.value = "rotated-secret"
    signed = sign("rotated-secret", "d-1", "1000", "{}")
    assert deliver(provider, signed) == 401  # too soon after the last fetch: not re-fetched
    clock.now += 61
    assert deliver(provider, signed) != 401  # one mismatch after the interval re-fetches
    assert client.calls == 2


def test_secret_fetch_failures_keep_the_cached_secret_and_back_off() -> None:
    client, clock = CountingSecrets(), Clock()
    provider = SecretProvider("s", client=client, clock=clock, ttl_seconds=10, retry_after_seconds=30)
    good = sign(SECRET, "d-1", "1000", "{}")
    assert deliver(provider, good) != 401
    client.fail = True
    clock.now += 11  # TTL expired, Secrets Manager down: keep verifying with the cached secret
    for _ in range(100):
        assert deliver(provider, good) != 401
    assert client.calls == 2  # one failed attempt, then backing off


def test_no_secret_at_all_answers_503_without_hammering() -> None:
    client, clock = CountingSecrets(), Clock()
    client.fail = True
    provider = SecretProvider("s", client=client, clock=clock, retry_after_seconds=30)
    for _ in range(50):
        assert deliver(provider, "v1,AAAA") == 503
    assert client.calls == 1


def test_registry_token_comes_from_secrets_manager(monkeypatch: pytest.MonkeyPatch) -> None:
    with mock_aws():
        secrets = boto3.client("secretsmanager", region_name="us-east-1")
        arn = secrets.create_secret(Name="mlflow-token", SecretString=json.dumps({"token": "t0k"}))["ARN"]
        monkeypatch.setenv("MLSERVE_MLFLOW_TOKEN_SECRET_ARN", arn)
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "plaintext-should-not-win")
        rest = MlflowRest.from_env("https://mlflow.internal", secrets_client=secrets)
    assert rest._auth == "Bearer t0k"
