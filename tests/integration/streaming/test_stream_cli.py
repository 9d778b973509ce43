"""``mlserve stream-send`` and ``mlserve stream-read`` over moto Kinesis, around the real
consumer: CSV -> input stream -> handler -> output stream -> JSON lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlserve.cli import main
from tests.integration.streaming.conftest import IN_STREAM, OUT_STREAM, StreamWorld, model_predict
from tests.kinesis_events import shard_batches


def test_send_score_read_round_trip(
    published_world: StreamWorld,
    demo_registry: Any,
    breast_cancer: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import lambda_batch.stream as stream_handler

    frame = breast_cancer.head(12).copy()
    csv = tmp_path / "rows.csv"
    frame.assign(order=[f"order-{i}" for i in range(12)]).to_csv(csv, index=False)

    assert main(["stream-send", str(csv), "--stream", IN_STREAM, "--id-column", "order"]) == 0
    sent = json.loads(capsys.readouterr().out)
    assert (sent["records_sent"], sent["records_failed"]) == (12, 0)

    assert main(["stream-send", str(csv), "--stream", IN_STREAM, "--id-column", "order", "--rows-per-record", "5"]) == 0
    assert json.loads(capsys.readouterr().out)["records_sent"] == 3  # 5 + 5 + 2 rows

    for event in shard_batches(published_world.kinesis, IN_STREAM, batch_size=100):
        assert stream_handler.handler(event, None) == {"batchItemFailures": []}

    assert main(["stream-read", "--stream", OUT_STREAM]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 15
    expected = model_predict(demo_registry, frame)
    singles = lines[:12]
    assert [line["data"]["id"] for line in singles] == [f"order-{i}" for i in range(12)]
    assert [line["partition_key"] for line in singles] == [f"order-{i}" for i in range(12)]
    assert [p for line in singles for p in line["data"]["predictions"]] == expected
    assert [p for line in lines[12:] for p in line["data"]["predictions"]] == expected

    assert main(["stream-read", "--stream", OUT_STREAM, "--limit", "2"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_send_refuses_an_unknown_id_column(
    stream_world: StreamWorld, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "rows.csv"
    csv.write_text("a,b\n1,2\n")
    assert main(["stream-send", str(csv), "--stream", IN_STREAM, "--id-column", "nope"]) == 2
    assert "--id-column 'nope' is not a column" in capsys.readouterr().err
