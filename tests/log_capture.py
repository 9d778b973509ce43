"""Capture every log line of a handler run (Powertools JSON and stdlib) for assertions."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from mlserve import observability


def capture_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """Generator for fixtures: every log handler of ours writes to the yielded buffer, at
    DEBUG (even debug lines must not hold a body); pending EMF metrics are cleared first."""
    buffer = io.StringIO()
    observability.route_stdlib_loggers()
    seen: set[int] = set()
    for name in ("", "mlserve", "lambda_api", "lambda_batch", "lambda_promote", observability.logger.name):
        for log_handler in logging.getLogger(name).handlers:
            if isinstance(log_handler, logging.StreamHandler) and id(log_handler) not in seen:
                seen.add(id(log_handler))
                monkeypatch.setattr(log_handler, "stream", buffer)
    root_capture = logging.StreamHandler(buffer)
    logging.getLogger().addHandler(root_capture)
    observability.metrics.clear_metrics()
    observability.clear_model_keys()
    previous_level = observability.logger.log_level
    observability.logger.setLevel(logging.DEBUG)
    try:
        yield buffer
    finally:
        observability.logger.setLevel(previous_level)
        logging.getLogger().removeHandler(root_capture)
        observability.clear_model_keys()


def json_lines(text: str) -> list[dict[str, Any]]:
    lines = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return lines


def emf(text: str, metric: str) -> list[dict[str, Any]]:
    """The EMF blobs in ``text`` that carry ``metric``."""
    return [
        blob
        for blob in json_lines(text)
        if "_aws" in blob and any(m["Name"] == metric for d in blob["_aws"]["CloudWatchMetrics"] for m in d["Metrics"])
    ]


def dimensions(blob: dict[str, Any]) -> set[str]:
    return {name for d in blob["_aws"]["CloudWatchMetrics"] for dims in d["Dimensions"] for name in dims}
