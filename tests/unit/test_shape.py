"""Issue 17 (runtime shape): the contract, the API's documented models, the store methods
callers use instead of reaching into a store's class, the Lambda runtime helpers, and the
pydantic settings whose errors still name the variable."""

from __future__ import annotations

import time
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from lambda_api.app import create_app
from mlserve.config import Settings
from mlserve.contract import INCOMING_PREFIX, PREDICTIONS, REPORT_SUFFIX, Env
from mlserve.errors import MlserveError
from mlserve.lambda_runtime import deadline_of, lazy_runtime, time_left_of
from mlserve.live import LiveModel
from mlserve.store import LocalStore, S3Store
from tests.conftest import MODEL_BUCKET


def _no_model() -> tuple[LiveModel, Settings]:
    raise MlserveError("no model in this test")


def test_predict_documents_its_response_and_error_models() -> None:
    schema = create_app(factory=_no_model).openapi()
    responses = schema["paths"]["/predict"]["post"]["responses"]
    ok = responses["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/PredictResponse"}  # no longer a bare string
    for status in ("400", "413", "415", "422", "503"):
        assert responses[status]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorResponse"
        }
    components = schema["components"]["schemas"]
    assert set(components["PredictResponse"]["required"]) == {"predictions", "model"}
    assert components["ErrorInfo"]["required"] == ["code", "message", "details"]
    # The /batch/uploads body is described once, by the pydantic model.
    upload = schema["paths"]["/batch/uploads"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert upload["required"] == ["filename"] and set(upload["properties"]) == {"filename", "size", "content_type"}


def test_settings_errors_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(Env.STORE, "file:///tmp/x")
    monkeypatch.setenv(Env.MODEL_NAME, "m")
    monkeypatch.setenv(Env.MAX_ROWS, "lots")
    with pytest.raises(MlserveError, match="MLSERVE_MAX_ROWS='lots' is not a number"):
        Settings.from_env()
    monkeypatch.delenv(Env.MAX_ROWS)
    monkeypatch.delenv(Env.MODEL_NAME)
    with pytest.raises(MlserveError, match="missing required setting.*MLSERVE_MODEL_NAME"):
        Settings.from_env()
    # Overrides (`mlserve serve`'s flags) win over the environment; nothing is written to it.
    settings = Settings.from_env(model_name="demo", score_in_threads=True, refresh_seconds=None)
    assert (settings.model_name, settings.score_in_threads, settings.refresh_seconds) == ("demo", True, 15.0)
    with pytest.raises(ValueError, match="max_rows"):
        Settings(store_uri="s", model_name="m", max_rows=0)


def test_local_store_reads_ranges_and_has_no_download_url(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.write_bytes("results/a.csv", b"0123456789")
    assert store.read_range("results/a.csv", 2, 3) == b"234"
    assert store.read_range("results/a.csv", 8, 100) == b"89"
    assert store.local_path("results/a.csv") == (tmp_path / "results/a.csv").resolve()
    assert store.presign_get("results/a.csv", filename="a.csv", content_type="text/csv", expires_in=60) is None
    with pytest.raises(KeyError):
        store.read_range("results/missing.csv", 0, 1)
    assert store.reconnected() is store


def test_s3_store_reads_ranges_and_presigns_a_download(s3: Any) -> None:
    store = S3Store(MODEL_BUCKET, prefix="batch", client=s3)
    store.write_bytes("results/a b.csv", b"0123456789")
    assert store.read_range("results/a b.csv", 2, 3) == b"234"
    assert store.local_path("results/a b.csv") is None
    url = store.presign_get("results/a b.csv", filename="a b.csv", content_type="text/csv", expires_in=60)
    query = urllib.parse.parse_qs(urllib.parse.urlparse(url).query)
    assert "batch/results/a%20b.csv" in url
    assert query["response-content-disposition"] == ["attachment; filename*=UTF-8''a%20b.csv"]
    with pytest.raises(KeyError):
        store.read_range("results/missing.csv", 0, 1)
    assert list(store.keys_modified_since("results/", datetime(2000, 1, 1, tzinfo=UTC))) == ["results/a b.csv"]
    assert list(store.keys_modified_since("results/", datetime(2999, 1, 1, tzinfo=UTC))) == []


def test_lazy_runtime_builds_once_and_resets() -> None:
    built: list[int] = []

    def build() -> int:
        built.append(1)
        return len(built)

    runtime = lazy_runtime(build)
    assert runtime.current is None  # importing a handler builds nothing
    assert runtime() == 1 and runtime() == 1 and built == [1]
    runtime.reset()
    assert runtime.current is None and runtime() == 2


class _Context:
    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def test_deadline_comes_from_the_lambda_context() -> None:
    assert deadline_of(None) is None and time_left_of(None) is None
    before = time.time()
    deadline = deadline_of(_Context())
    after = time.time()
    assert deadline is not None and before + 30 <= deadline <= after + 30
    time_left = time_left_of(_Context())
    assert time_left is not None and time_left() == 30.0


def test_contract_names_are_what_the_stack_and_runtime_share() -> None:
    from infra import monitoring

    assert INCOMING_PREFIX == "incoming/" and REPORT_SUFFIX == ".report.json"
    assert Env.STORE == "MLSERVE_STORE" and PREDICTIONS == "Predictions"
    # The dashboard's metric names are the contract's (no literals of its own).
    assert monitoring.PREDICTIONS is PREDICTIONS
