"""Batch fixtures: the demo classifier published once per session into a local store."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import publish


@pytest.fixture(scope="session")
def batch_store(demo_registry: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from mlserve.store import open_store

    store = open_store((tmp_path_factory.mktemp("batch") / "store").as_uri())
    publish(store, demo_registry.classifier_dir, name="demo-classifier", version="1")
    return store


@pytest.fixture(scope="session")
def classifier(batch_store: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    from mlserve.live import LiveModel

    live = LiveModel(batch_store, "demo-classifier", cache_dir=Path(tmp_path_factory.mktemp("cache")))
    return live.get()


def csv_bytes(frame: Any, **kwargs: Any) -> bytes:
    return frame.to_csv(index=False, **kwargs).encode()


BATCH_BUCKET = "mlserve-batch-test"


def s3_event(bucket: str, key: str, *, version_id: str | None, etag: str, size: int) -> dict[str, Any]:
    """An ObjectCreated:Put notification exactly as S3 sends it (key URL-encoded, '+' for space)."""
    from urllib.parse import quote_plus

    obj: dict[str, Any] = {
        "key": quote_plus(key, safe="/"),
        "size": size,
        "eTag": etag.strip('"'),
        "sequencer": "0062E99A88DC407460",
    }
    if version_id:
        obj["versionId"] = version_id
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": "2026-11-25T12:00:00.000Z",
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {
                    "x-amz-request-id": "C3D13FE58DE4C810",
                    "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD",
                },
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "incoming-csv",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": obj,
                },
            }
        ]
    }


@dataclass
class BatchEnv:
    s3: Any
    bucket: str

    def upload(self, key: str, body: bytes) -> dict[str, Any]:
        """Put an object and return the event S3 would send for it."""
        response = self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        return s3_event(self.bucket, key, version_id=response.get("VersionId"), etag=response["ETag"], size=len(body))

    def run(self, event: dict[str, Any]) -> dict[str, Any]:
        from lambda_batch.handler import handler

        return handler(event, FakeContext())

    def report(self, key: str) -> dict[str, Any]:
        import json

        rel = key.removeprefix("incoming/")
        return dict(json.loads(self.s3.get_object(Bucket=self.bucket, Key=f"results/{rel}.report.json")["Body"].read()))

    def predictions(self, key: str) -> bytes:
        rel = key.removeprefix("incoming/")
        return bytes(self.s3.get_object(Bucket=self.bucket, Key=f"results/{rel}.predictions.csv")["Body"].read())

    def has_predictions(self, key: str) -> bool:
        rel = key.removeprefix("incoming/")
        listed = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=f"results/{rel}.predictions.csv")
        return bool(listed.get("KeyCount"))


class FakeContext:
    """What Powertools reads from a Lambda context (the handler is instrumented)."""

    function_name = "mlserve-batch"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:mlserve-batch"
    memory_limit_in_mb = 3008
    aws_request_id = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


@pytest.fixture
def batch_env(s3: Any, batch_store: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[BatchEnv]:
    """Moto batch bucket (versioned, like the real one) + handler configured from env,
    model served from the session's local store."""
    import lambda_batch.handler as handler_module

    s3.create_bucket(Bucket=BATCH_BUCKET)
    s3.put_bucket_versioning(Bucket=BATCH_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    monkeypatch.setenv("MLSERVE_STORE", batch_store.uri)
    monkeypatch.setenv("MLSERVE_MODEL_NAME", "demo-classifier")
    monkeypatch.setenv("MLSERVE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MLSERVE_RESULTS_PREFIX", raising=False)
    handler_module.reset_runtime()
    yield BatchEnv(s3, BATCH_BUCKET)
    handler_module.reset_runtime()
