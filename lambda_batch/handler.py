"""Lambda entry point: S3 ObjectCreated event -> mlserve.batch (all logic lives there).

Powertools (``mlserve.observability``): JSON logs with the S3 request id as the correlation
id and the model version once loaded, EMF metrics (rows scored/rejected, recorded by
``mlserve.batch.job``) flushed per invocation, X-Ray when enabled. Never logs the event."""

from __future__ import annotations

import time
from typing import Any

from mlserve import snapstart
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


def before_snapshot() -> None:
    """SnapStart: build the runtime, load the live model and score its input example."""
    try:
        live = runtime().live
    except Exception as exc:  # not configured: the first event reports it, as without SnapStart
        snapstart.log_hook("before_snapshot", f"no runtime: {exc}")
        return
    snapstart.warm_live_model(live)
    snapstart.log_hook("before_snapshot", "batch runtime ready")


def after_restore() -> None:
    """SnapStart: a fresh S3 client (credentials, connections), fresh randomness, and the
    live pointer re-read on the first event."""
    if _runtime is not None:
        import boto3

        snapstart.forget_aws_session()  # else the new client reuses the snapshot's credentials
        _runtime.s3 = boto3.client("s3")
        snapstart.restore_live_model(_runtime.live, s3_client=_runtime.s3)
    snapstart.reseed_random()
    snapstart.log_hook("after_restore", "clients reset, pointer check forced")


snapstart.register(before_snapshot=before_snapshot, after_restore=after_restore)
