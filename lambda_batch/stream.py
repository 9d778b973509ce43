"""Lambda entry point: a Kinesis event source mapping batch -> mlserve.stream (all logic
lives there). Returns the partial batch response (``ReportBatchItemFailures``); raises when
no model can be loaded, so the whole batch is retried. Never logs the event."""

from __future__ import annotations

from typing import Any

from mlserve.lambda_runtime import lazy_runtime
from mlserve.observability import lambda_entry
from mlserve.stream import StreamRuntime

# The first record's event id (shardId-...:sequenceNumber) ties the logs to the batch.
KINESIS_EVENT_ID = "Records[0].eventID"

runtime = lazy_runtime(StreamRuntime.from_env)
reset_runtime = runtime.reset


def _handle(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return runtime().handle_event(event)


handler = lambda_entry(_handle, correlation_id_path=KINESIS_EVENT_ID)
