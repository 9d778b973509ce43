"""Lambda entry point: S3 ObjectCreated event -> mlserve.batch (all logic lives there).

Powertools (``mlserve.observability``): JSON logs with the S3 request id as the correlation
id and the model version once loaded, EMF metrics (rows scored/rejected, recorded by
``mlserve.batch.job``) flushed per invocation, X-Ray when enabled. Never logs the event."""

from __future__ import annotations

from typing import Any

from mlserve import snapstart
from mlserve.batch.runtime import BatchRuntime
from mlserve.lambda_runtime import deadline_of, lazy_runtime, time_left_of
from mlserve.observability import S3_REQUEST_ID, lambda_entry

runtime = lazy_runtime(BatchRuntime.from_env)
reset_runtime = runtime.reset


def _handle(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    request_id = getattr(context, "aws_request_id", None)
    return runtime().handle_event(
        event, deadline=deadline_of(context), time_left=time_left_of(context), request_id=request_id
    )


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
    built = runtime.current
    if built is not None:
        import boto3

        snapstart.forget_aws_session()  # else the new client reuses the snapshot's credentials
        built.s3 = boto3.client("s3")
        snapstart.restore_live_model(built.live, s3_client=built.s3)
    snapstart.reseed_random()
    snapstart.log_hook("after_restore", "clients reset, pointer check forced")


snapstart.register(before_snapshot=before_snapshot, after_restore=after_restore)
