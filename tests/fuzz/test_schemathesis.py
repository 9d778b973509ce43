"""Schemathesis against the app's own OpenAPI schema, in-process over ASGI, serving a
real MLflow-logged model: no generated request (valid or not) may get a 5xx, and every
4xx carries the documented error body {"error": {"code", "message", "details": [...]}}.

Bounded (``max_examples`` per operation, no deadline) so the whole module stays well
under a minute after the session's demo model is trained.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from lambda_api.app import create_app
from mlserve.config import Settings
from mlserve.live import LiveModel
from mlserve.store import open_store
from tests.conftest import publish

MAX_EXAMPLES = 15


@pytest.fixture(scope="module")
def api_schema(demo_registry: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("fuzz")
    store = open_store((root / "store").as_uri())
    publish(store, demo_registry.classifier_dir, version="1", run_id=demo_registry.classifier_run_id)
    settings_ = Settings(
        store_uri=store.uri,
        model_name="demo-classifier",
        max_rows=50,
        max_body_bytes=200_000,
        cache_dir=root / "cache",
    )

    def factory() -> tuple[LiveModel, Settings]:
        live = LiveModel(
            open_store(settings_.store_uri),
            settings_.model_name,
            max_rows=settings_.max_rows,
            cache_dir=settings_.cache_dir,
        )
        return live, settings_

    app = create_app(factory=factory)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def _operations() -> list[tuple[str, str]]:
    """(path, method) of every documented operation, read from the app itself at collection
    time (no model needed: the request schemas are placeholders until one is live)."""
    from mlserve.errors import MlserveError

    def no_model() -> tuple[LiveModel, Settings]:
        raise MlserveError("collection only")

    paths = create_app(factory=no_model).openapi()["paths"]
    return sorted((path, method.upper()) for path, item in paths.items() for method in item)


OPERATIONS = _operations()
MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]


def assert_error_format(status: int, body: Any) -> None:
    assert isinstance(body, dict) and set(body) >= {"error"}, (status, body)
    error = body["error"]
    assert isinstance(error.get("code"), str) and error["code"], (status, body)
    assert isinstance(error.get("message"), str) and error["message"], (status, body)
    assert isinstance(error.get("details", []), list), (status, body)
    for detail in error.get("details", []):
        assert set(detail) >= {"loc", "msg"}, (status, body)
        assert isinstance(detail["loc"], list) and isinstance(detail["msg"], str), (status, body)


def check_response(case: Any) -> None:
    response = case.call()
    status = response.status_code
    text = response.text
    assert status < 500, f"{case.method} {case.path} -> {status}: {text[:500]}"
    assert "Traceback" not in text
    if 400 <= status < 500:
        content_type = response.headers.get("content-type") or [""]
        content_type = content_type[0] if isinstance(content_type, list) else content_type
        assert content_type.startswith("application/json"), (status, text[:200])
        assert_error_format(status, json.loads(text))


# schemathesis.pytest.from_fixture() breaks on pytest 9 ('Function' has no '_nodeid'),
# so the operations' Hypothesis strategies are driven directly: same generation, same cases.
@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_no_server_errors_and_4xx_in_error_format(api_schema: Any, path: str, method: str, mode: Any) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure prints its raw case fast
    )
    def run(case: Any) -> None:
        check_response(case)

    try:
        run()
    except Unsatisfiable:
        pytest.skip(f"{method} {path} takes no input that can be made invalid")


def test_operations_cover_the_schema(api_schema: Any) -> None:
    found = sorted((op.path, op.method.upper()) for op in (r.ok() for r in api_schema.get_all_operations()))
    assert found == sorted(OPERATIONS)


def test_schema_names_the_model_fields(api_schema: Any, demo_registry: Any) -> None:
    raw = api_schema.raw_schema
    row = raw["components"]["schemas"]
    assert "PredictRequest" in row
    names = json.dumps(row)
    assert "mean radius" in names
    assert Path(demo_registry.classifier_dir).exists()
