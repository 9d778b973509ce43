from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlserve.errors import StagingError
from mlserve.store import LocalStore, live_key
from tests.conftest import publish


class RecordingStore(LocalStore):
    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.writes: list[str] = []

    def write_bytes(self, key: str, data: bytes, content_type: str | None = None) -> str:
        self.writes.append(key)
        return super().write_bytes(key, data, content_type)


def manifests(store: Any, name: str = "demo-classifier") -> list[dict[str, Any]]:
    return [json.loads(store.read_bytes(k)) for k in store.list_keys(f"models/{name}/deployments/")]


def test_publish_writes_the_layout_with_live_json_last(tmp_path: Path, demo_registry: Any) -> None:
    store = RecordingStore(tmp_path)
    result = publish(store, demo_registry.classifier_dir, version="3", run_id="r1")
    assert store.writes[-1] == live_key("demo-classifier")
    assert store.writes[-2].startswith("models/demo-classifier/deployments/")
    checksums_index = store.writes.index("models/demo-classifier/versions/3/checksums.json")
    assert all(k.startswith("models/demo-classifier/versions/3/") for k in store.writes[:checksums_index])
    pointer = json.loads(store.read_bytes(live_key("demo-classifier")))
    assert pointer["version"] == "3" and pointer["run_id"] == "r1"
    assert set(pointer["checksums"]) >= {"MLmodel", "model.skops", "input_example.json"}
    assert pointer["checksums"] == json.loads(store.read_bytes("models/demo-classifier/versions/3/checksums.json"))
    for key in ("source", "promoted_at", "promoted_by", "deployment_id"):
        assert pointer[key]
    assert len(result.smoke_predictions) == 5
    [manifest] = manifests(store)
    assert manifest["status"] == "succeeded" and manifest["version"] == "3"


def test_republishing_identical_content_is_a_noop_but_different_content_is_refused(
    tmp_path: Path, demo_registry: Any
) -> None:
    store = LocalStore(tmp_path)
    publish(store, demo_registry.classifier_dir, version="1")
    publish(store, demo_registry.classifier_dir, version="1")
    with pytest.raises(StagingError, match="already staged with different files"):
        publish(store, demo_registry.regressor_dir, version="1")
    assert json.loads(store.read_bytes(live_key("demo-classifier")))["checksums"]["model.skops"]
    assert [m["status"] for m in manifests(store)] == ["succeeded", "succeeded", "failed"]


def test_model_without_input_example_is_refused_and_live_untouched(tmp_path: Path, demo_registry: Any) -> None:
    store = LocalStore(tmp_path / "store")
    publish(store, demo_registry.classifier_dir, version="1")
    live_before = store.read_bytes(live_key("demo-classifier"))
    broken = tmp_path / "no-example"
    shutil.copytree(demo_registry.classifier_dir, broken)
    mlmodel = yaml.safe_load((broken / "MLmodel").read_text())
    del mlmodel["saved_input_example_info"]
    (broken / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    with pytest.raises(StagingError, match="without an input example"):
        publish(store, broken, version="2")
    assert store.read_bytes(live_key("demo-classifier")) == live_before
    failed = manifests(store)[-1]
    assert failed["status"] == "failed" and "input example" in failed["reason"] and failed["previous_version"] == "1"


def test_unloadable_model_is_refused_after_copy(tmp_path: Path, demo_registry: Any) -> None:
    store = LocalStore(tmp_path / "store")
    broken = tmp_path / "broken"
    shutil.copytree(demo_registry.classifier_dir, broken)
    (broken / "model.skops").write_bytes(b"garbage")
    with pytest.raises(StagingError, match="not a readable skops file"):
        publish(store, broken, version="1")
    assert not store.exists(live_key("demo-classifier"))


def test_publish_into_moto_s3(s3_store: Any, demo_registry: Any) -> None:
    result = publish(s3_store, demo_registry.regressor_dir, name="demo-regressor", version="7")
    assert json.loads(s3_store.read_bytes(live_key("demo-regressor")))["version"] == "7"
    assert isinstance(result.smoke_predictions[0], float)
