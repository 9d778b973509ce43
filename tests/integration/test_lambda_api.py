"""The real Mangum handler, fed API Gateway REST (v1) and HTTP API (v2) events, serving a
model logged with real MLflow and staged into moto S3."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.apigw_events import FakeLambdaContext, http_v2_event, rest_v1_event
from tests.conftest import MODEL_BUCKET, publish

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def handler(
    s3: Any, s3_store: Any, demo_registry: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    """lambda_api.handler.handler configured by env, exactly as in Lambda."""
    publish(s3_store, demo_registry.classifier_dir, version="1", run_id=demo_registry.classifier_run_id)
    monkeypatch.setenv("MLSERVE_STORE", f"s3://{MODEL_BUCKET}")
    monkeypatch.setenv("MLSERVE_MODEL_NAME", "demo-classifier")
    monkeypatch.setenv("MLSERVE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MLSERVE_MAX_ROWS", "100")
    monkeypatch.setenv("MLSERVE_MAX_BODY_BYTES", "200000")
    import lambda_api.app
    import lambda_api.handler as module

    # A fresh app per test = a fresh cold start with this test's environment.
    fresh = lambda_api.app.create_app()
    monkeypatch.setattr(module.handler, "app", module.StagePrefix(fresh))
    yield module.handler


def call(handler: Any, event: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    response = handler(event, FakeLambdaContext())
    body = response["body"]
    if response.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    parsed = json.loads(body) if headers.get("content-type", "").startswith("application/json") else body
    return response["statusCode"], headers, parsed


def rows(features: Any, count: int) -> list[dict[str, float]]:
    return features.head(count).to_dict(orient="records")


@pytest.mark.parametrize("event_builder", [rest_v1_event, http_v2_event], ids=["rest-v1", "http-v2"])
def test_predict_equals_model_predict(handler: Any, breast_cancer: Any, demo_registry: Any, event_builder: Any) -> None:
    import skops.io

    from mlserve.loader import TRUSTED_TYPES

    expected_model = skops.io.load(demo_registry.classifier_dir / "model.skops", trusted=list(TRUSTED_TYPES))
    payload = {"instances": rows(breast_cancer, 25), "probabilities": True}
    status, headers, body = call(handler, event_builder("POST", "/predict", json.dumps(payload), JSON))
    assert status == 200, body
    assert body["predictions"] == expected_model.predict(breast_cancer.head(25)).tolist()
    np.testing.assert_allclose(
        [[p["0"], p["1"]] for p in body["probabilities"]], expected_model.predict_proba(breast_cancer.head(25))
    )
    assert body["model"] == {"name": "demo-classifier", "version": "1", "run_id": demo_registry.classifier_run_id}
    assert headers["x-mlserve-model-version"] == "1"


@pytest.mark.parametrize(
    "payload",
    [
        lambda f: {"dataframe_split": {"columns": list(f.columns), "data": f.head(10).values.tolist()}},
        lambda f: {"dataframe_records": f.head(10).to_dict(orient="records")},
        lambda f: {"instances": f.head(10).to_dict(orient="records")},
        lambda f: {"inputs": f.head(10).to_dict(orient="list")},
    ],
    ids=["dataframe_split", "dataframe_records", "instances", "inputs"],
)
def test_invocations_speaks_mlflow_protocol(handler: Any, breast_cancer: Any, payload: Any) -> None:
    status, headers, body = call(
        handler, rest_v1_event("POST", "/invocations", json.dumps(payload(breast_cancer)), JSON)
    )
    assert status == 200, body
    predict = call(
        handler, rest_v1_event("POST", "/predict", json.dumps({"instances": rows(breast_cancer, 10)}), JSON)
    )[2]
    assert body == {"predictions": predict["predictions"]}
    assert headers["x-mlserve-model-name"] == "demo-classifier" and headers["x-mlserve-model-version"] == "1"


def test_invocations_csv_body(handler: Any, breast_cancer: Any) -> None:
    csv_body = breast_cancer.head(7).to_csv(index=False)
    status, _, body = call(handler, rest_v1_event("POST", "/invocations", csv_body, {"Content-Type": "text/csv"}))
    assert status == 200 and len(body["predictions"]) == 7


def test_base64_encoded_body_from_api_gateway(handler: Any, breast_cancer: Any) -> None:
    event = rest_v1_event("POST", "/predict", json.dumps({"instances": rows(breast_cancer, 2)}), JSON, binary=True)
    assert call(handler, event)[0] == 200


def test_health_and_model(handler: Any, demo_registry: Any) -> None:
    status, _, body = call(handler, rest_v1_event("GET", "/health"))
    assert status == 200 and body["model"]["version"] == "1"
    status, _, body = call(handler, http_v2_event("GET", "/model"))
    assert status == 200
    assert body["signature"]["inputs"][0] == {"name": "mean radius", "type": "double", "required": True}
    assert body["checksums"]["model.skops"] and body["loaded_at"] and body["source"]


def test_health_is_503_while_no_model(monkeypatch: pytest.MonkeyPatch, s3: Any, tmp_path: Path) -> None:
    monkeypatch.setenv("MLSERVE_STORE", f"s3://{MODEL_BUCKET}")
    monkeypatch.setenv("MLSERVE_MODEL_NAME", "never-published")
    monkeypatch.setenv("MLSERVE_CACHE_DIR", str(tmp_path))
    from mangum import Mangum

    from lambda_api.app import create_app
    from lambda_api.handler import StagePrefix

    handler = Mangum(StagePrefix(create_app()), lifespan="off")
    status, _, body = call(handler, rest_v1_event("GET", "/health"))
    assert status == 503 and body["error"]["code"] == "model_unavailable"
    assert "no live pointer" in body["error"]["message"]
    status, _, body = call(handler, rest_v1_event("POST", "/predict", '{"instances": [{}]}', JSON))
    assert status == 503


def test_docs_work_behind_the_stage_prefix(handler: Any) -> None:
    status, _, html = call(handler, rest_v1_event("GET", "/docs", stage="prod"))
    assert status == 200 and "/prod/openapi.json" in html
    status, _, html = call(handler, http_v2_event("GET", "/docs", stage="dev"))
    assert status == 200 and "/dev/openapi.json" in html
    status, _, spec = call(handler, rest_v1_event("GET", "/openapi.json", stage="prod"))
    assert status == 200
    row = spec["components"]["schemas"]["DemoClassifierRow"]
    assert "mean radius" in row["properties"] and "worst fractal dimension" in row["required"]
    assert (
        spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        == "#/components/schemas/PredictRequest"
    )
    assert spec["servers"] == [{"url": "/prod"}]


def one_row(features: Any) -> dict[str, Any]:
    return rows(features, 1)[0]


BAD_INPUTS = {
    "malformed json": (lambda r: '{"instances": [', JSON, 400, "malformed_json", ["body"]),
    "wrong type": (
        lambda r: json.dumps({"instances": [{**r, "mean radius": "big"}]}),
        JSON,
        422,
        "validation_error",
        ["instances", 0, "mean radius"],
    ),
    "missing field": (
        lambda r: json.dumps({"instances": [{k: v for k, v in r.items() if k != "mean area"}]}),
        JSON,
        422,
        "validation_error",
        ["instances", 0, "mean area"],
    ),
    "extra field": (
        lambda r: json.dumps({"instances": [{**r, "patient_id": 7}]}),
        JSON,
        422,
        "validation_error",
        ["instances", 0, "patient_id"],
    ),
    "nan": (
        lambda r: json.dumps({"instances": [r]}).replace(str(r["mean radius"]), "NaN", 1),
        JSON,
        422,
        "validation_error",
        ["instances", 0, "mean radius"],
    ),
    "infinity": (
        lambda r: json.dumps({"instances": [r]}).replace(str(r["mean radius"]), "Infinity", 1),
        JSON,
        422,
        "validation_error",
        ["instances", 0, "mean radius"],
    ),
    "empty list": (lambda r: '{"instances": []}', JSON, 422, "validation_error", ["instances"]),
    "too many rows": (lambda r: json.dumps({"instances": [r] * 101}), JSON, 413, "too_many_rows", ["instances"]),
    "wrong content type": (
        lambda r: json.dumps({"instances": [r]}),
        {"Content-Type": "text/plain"},
        415,
        "unsupported_media_type",
        ["header", "content-type"],
    ),
    "no content type": (
        lambda r: json.dumps({"instances": [r]}),
        {},
        415,
        "unsupported_media_type",
        ["header", "content-type"],
    ),
    "oversized body": (
        lambda r: json.dumps({"instances": [r], "pad": "x" * 300_000}),
        JSON,
        413,
        "body_too_large",
        ["body"],
    ),
    "body not an object": (lambda r: "[1, 2, 3]", JSON, 422, "validation_error", []),
    "probabilities not bool": (
        lambda r: json.dumps({"instances": [r], "probabilities": "yes"}),
        JSON,
        422,
        "validation_error",
        ["probabilities"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS), ids=list(BAD_INPUTS))
def test_bad_input_gets_a_clear_4xx(handler: Any, breast_cancer: Any, case: str) -> None:
    make_body, headers, status, code, loc = BAD_INPUTS[case]
    got_status, _, body = call(handler, rest_v1_event("POST", "/predict", make_body(one_row(breast_cancer)), headers))
    assert got_status == status, body
    error = body["error"]
    assert error["code"] == code and error["message"]
    assert "Traceback" not in json.dumps(body)
    if loc:
        assert error["details"][0]["loc"] == loc, error


@pytest.mark.parametrize(
    ("event", "status", "code"),
    [
        (rest_v1_event("GET", "/nope"), 404, "not_found"),
        (rest_v1_event("GET", "/predict"), 405, "method_not_allowed"),
        (rest_v1_event("POST", "/invocations", '{"rows": []}', JSON), 422, "invalid_payload"),
        (rest_v1_event("POST", "/invocations", "", JSON), 400, "empty_body"),
        (rest_v1_event("POST", "/invocations", "a,b\n1,2\n", {"Content-Type": "text/csv"}), 422, "validation_error"),
        (
            rest_v1_event("POST", "/invocations", "<xml/>", {"Content-Type": "application/xml"}),
            415,
            "unsupported_media_type",
        ),
    ],
    ids=["unknown route", "wrong method", "unknown format", "empty body", "csv missing columns", "xml"],
)
def test_other_routes_bad_input(handler: Any, event: dict[str, Any], status: int, code: str) -> None:
    got_status, _, body = call(handler, event)
    assert got_status == status and body["error"]["code"] == code, body


def test_scoring_in_worker_threads_answers_the_same(
    handler: Any, breast_cancer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`mlserve serve` scores in worker threads: same predictions, same error bodies."""
    payload = json.dumps({"instances": rows(breast_cancer, 5), "probabilities": True})
    inline = call(handler, rest_v1_event("POST", "/predict", payload, JSON))
    monkeypatch.setenv("MLSERVE_SCORE_IN_THREADS", "true")
    import lambda_api.app
    import lambda_api.handler as module

    monkeypatch.setattr(module.handler, "app", module.StagePrefix(lambda_api.app.create_app()))
    threaded = call(module.handler, rest_v1_event("POST", "/predict", payload, JSON))
    assert threaded[0] == inline[0] == 200 and threaded[2] == inline[2]
    bad = json.dumps({"instances": [{**one_row(breast_cancer), "mean radius": "big"}]})
    status, _, body = call(module.handler, rest_v1_event("POST", "/invocations", bad, JSON))
    assert status == 422 and body["error"]["details"][0]["loc"] == [0, "mean radius"]
