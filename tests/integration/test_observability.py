"""Powertools wiring of the API function: JSON logs with the correlation id and model
version, EMF metrics with the model version as a dimension, and no request body in any
log line. Runs the real Mangum handler with real API Gateway events, no AWS."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlserve import observability
from tests.apigw_events import FakeLambdaContext, http_v2_event, rest_v1_event
from tests.conftest import MODEL_BUCKET, publish
from tests.log_capture import capture_logs, json_lines

JSON = {"Content-Type": "application/json"}
SENTINEL = "SENTINEL-7f3c9a-do-not-log"


@pytest.fixture
def observed(
    s3: Any, s3_store: Any, demo_registry: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Any, io.StringIO]]:
    """The real handler (fresh app = cold start) with every log handler writing to a buffer."""
    publish(s3_store, demo_registry.classifier_dir, version="1", run_id=demo_registry.classifier_run_id)
    monkeypatch.setenv("MLSERVE_STORE", f"s3://{MODEL_BUCKET}")
    monkeypatch.setenv("MLSERVE_MODEL_NAME", "demo-classifier")
    monkeypatch.setenv("MLSERVE_CACHE_DIR", str(tmp_path / "cache"))
    import lambda_api.app
    import lambda_api.handler as module

    monkeypatch.setattr(module.handler, "app", module.StagePrefix(lambda_api.app.create_app()))
    for buffer in capture_logs(monkeypatch):
        yield module.handler, buffer


def _emf(stdout: str) -> list[dict[str, Any]]:
    return [line for line in json_lines(stdout) if "_aws" in line]


def _row(breast_cancer: Any) -> dict[str, Any]:
    row: dict[str, Any] = breast_cancer.head(1).to_dict(orient="records")[0]
    return row


@pytest.mark.parametrize("event_builder", [rest_v1_event, http_v2_event], ids=["rest-v1", "http-v2"])
def test_no_request_body_in_any_log_line(
    observed: tuple[Any, io.StringIO], breast_cancer: Any, capsys: pytest.CaptureFixture[str], event_builder: Any
) -> None:
    handler, buffer = observed
    good = {"instances": [{**_row(breast_cancer)}], "note": SENTINEL}  # extra key -> 422
    bad_type = {"instances": [{**_row(breast_cancer), "mean radius": SENTINEL}]}
    unknown_column = {"instances": [{**_row(breast_cancer), SENTINEL: 1.0}]}
    csv_body = "mean radius\n" + SENTINEL + "\n"
    responses = [
        handler(event_builder("POST", "/predict", json.dumps(good), JSON), FakeLambdaContext()),
        handler(event_builder("POST", "/predict", json.dumps(bad_type), JSON), FakeLambdaContext()),
        handler(event_builder("POST", "/predict", json.dumps(unknown_column), JSON), FakeLambdaContext()),
        handler(event_builder("POST", "/predict", SENTINEL, JSON), FakeLambdaContext()),
        handler(
            event_builder("POST", "/invocations", csv_body, {"Content-Type": "text/csv"}),
            FakeLambdaContext(),
        ),
    ]
    assert all(400 <= r["statusCode"] < 500 for r in responses), [r["statusCode"] for r in responses]
    captured = capsys.readouterr()
    logged = buffer.getvalue() + captured.out + captured.err
    assert logged.strip(), "expected some log output to inspect"
    assert SENTINEL not in logged


def test_logs_carry_correlation_id_and_model_version(
    observed: tuple[Any, io.StringIO], breast_cancer: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    handler, buffer = observed
    event = rest_v1_event("POST", "/predict", json.dumps({"instances": [_row(breast_cancer)]}), JSON)
    assert handler(event, FakeLambdaContext())["statusCode"] == 200
    observability.logger.info("after a request")
    captured = capsys.readouterr()
    lines = json_lines(buffer.getvalue() + captured.out)
    ours = [line for line in lines if line.get("message") == "after a request"]
    assert ours, lines
    line = ours[-1]
    assert line["service"] == observability.SERVICE
    assert line["correlation_id"] == event["requestContext"]["requestId"]
    assert line["model_name"] == "demo-classifier"
    assert line["model_version"] == "1"
    assert line["function_request_id"] == FakeLambdaContext.aws_request_id


def test_emf_metrics_with_model_version_dimension(
    observed: tuple[Any, io.StringIO], breast_cancer: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    handler, _ = observed
    rows = breast_cancer.head(3).to_dict(orient="records")
    ok = handler(rest_v1_event("POST", "/predict", json.dumps({"instances": rows}), JSON), FakeLambdaContext())
    assert ok["statusCode"] == 200
    bad = handler(rest_v1_event("POST", "/predict", json.dumps({"instances": [{}]}), JSON), FakeLambdaContext())
    assert bad["statusCode"] == 422
    blobs = _emf(capsys.readouterr().out)
    by_metric: dict[str, list[dict[str, Any]]] = {}
    for blob in blobs:
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == observability.NAMESPACE
            for metric in directive["Metrics"]:
                by_metric.setdefault(metric["Name"], []).append(blob)
    assert by_metric[observability.PREDICTIONS][0][observability.PREDICTIONS] in (3, [3.0])
    assert by_metric[observability.PREDICTIONS][0]["model_version"] == "1"
    assert by_metric[observability.VALIDATION_ERRORS][0]["model_version"] == "1"
    assert by_metric[observability.MODEL_LOAD_SECONDS][0]["model_version"] == "1"


def test_helpers_for_batch_and_promotion_emit_emf(capsys: pytest.CaptureFixture[str]) -> None:
    class Identity:
        name = "demo-classifier"
        version = "7"

    class Model:
        identity = Identity()

    observability.record_redeploy("failed", "demo-classifier", "7", seconds=1.5)
    observability.record_rows_scored(Model(), scored=10, rejected=2)
    observability.metrics.flush_metrics()
    blobs = _emf(capsys.readouterr().out)
    redeploy = next(b for b in blobs if observability.REDEPLOYS in b)
    assert redeploy["outcome"] == "failed" and redeploy["model_version"] == "7"
    scored = next(b for b in blobs if observability.ROWS_SCORED in b)
    assert scored[observability.ROWS_SCORED] in (10, [10.0])
    assert scored[observability.ROWS_REJECTED] in (2, [2.0])
    assert scored["model_version"] == "7"


def test_recording_never_raises() -> None:
    observability.record_prediction(object(), 1)
    observability.record_validation_error(None, "x")
    observability.record_model_load(None)
    observability.metrics.clear_metrics()


def test_tracer_is_a_noop_outside_lambda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    assert observability.tracing_enabled() is False
    assert (
        observability.tracing_enabled({"AWS_LAMBDA_FUNCTION_NAME": "f", "POWERTOOLS_TRACE_DISABLED": "true"}) is False
    )
    tracer = observability.NoOpTracer()

    def fn(event: Any, context: Any) -> int:
        return 1

    assert tracer.capture_lambda_handler(fn) is fn
    assert tracer.capture_method()(fn) is fn
