"""Powertools wiring of the batch function: the S3 request id as correlation id, the model
version on log lines, RowsScored/RowsRejected EMF metrics with the model version as a
dimension, and no CSV cell in any log line."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from mlserve import observability
from tests.log_capture import capture_logs, dimensions, emf, json_lines

SENTINEL = "SENTINEL-b47c1e-do-not-log"
S3_REQUEST_ID = "C3D13FE58DE4C810"  # responseElements.x-amz-request-id of conftest.s3_event
KEY = "incoming/observed.csv"


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    yield from capture_logs(monkeypatch)


def test_rows_metrics_correlation_id_and_no_cell_in_logs(
    batch_env: Any, breast_cancer: pd.DataFrame, logs: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    data = breast_cancer.head(5).copy()
    data.insert(0, "note", SENTINEL)  # an extra column: passed through, never logged
    data = data.astype({"mean radius": object, "mean texture": object})
    data.loc[data.index[1], "mean radius"] = SENTINEL  # a bad cell: row rejected
    data.loc[data.index[3], "mean texture"] = f"{SENTINEL}-2"
    body = data.to_csv(index=False) + f"{SENTINEL},1,2\n"  # wrong field count: rejected
    event = batch_env.upload(KEY, body.encode())

    batch_env.run(event)

    report = batch_env.report(KEY)
    assert (report["rows_scored"], report["rows_rejected"]) == (3, 3), report
    captured = capsys.readouterr()
    logged = logs.getvalue() + captured.out + captured.err
    assert SENTINEL not in logged

    [blob] = emf(captured.out, observability.ROWS_SCORED)
    assert blob[observability.ROWS_SCORED] in (3, [3.0])
    assert blob[observability.ROWS_REJECTED] in (3, [3.0])
    assert (blob["model_name"], blob["model_version"]) == ("demo-classifier", "1")
    assert {"model_name", "model_version", "service"} <= dimensions(blob)

    lines = json_lines(logs.getvalue())
    finished = [line for line in lines if str(line.get("message", "")).startswith(f"batch {KEY}: succeeded")]
    assert finished, lines
    assert finished[-1]["correlation_id"] == S3_REQUEST_ID
    assert (finished[-1]["model_name"], finished[-1]["model_version"]) == ("demo-classifier", "1")
    assert finished[-1]["function_request_id"] == "req-1"


def test_duplicate_event_records_no_rows(
    batch_env: Any, breast_cancer: pd.DataFrame, logs: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    event = batch_env.upload(KEY, breast_cancer.head(2).to_csv(index=False).encode())
    batch_env.run(event)
    first = emf(capsys.readouterr().out, observability.ROWS_SCORED)
    assert len(first) == 1 and first[0][observability.ROWS_SCORED] in (2, [2.0])
    batch_env.run(event)  # the same S3 event again: already scored
    assert emf(capsys.readouterr().out, observability.ROWS_SCORED) == []


def test_handler_without_context_skips_powertools(batch_env: Any, breast_cancer: pd.DataFrame) -> None:
    from lambda_batch.handler import handler

    event = batch_env.upload(KEY, breast_cancer.head(2).to_csv(index=False).encode())
    result = handler(event, None)
    assert result["results"][0]["rows_scored"] == 2
    observability.metrics.clear_metrics()
