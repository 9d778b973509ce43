"""High 1: model download path traversal. Each test reproduces the attack against the
store, the live pointer, MLmodel or an event, and asserts nothing is written or deleted
outside its root and the old model keeps serving."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from mlserve.errors import MlserveError, ModelLoadError, ModelUnavailableError
from mlserve.live import LiveModel, evict_cached_versions, parse_pointer
from mlserve.mlmodel import parse_mlmodel
from mlserve.promotion.events import EventError, ModelPromoted
from mlserve.publish import StageRequest
from mlserve.safe_paths import UnsafeNameError, UnsafePathError, check_model_name, check_version, contained_path
from mlserve.store import CACHE_MARKER, live_key, version_prefix
from tests.conftest import MODEL_BUCKET, publish

NAME = "demo-classifier"


@pytest.mark.parametrize(
    "value", ["..", "../x", "a/b", "/abs", ".hidden", "a..b", "", "x" * 129, "a\\b", "a\x00", "v 1", None, True]
)
def test_one_validator_refuses_unsafe_names_and_versions(value: Any) -> None:
    with pytest.raises(UnsafeNameError):
        check_model_name(value)
    with pytest.raises(UnsafeNameError):
        check_version(value)


@pytest.mark.parametrize("value", ["demo-classifier", "1", "v1.2_rc-3", "A" * 128, 7])
def test_plain_names_and_versions_pass(value: Any) -> None:
    assert check_model_name(value) == str(value)


@pytest.mark.parametrize("rel", ["../x", "a/../../x", "/etc/passwd", "a//b", "./a", "a\\..\\b"])
def test_contained_path_refuses_escapes(tmp_path: Path, rel: str) -> None:
    with pytest.raises(UnsafePathError):
        contained_path(tmp_path / "root", rel)


def test_contained_path_refuses_a_symlinked_parent(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)
    with pytest.raises(UnsafePathError):
        contained_path(root, "link/escaped.txt")


def test_store_keys_are_built_only_from_valid_names() -> None:
    with pytest.raises(UnsafeNameError):
        version_prefix(NAME, "../../victim")
    with pytest.raises(UnsafeNameError):
        live_key("../other")


def test_s3_key_with_dotdot_is_not_written_outside_the_cache(s3: Any, s3_store: Any, tmp_path: Path) -> None:
    """Attack: an object models/demo/versions/1/../../../../escaped.txt is written outside
    the cache before any checksum check."""
    s3.put_object(Bucket=MODEL_BUCKET, Key="models/demo/versions/1/MLmodel", Body=b"x")
    s3.put_object(Bucket=MODEL_BUCKET, Key="models/demo/versions/1/../../../../escaped.txt", Body=b"pwned")
    cache = tmp_path / "a" / "b" / "c" / "cache"
    with pytest.raises(UnsafePathError, match="escaped.txt"):
        s3_store.download_prefix(version_prefix("demo", "1"), cache / "demo" / "1")
    assert not [p for p in tmp_path.rglob("escaped.txt")]
    assert not (cache / "demo" / "1").exists()
    assert not [p for p in (cache / "demo").iterdir()]  # the temporary download is gone too


def test_pointer_with_traversing_version_does_not_rmtree_a_foreign_directory(
    s3: Any, s3_store: Any, tmp_path: Path, demo_registry: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Attack: live.json version "../../victim" made the loader rmtree and replace a
    directory outside the cache. Now the pointer is refused, the victim is intact, the old
    model keeps serving and says why (degraded_reason, the log)."""
    publish(s3_store, demo_registry.classifier_dir, version="1")
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")
    # objects under the traversing prefix, so that listing it finds something to "download"
    s3.put_object(Bucket=MODEL_BUCKET, Key=f"models/{NAME}/versions/../../victim/MLmodel", Body=b"x")
    live = LiveModel(s3_store, NAME, refresh_seconds=0, cache_dir=tmp_path / "cache")
    assert live.get().identity.version == "1"
    pointer = json.loads(s3_store.read_bytes(live_key(NAME)))
    pointer["version"] = "../../victim"
    s3.put_object(Bucket=MODEL_BUCKET, Key=f"models/{NAME}/live.json", Body=json.dumps(pointer).encode())
    with caplog.at_level(logging.ERROR):
        assert live.get().identity.version == "1"
    assert (victim / "precious.txt").read_text() == "keep me"
    assert live.degraded_reason is not None and "not allowed" in live.degraded_reason
    assert "not allowed" in caplog.text


def test_pointer_naming_another_model_is_refused() -> None:
    with pytest.raises(MlserveError, match="not allowed"):
        parse_pointer(json.dumps({"name": "../x", "version": "1", "checksums": {"a": "b"}}).encode())
    with pytest.raises(MlserveError, match="checksums"):
        parse_pointer(json.dumps({"name": "x", "version": "1", "checksums": ["a"]}).encode())


def test_first_pointer_refused_means_unavailable_with_reason(local_store: Any, tmp_path: Path) -> None:
    local_store.write_bytes(
        live_key(NAME), json.dumps({"name": NAME, "version": "../../etc", "checksums": {"a": "b"}}).encode()
    )
    live = LiveModel(local_store, NAME, cache_dir=tmp_path / "cache")
    with pytest.raises(ModelUnavailableError, match="not allowed"):
        live.get()


MLMODEL = """
flavors:
  sklearn:
    pickled_model: {model}
    serialization_format: skops
signature:
  inputs: '[{{"name": "x", "type": "double"}}]'
saved_input_example_info:
  artifact_path: {example}
"""


@pytest.mark.parametrize("model", ["../outside.skops", "/etc/passwd", "a/../../b"])
def test_mlmodel_pickled_model_must_be_a_plain_relative_path(model: str) -> None:
    with pytest.raises(ModelLoadError, match="pickled_model"):
        parse_mlmodel(MLMODEL.format(model=model, example="input_example.json"))


def test_mlmodel_input_example_must_stay_inside_the_model() -> None:
    with pytest.raises(ModelLoadError, match="artifact_path"):
        parse_mlmodel(MLMODEL.format(model="model.skops", example="../../secret.json"))


def test_model_file_must_be_among_the_verified_checksums(tmp_path: Path, demo_registry: Any) -> None:
    """MLmodel may only name a file whose sha256 was verified."""
    import dataclasses
    import shutil

    from mlserve.checksums import compute_checksums
    from mlserve.loader import load_estimator
    from mlserve.mlmodel import read_model_spec

    model_dir = tmp_path / "m"
    shutil.copytree(demo_registry.classifier_dir, model_dir)
    spec = dataclasses.replace(read_model_spec(model_dir), model_file="not-verified.skops")
    with pytest.raises(ModelLoadError, match="not among the verified checksums"):
        load_estimator(model_dir, compute_checksums(model_dir), allow_pickle=False, spec=spec)


@pytest.mark.parametrize("field,value", [("model_name", "../../x"), ("version", "../1"), ("version", "1/2")])
def test_promotion_events_refuse_unsafe_names(field: str, value: str) -> None:
    detail = {"model_name": NAME, "version": "1", "source": "cli", field: value}
    with pytest.raises(EventError, match="not allowed"):
        ModelPromoted.from_detail(detail)


def test_staging_refuses_unsafe_names(tmp_path: Path) -> None:
    with pytest.raises(UnsafeNameError):
        StageRequest(name=NAME, version="../../1", model_dir=tmp_path, source="test")


def test_redeploy_refuses_an_event_with_a_traversing_version(local_store: Any, tmp_path: Path) -> None:
    from mlserve.promotion.redeploy import RedeployConfig, Redeployer

    redeployer = Redeployer(RedeployConfig(store_uri=local_store.uri, work_dir=tmp_path / "work"), store=local_store)
    event = {
        "source": "mlserve.registry",
        "detail-type": "ModelPromoted",
        "detail": {"model_name": NAME, "version": "../../victim", "source": "cli"},
    }
    outcome = redeployer.handle_event(event)
    assert outcome.status == "failed" and outcome.code == "bad_event"
    assert not list(local_store.list_keys(""))  # nothing written


def test_eviction_only_removes_directories_the_cache_created(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    for version in ("1", "2", "3"):
        (cache / NAME / version).mkdir(parents=True)
        (cache / NAME / version / CACHE_MARKER).write_text("x")
    foreign = cache / NAME / "4"
    foreign.mkdir()
    (foreign / "file").write_text("not ours")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / CACHE_MARKER).write_text("x")
    (cache / NAME / "5").symlink_to(outside)
    assert evict_cached_versions(cache, NAME, keep={"3"}) == ["1", "2"]
    assert (cache / NAME / "3").is_dir() and (foreign / "file").exists() and outside.is_dir()
    assert evict_cached_versions(cache, "../..", keep=set()) == []
