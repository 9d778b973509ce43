"""Medium 8: the model cache never evicted (every promoted version stayed in
MLSERVE_CACHE_DIR) and a failed load (full disk, bad checksum) kept the old model with a
silent /health 200 "ok". Now old versions are evicted and /health says "degraded" with
the reason (still 200: the old model serves; 503 only when no model at all)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlserve.store import live_key
from tests.apigw_events import rest_v1_event
from tests.conftest import MODEL_BUCKET, publish
from tests.integration.test_lambda_api import call

NAME = "demo-classifier"


@pytest.fixture
def app(s3: Any, s3_store: Any, demo_registry: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    publish(s3_store, demo_registry.classifier_dir, version="1")
    monkeypatch.setenv("MLSERVE_STORE", f"s3://{MODEL_BUCKET}")
    monkeypatch.setenv("MLSERVE_MODEL_NAME", NAME)
    monkeypatch.setenv("MLSERVE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MLSERVE_REFRESH_SECONDS", "0")
    from mangum import Mangum

    from lambda_api.app import create_app
    from lambda_api.handler import StagePrefix

    yield Mangum(StagePrefix(create_app()), lifespan="off")


def cached_versions(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "cache" / NAME).iterdir() if not p.name.startswith("."))


def test_old_versions_are_evicted_from_the_cache(app: Any, s3_store: Any, demo_registry: Any, tmp_path: Path) -> None:
    assert call(app, rest_v1_event("GET", "/health"))[2]["model"]["version"] == "1"
    for version in ("2", "3", "4"):
        publish(s3_store, demo_registry.classifier_dir, version=version)
        assert call(app, rest_v1_event("GET", "/health"))[2]["model"]["version"] == version
        assert cached_versions(tmp_path) == [version]  # only the live one stays on disk


def test_failed_load_is_reported_as_degraded_not_ok(app: Any, s3: Any, s3_store: Any, tmp_path: Path) -> None:
    status, _, body = call(app, rest_v1_event("GET", "/health"))
    assert (status, body["status"]) == (200, "ok")
    pointer = json.loads(s3_store.read_bytes(live_key(NAME)))
    pointer["version"] = "2"  # a version whose files are not there (like a failed download)
    s3.put_object(Bucket=MODEL_BUCKET, Key=live_key(NAME), Body=json.dumps(pointer).encode())
    status, _, body = call(app, rest_v1_event("GET", "/health"))
    assert status == 200 and body["status"] == "degraded"
    assert body["model"]["version"] == "1"  # the old model keeps serving
    assert "KeyError" in body["reason"] or "versions/2" in body["reason"]


def test_refused_pointer_is_degraded_with_the_reason(app: Any, s3: Any, s3_store: Any) -> None:
    call(app, rest_v1_event("GET", "/health"))
    pointer = json.loads(s3_store.read_bytes(live_key(NAME)))
    pointer["version"] = "../../victim"
    s3.put_object(Bucket=MODEL_BUCKET, Key=live_key(NAME), Body=json.dumps(pointer).encode())
    status, _, body = call(app, rest_v1_event("GET", "/health"))
    assert (status, body["status"], body["model"]["version"]) == (200, "degraded", "1")
    assert "not allowed" in body["reason"]
