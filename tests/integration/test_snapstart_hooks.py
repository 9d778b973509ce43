"""SnapStart hooks of the API, batch and redeploy handlers, with a simulated snapshot/restore:
the before-snapshot hook runs, the process state is kept (as a snapshot keeps memory), the
environment changes (new credentials, a promotion), then the after-restore hook runs and the
first request is served. Real Mangum handler, real moto S3, a model logged with real MLflow."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.apigw_events import FakeLambdaContext, rest_v1_event
from tests.conftest import MODEL_BUCKET, publish

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def api(s3: Any, s3_store: Any, demo_registry: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """lambda_api.handler with v1 live and a refresh window far longer than the test, so only
    a forced check can notice a promotion."""
    publish(s3_store, demo_registry.classifier_dir, version="1", run_id=demo_registry.classifier_run_id)
    monkeypatch.setenv("MLSERVE_STORE", f"s3://{MODEL_BUCKET}")
    monkeypatch.setenv("MLSERVE_MODEL_NAME", "demo-classifier")
    monkeypatch.setenv("MLSERVE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MLSERVE_REFRESH_SECONDS", "3600")
    import lambda_api.app
    import lambda_api.handler as module

    monkeypatch.setattr(module.handler, "app", module.StagePrefix(lambda_api.app.create_app()))
    yield module


def served_version(module: Any) -> str:
    response = module.handler(rest_v1_event("GET", "/health", None, {}), FakeLambdaContext())
    return str(json.loads(response["body"])["model"]["version"])


def legacy_state() -> Any:
    state: Any = np.random.get_state(legacy=True)
    return state


def runtime_of(module: Any) -> Any:
    return module.handler.app.asgi.state.runtime


def test_before_snapshot_loads_the_live_model_and_scores_its_example(api: Any) -> None:
    from mlserve import snapstart

    api.before_snapshot()
    model = runtime_of(api).current_model()
    assert model is not None and model.identity.version == "1"
    # what the hook did, step by step, on the same live model
    assert snapstart.warm_live_model(runtime_of(api).live) == "model 1 loaded and scored its input example"


def test_after_restore_the_first_request_rereads_live_json(
    api: Any, s3_store: Any, demo_registry: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.before_snapshot()  # the snapshot holds v1 and a fresh pointer check
    publish(s3_store, demo_registry.classifier_dir, version="2")

    live = runtime_of(api).live
    pointer_reads: list[str] = []
    original = type(live.store).read_if_changed

    def counting(store: Any, key: str, etag: Any) -> Any:
        pointer_reads.append(key)
        return original(store, key, etag)

    monkeypatch.setattr(type(live.store), "read_if_changed", counting)
    # Without the restore hook the snapshot's check is "fresh": v1 would be served for an hour.
    assert served_version(api) == "1" and pointer_reads == []

    api.after_restore()
    assert served_version(api) == "2"
    assert pointer_reads == ["models/demo-classifier/live.json"]
    # and only the first request: the next ones are inside the refresh window again
    assert served_version(api) == "2" and len(pointer_reads) == 1


def test_after_restore_an_unchanged_pointer_costs_one_conditional_get_and_no_reload(api: Any) -> None:
    api.before_snapshot()
    model = runtime_of(api).current_model()
    api.after_restore()
    assert served_version(api) == "1"
    assert runtime_of(api).current_model() is model  # same object: nothing was loaded again


def test_nothing_unique_is_computed_before_the_snapshot(api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    makers: list[str] = []
    real_uuid4 = uuid.uuid4

    def recording_uuid4() -> uuid.UUID:
        makers.append(str(sys._getframe(1).f_globals.get("__name__")))
        return real_uuid4()

    # ids: record who makes one while the hook runs
    with monkeypatch.context() as patch:
        patch.setattr(uuid, "uuid4", recording_uuid4)
        patch.setenv("AWS_ACCESS_KEY_ID", "snapshot-time-key")
        api.before_snapshot()
    # Only the SDK's per-request invocation id of the S3 calls that fetched the model: sent
    # once on the wire, never kept. Nothing of ours (request ids, job ids) exists yet.
    assert set(makers) <= {"botocore.endpoint", "botocore.handlers", "botocore.client"}, makers
    snapshot_model = runtime_of(api).current_model()
    snapshot_loaded_at = snapshot_model.loaded_at
    snapshot_client = runtime_of(api).live.store.client
    assert snapshot_client.meta.region_name  # a client was made to load the model
    random_state, numpy_state = random.getstate(), legacy_state()[1].copy()

    # restored elsewhere, later, with other credentials
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "restore-time-key")
    api.after_restore()
    served_version(api)
    live = runtime_of(api).live
    # credentials: the store's client is new and signs with the restored environment's key
    store: Any = live.store
    assert store.client is not snapshot_client
    assert store.client._request_signer._credentials.access_key == "restore-time-key"
    # the page's presigning client is made again too
    assert getattr(api.handler.app.asgi.state, "batch_s3", None) is None
    # timestamps: this environment's own load time
    assert runtime_of(api).current_model().loaded_at > snapshot_loaded_at
    # randomness: re-seeded from the OS
    assert random.getstate() != random_state
    assert not np.array_equal(legacy_state()[1], numpy_state)


def test_two_restores_of_one_snapshot_draw_different_random_numbers(api: Any) -> None:
    api.before_snapshot()
    state, numpy_state = random.getstate(), np.random.get_state()
    draws = []
    for _ in range(2):  # two environments restored from the same memory image
        random.setstate(state)
        np.random.set_state(numpy_state)
        api.after_restore()
        draws.append((random.random(), float(np.random.random())))
    assert draws[0][0] != draws[1][0] and draws[0][1] != draws[1][1]


def test_before_snapshot_without_a_live_model_does_not_fail_the_publish(
    s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLSERVE_STORE", f"s3://{MODEL_BUCKET}")
    monkeypatch.setenv("MLSERVE_MODEL_NAME", "demo-classifier")
    monkeypatch.setenv("MLSERVE_CACHE_DIR", str(tmp_path / "cache"))
    import lambda_api.app
    import lambda_api.handler as module

    monkeypatch.setattr(module.handler, "app", module.StagePrefix(lambda_api.app.create_app()))
    module.before_snapshot()  # no live.json yet: logged, not raised
    module.after_restore()
    response = module.handler(rest_v1_event("GET", "/health", None, {}), FakeLambdaContext())  # type: ignore[arg-type]
    assert response["statusCode"] == 503


def test_batch_hooks_warm_the_model_and_renew_the_s3_client(
    s3: Any, s3_store: Any, demo_registry: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish(s3_store, demo_registry.classifier_dir, version="1")
    monkeypatch.setenv("MLSERVE_STORE", f"s3://{MODEL_BUCKET}")
    monkeypatch.setenv("MLSERVE_MODEL_NAME", "demo-classifier")
    monkeypatch.setenv("MLSERVE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MLSERVE_REFRESH_SECONDS", "3600")
    monkeypatch.setenv("MLSERVE_RESULTS_PREFIX", "results/")
    import lambda_batch.handler as batch

    batch.reset_runtime()
    try:
        batch.before_snapshot()
        runtime = batch.runtime()
        assert runtime.live.current is not None and runtime.live.current.identity.version == "1"
        snapshot_client = runtime.s3
        publish(s3_store, demo_registry.classifier_dir, version="2")
        batch.after_restore()
        assert runtime.s3 is not snapshot_client
        renewed: Any = runtime.live.store
        assert renewed.client is runtime.s3
        assert runtime.live.get().identity.version == "2"  # the first event sees the promotion
    finally:
        batch.reset_runtime()


def test_redeploy_hooks_import_the_verification_path_and_drop_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    import lambda_promote.redeploy as redeploy

    redeploy._state["redeployer"] = object()  # type: ignore[assignment]
    redeploy.before_snapshot()
    assert all(name in sys.modules for name in redeploy.REDEPLOY_HOT_PATH)
    redeploy.after_restore()
    assert redeploy._state == {}


def test_hooks_are_registered_with_the_runtime_and_run_in_lambdas_order(api: Any) -> None:
    import snapshot_restore_py

    import lambda_batch.handler
    import lambda_promote.redeploy

    before = [fn for fn, _args, _kwargs in snapshot_restore_py.get_before_snapshot()]
    after = [fn for fn, _args, _kwargs in snapshot_restore_py.get_after_restore()]
    for module in (api, lambda_batch.handler, lambda_promote.redeploy):
        assert module.before_snapshot in before and module.after_restore in after


def test_without_the_runtime_module_registration_is_a_recording_no_op() -> None:
    # A fresh interpreter where snapshot_restore_py cannot be imported, as off Lambda.
    script = """
import sys
sys.modules["snapshot_restore_py"] = None
from mlserve import snapstart
assert not snapstart.runtime_hooks_available()
calls = []
snapstart.register(before_snapshot=lambda: calls.append("before"), after_restore=lambda: calls.append("after"))
snapstart.simulate_snapshot_and_restore()
print(",".join(calls))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "before,after"
