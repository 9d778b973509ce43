"""Lambda entry point: an EventBridge Scheduler invocation ``{"schedule": NAME}`` ->
mlserve.batch.scheduled (all logic lives there): score every CSV under the schedule's
prefix that has no results for the live version, write the run summary. Never logs the event."""

from __future__ import annotations

from typing import Any

from mlserve.batch.scheduled import ScheduledRuntime
from mlserve.lambda_runtime import deadline_of, lazy_runtime
from mlserve.observability import lambda_entry

runtime = lazy_runtime(ScheduledRuntime.from_env)
reset_runtime = runtime.reset


def _handle(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return runtime().handle_event(event, deadline=deadline_of(context))


handler = lambda_entry(_handle)
