"""Lambda entry point: an EventBridge Scheduler invocation ``{"schedule": NAME}`` ->
mlserve.batch.scheduled (all logic lives there): score every CSV under the schedule's
prefix that has no results for the live version, write the run summary. Never logs the event."""

from __future__ import annotations

import time
from typing import Any

from mlserve.batch.scheduled import ScheduledRuntime
from mlserve.observability import lambda_entry

_runtime: ScheduledRuntime | None = None


def runtime() -> ScheduledRuntime:
    # Built on first use and kept for the container's life, so the model is loaded once.
    global _runtime
    if _runtime is None:
        _runtime = ScheduledRuntime.from_env()
    return _runtime


def reset_runtime() -> None:
    """For tests: forget the cached clients and model."""
    global _runtime
    _runtime = None


def _handle(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    deadline = None
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        deadline = time.time() + context.get_remaining_time_in_millis() / 1000.0
    return runtime().handle_event(event, deadline=deadline)


handler = lambda_entry(_handle)
