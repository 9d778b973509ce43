"""Lambda entry point: S3 ObjectCreated event -> mlserve.batch (all logic lives there).

Powertools (``mlserve.observability``): JSON logs with the S3 request id as the correlation
id and the model version once loaded, EMF metrics (rows scored/rejected, recorded by
``mlserve.batch.job``) flushed per invocation, X-Ray when enabled. Never logs the event."""

from __future__ import annotations

import time
from typing import Any

from mlserve.batch.runtime import BatchRuntime
from mlserve.observability import S3_REQUEST_ID, lambda_entry

_runtime: BatchRuntime | None = None


def runtime() -> BatchRuntime:
    # Built on first use and kept for the container's life, so the model is loaded once.
    global _runtime
    if _runtime is None:
        _runtime = BatchRuntime.from_env()
    return _runtime


def reset_runtime() -> None:
    """For tests: forget the cached clients and model."""
    global _runtime
    _runtime = None


def _handle(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    deadline = None
    time_left = None
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        deadline = time.time() + context.get_remaining_time_in_millis() / 1000.0

        def time_left() -> float:  # asked between chunks: stop cleanly before the timeout
            return float(context.get_remaining_time_in_millis()) / 1000.0

    request_id = getattr(context, "aws_request_id", None)
    return runtime().handle_event(event, deadline=deadline, time_left=time_left, request_id=request_id)


handler = lambda_entry(_handle, correlation_id_path=S3_REQUEST_ID)
