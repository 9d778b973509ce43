"""Low: live.json was written unconditionally, so a CLI rollback racing a redeploy lost
silently. Now live.json is written with If-Match (its ETag when staging read it) or
If-None-Match: * (first version); a conflict is detected. moto 5.x implements both
conditions on PutObject; the local store implements them under a file lock."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlserve.errors import StagingError
from mlserve.publish import StageRequest, stage_and_activate
from mlserve.store import LocalStore, S3Store, WriteConflict, live_key
from tests.conftest import MODEL_BUCKET, publish

NAME = "demo-classifier"


def racing(base: type) -> type:
    """A store where another writer switches live.json right before our conditional write."""

    class Racing(base):
        races = 0

        def write_if(self, key: str, data: bytes, content_type: str | None = None, **conditions: Any) -> str:
            if key == live_key(NAME) and self.races < self.max_races:
                self.races += 1
                rival = (
                    json.loads(self.read_bytes(key)) if self.exists(key) else {"name": NAME, "checksums": {"x": "y"}}
                )
                rival["version"] = f"rival{self.races}"
                self.write_bytes(key, json.dumps(rival).encode())
            return str(super().write_if(key, data, content_type, **conditions))

    return Racing


def make_store(kind: str, tmp_path: Path, s3: Any, max_races: int = 1) -> Any:
    store = racing(LocalStore)(tmp_path / "store") if kind == "local" else racing(S3Store)(MODEL_BUCKET, client=s3)
    store.max_races = max_races
    return store


@pytest.fixture(params=["s3", "local"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def live_version(store: Any) -> str:
    return str(json.loads(store.read_bytes(live_key(NAME)))["version"])


def test_conditional_put_semantics(kind: str, s3: Any, tmp_path: Path) -> None:
    store = make_store(kind, tmp_path, s3, max_races=0)
    etag = store.write_if("k", b"a", if_none_match=True)
    with pytest.raises(WriteConflict):
        store.write_if("k", b"b", if_none_match=True)
    newer = store.write_if("k", b"b", if_match=etag)
    with pytest.raises(WriteConflict):
        store.write_if("k", b"c", if_match=etag)  # stale ETag
    assert store.read_bytes("k") == b"b" and newer != etag


def test_rollback_racing_a_redeploy_is_detected_not_lost(
    kind: str, s3: Any, tmp_path: Path, demo_registry: Any
) -> None:
    """Unguarded writers (publish, CLI rollback) refuse to overwrite a pointer that changed
    after they read it, and say what is live now."""
    store = make_store(kind, tmp_path, s3, max_races=0)
    publish(store, demo_registry.classifier_dir, version="1")
    store.max_races = 1
    with pytest.raises(StagingError, match="changed while staging") as caught:
        publish(store, demo_registry.classifier_dir, version="2")
    assert caught.value.code == "live_conflict"
    assert live_version(store) == "rival1"  # the other writer's switch stands
    manifests = [json.loads(store.read_bytes(k)) for k in store.list_keys(f"models/{NAME}/deployments/")]
    assert (manifests[-1]["status"], manifests[-1]["code"]) == ("failed", "live_conflict")


def test_guarded_redeploy_rechecks_and_retries(kind: str, s3: Any, tmp_path: Path, demo_registry: Any) -> None:
    store = make_store(kind, tmp_path, s3, max_races=2)
    checks: list[int] = []
    result = stage_and_activate(
        store,
        StageRequest(
            name=NAME,
            version="3",
            model_dir=demo_registry.classifier_dir,
            source="test",
            before_activate=lambda: checks.append(1),
        ),
    )
    assert live_version(store) == "3" and result.pointer["version"] == "3"
    assert len(checks) == 3  # once before the first write, once per conflict


def test_guard_that_says_superseded_on_retry_keeps_the_rival(
    kind: str, s3: Any, tmp_path: Path, demo_registry: Any
) -> None:
    store = make_store(kind, tmp_path, s3)
    calls = {"n": 0}

    def guard() -> None:
        calls["n"] += 1
        if calls["n"] > 1:
            raise StagingError("superseded while staging", code="superseded")

    with pytest.raises(StagingError) as caught:
        stage_and_activate(
            store,
            StageRequest(
                name=NAME, version="4", model_dir=demo_registry.classifier_dir, source="t", before_activate=guard
            ),
        )
    assert caught.value.code == "superseded"
    assert live_version(store) == "rival1"
