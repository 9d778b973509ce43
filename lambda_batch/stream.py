"""Lambda entry point: a Kinesis event source mapping batch -> mlserve.stream (all logic
lives there). Returns the partial batch response (``ReportBatchItemFailures``); raises when
no model can be loaded, so the whole batch is retried. Never logs the event."""

from __future__ import annotations

from typing import Any

from mlserve.observability import lambda_entry
from mlserve.stream import StreamRuntime

# The first record's event id (shardId-...:sequenceNumber) ties the logs to the batch.
KINESIS_EVENT_ID = "Records[0].eventID"

_runtime: StreamRuntime | None = None


def runtime() -> StreamRuntime:
    # Built on first use and kept for the container's life, so the model is loaded once.
    global _runtime
    if _runtime is None:
        _runtime = StreamRuntime.from_env()
    return _runtime


def reset_runtime() -> None:
    """For tests: forget the cached clients and model."""
    global _runtime
    _runtime = None


def _handle(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return runtime().handle_event(event)


handler = lambda_entry(_handle, correlation_id_path=KINESIS_EVENT_ID)
