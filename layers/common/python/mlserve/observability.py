"""Powertools for AWS Lambda, set up once for every mlserve function.

- ``logger``: JSON logs with the service name, the correlation id (API Gateway request id,
  S3 request id, EventBridge event id) and, once a model is loaded, ``model_name`` and
  ``model_version`` on every line. Events and request bodies are never logged
  (``log_event=False`` always; the stdlib loggers of ``mlserve`` and ``lambda_api`` are
  routed through the same JSON formatter).
- ``metrics``: CloudWatch EMF, namespace ``POWERTOOLS_METRICS_NAMESPACE`` (default
  ``mlserve``), the model name and version as dimensions. Locally the EMF blobs are
  printed to stdout; ``POWERTOOLS_METRICS_DISABLED=true`` silences them.
- ``tracer``: X-Ray via Powertools when running in Lambda with ``aws_xray_sdk`` available
  and ``POWERTOOLS_TRACE_DISABLED`` not set; otherwise a no-op with the same decorators.

Recording helpers are tiny and never raise: observability must not fail a request.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

# Metric names live in the contract (the Monitoring construct's dashboard uses the same ones).
from mlserve.contract import (
    METRICS_NAMESPACE,
    MODEL_LOAD_SECONDS,
    PREDICTION_REQUESTS,
    PREDICTIONS,
    REDEPLOY_SECONDS,
    REDEPLOYS,
    ROWS_REJECTED,
    ROWS_SCORED,
    SERVICE_NAME,
    VALIDATION_ERRORS,
    WEBHOOK_DELIVERIES,
    Env,
)

SERVICE = os.environ.get(Env.POWERTOOLS_SERVICE_NAME) or SERVICE_NAME
NAMESPACE = os.environ.get(Env.POWERTOOLS_METRICS_NAMESPACE) or METRICS_NAMESPACE


API_GATEWAY_REQUEST_ID = correlation_paths.API_GATEWAY_REST  # requestContext.requestId (v1 and v2)
S3_REQUEST_ID = 'Records[0].responseElements."x-amz-request-id"'
EVENTBRIDGE_EVENT_ID = correlation_paths.EVENT_BRIDGE

F = TypeVar("F", bound=Callable[..., Any])

logger = Logger(service=SERVICE, utc=True)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
_own_log = logging.getLogger(__name__)
# Redeploy and webhook metrics are flushed at once (``single_metric``, own dimensions), so the
# handler-level flush often has nothing left: that is expected, not worth a warning per container.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)


class NoOpTracer:
    """Same decorators as Powertools' Tracer; does nothing (local runs, tests, emulators)."""

    enabled = False

    def capture_lambda_handler(self, lambda_handler: Any = None, **kwargs: Any) -> Any:
        return lambda_handler if lambda_handler is not None else (lambda fn: fn)

    def capture_method(self, method: Any = None, **kwargs: Any) -> Any:
        return method if method is not None else (lambda fn: fn)

    def put_annotation(self, key: str, value: Any) -> None:
        return None


def tracing_enabled(environ: dict[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    if env.get(Env.POWERTOOLS_TRACE_DISABLED, "").lower() in ("1", "true", "yes"):
        return False
    if not env.get("AWS_LAMBDA_FUNCTION_NAME"):
        return False
    return importlib.util.find_spec("aws_xray_sdk") is not None


def make_tracer() -> Any:
    if not tracing_enabled():
        return NoOpTracer()
    from aws_lambda_powertools import Tracer

    return Tracer(service=SERVICE)


tracer: Any = make_tracer()


def route_stdlib_loggers() -> None:
    """Give the runtime's stdlib loggers (mlserve.*, lambda_api.*, ...) the JSON format."""
    copy_config_to_registered_loggers(
        source_logger=logger, include={"mlserve", "lambda_api", "lambda_batch", "lambda_promote"}
    )


def instrument(handler: F, correlation_id_path: str | None = None) -> F:
    """Wrap a Lambda handler: logging context + correlation id, EMF flush with the cold
    start metric, X-Ray capture. Used by every function's ``handler.py``."""
    route_stdlib_loggers()
    wrapped = tracer.capture_lambda_handler(handler)
    wrapped = metrics.log_metrics(wrapped, capture_cold_start_metric=True)
    wrapped = logger.inject_lambda_context(wrapped, correlation_id_path=correlation_id_path, log_event=False)
    return wrapped  # type: ignore[return-value]


def lambda_entry(handler: F, correlation_id_path: str | None = None) -> F:
    """``instrument(handler)`` for real invocations; the bare handler when ``context`` is
    None (local tools, tests and benchmarks call handlers without a Lambda context)."""
    observed = instrument(handler, correlation_id_path)

    @functools.wraps(handler)
    def entry(event: Any, context: Any = None) -> Any:
        if context is None:
            return handler(event, context)
        return observed(event, context)

    return entry  # type: ignore[return-value]


def _identity(model: Any) -> tuple[str, str]:
    identity = getattr(model, "identity", model)
    return str(getattr(identity, "name", None) or "unknown"), str(getattr(identity, "version", None) or "unknown")


def _safely(action: Callable[[], None]) -> None:
    try:
        action()
    except Exception as exc:  # never fail a request because of a metric
        _own_log.warning("observability: could not record a metric: %s", exc)


def set_model(model: Any) -> None:
    """Put model_name/model_version on every following log line of this environment."""
    name, version = _identity(model)
    logger.append_keys(model_name=name, model_version=version)


def set_model_keys(name: str, version: str) -> None:
    """Like ``set_model`` from a name and version (a promotion not loaded yet)."""
    _safely(lambda: logger.append_keys(model_name=str(name), model_version=str(version)))


def clear_model_keys() -> None:
    """Forget the model of a previous invocation (functions that serve no single model)."""
    _safely(lambda: logger.remove_keys(["model_name", "model_version"]))


@contextlib.contextmanager
def local_tool() -> Iterator[None]:
    """For local tools (the CLI), whose stdout is their output: while inside, the JSON log
    lines of ``mlserve.*`` (Powertools' logger, named after the service) go to stderr and
    no EMF blob is printed (``POWERTOOLS_METRICS_DISABLED`` unless already set). Restored
    on exit."""
    handlers = [
        h
        for h in logging.getLogger(logger.name).handlers
        if isinstance(h, logging.StreamHandler) and not isinstance(h.stream, _CurrentStderr)
    ]
    streams = [_swap_stream(h, _CurrentStderr()) for h in handlers]
    had = Env.POWERTOOLS_METRICS_DISABLED in os.environ
    os.environ.setdefault(Env.POWERTOOLS_METRICS_DISABLED, "true")
    try:
        yield
    finally:
        if not had:
            os.environ.pop(Env.POWERTOOLS_METRICS_DISABLED, None)
        for h, stream in zip(handlers, streams, strict=True):
            if stream is not None:
                _swap_stream(h, stream)


def _swap_stream(handler: logging.StreamHandler[Any], stream: Any) -> Any:
    """``handler.setStream`` that tolerates a closed old stream (setStream flushes it first;
    an embedding host such as a test runner may have closed it already)."""
    try:
        return handler.setStream(stream)
    except ValueError:
        old, handler.stream = handler.stream, stream
        return old


class _CurrentStderr:
    """Whatever ``sys.stderr`` is at the time of writing (it may be replaced later)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _flush_other_identity(name: str, version: str) -> None:
    """Metrics of another model identity are still pending (a 4xx before any model was
    loaded, a hot swap, the next S3 record of a batch event, `mlserve serve` which never
    flushes per request): emit them under their own dimensions first. Overwriting the
    dimension would re-label them, and Powertools warns "Dimension ... has already been added"."""
    pending = metrics.provider.dimension_set
    if any(
        key in pending and pending[key] != value for key, value in (("model_name", name), ("model_version", version))
    ):
        metrics.flush_metrics()


def _dimensions(model: Any) -> None:
    name, version = _identity(model)
    _flush_other_identity(name, version)
    metrics.add_dimension(name="model_name", value=name)
    metrics.add_dimension(name="model_version", value=version)


def record_prediction(model: Any, rows: int) -> None:
    """One answered prediction request of ``rows`` rows (online API)."""

    def action() -> None:
        _dimensions(model)
        metrics.add_metric(name=PREDICTION_REQUESTS, unit=MetricUnit.Count, value=1)
        metrics.add_metric(name=PREDICTIONS, unit=MetricUnit.Count, value=rows)

    _safely(action)


def record_validation_error(model: Any | None, code: str) -> None:
    """A request refused for its input (4xx). ``model`` may be None (no model loaded)."""

    def action() -> None:
        _dimensions(model)
        metrics.add_metric(name=VALIDATION_ERRORS, unit=MetricUnit.Count, value=1)
        metrics.add_metadata(key="error_code", value=code)

    _safely(action)


def record_rows_scored(model: Any, scored: int, rejected: int = 0) -> None:
    """Batch: rows scored and rows rejected (listed in the report) for one input file."""

    def action() -> None:
        _dimensions(model)
        metrics.add_metric(name=ROWS_SCORED, unit=MetricUnit.Count, value=scored)
        metrics.add_metric(name=ROWS_REJECTED, unit=MetricUnit.Count, value=rejected)

    _safely(action)


def _single(name: str, unit: MetricUnit, value: float, dimensions: dict[str, str]) -> None:
    # Flushed at once with its own dimensions: usable outside a wrapped handler.
    # Powertools' single_metric prints even when metrics are disabled: check here.
    if is_metrics_disabled():
        return
    with single_metric(name=name, unit=unit, value=value, namespace=NAMESPACE) as metric:
        metric.add_dimension(name="service", value=SERVICE)
        for key, dim in dimensions.items():
            metric.add_dimension(name=key, value=dim)


def record_model_load(model: Any, seconds: float | None = None) -> None:
    """A model version loaded (cold start or hot swap); also tags the logs with it."""

    def action() -> None:
        set_model(model)
        name, version = _identity(model)
        value = seconds if seconds is not None else float(getattr(model, "load_seconds", 0.0) or 0.0)
        _single(MODEL_LOAD_SECONDS, MetricUnit.Seconds, value, {"model_name": name, "model_version": version})

    _safely(action)


def on_model_swap(previous: Any, model: Any) -> None:
    """``LiveModel(on_swap=...)`` hook."""
    record_model_load(model)


def record_redeploy(outcome: str, model_name: str, version: str | None = None, seconds: float | None = None) -> None:
    """Promotion: one redeploy attempt and its outcome (the ``RedeployOutcome.status``:
    deployed, already_live, superseded, failed; ``error`` for an unexpected exception)."""

    def action() -> None:
        dims = {"model_name": model_name, "outcome": outcome}
        if version:
            dims["model_version"] = str(version)
        _single(REDEPLOYS, MetricUnit.Count, 1, dims)
        if seconds is not None:
            _single(REDEPLOY_SECONDS, MetricUnit.Seconds, seconds, dims)

    _safely(action)


def record_webhook_delivery(outcome: str) -> None:
    """Promotion webhook: one delivery and what became of it (no payload-derived dimension)."""
    _safely(lambda: _single(WEBHOOK_DELIVERIES, MetricUnit.Count, 1, {"outcome": outcome}))
