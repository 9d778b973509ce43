"""The state machine's step handlers (lambda_batch.fanout) with the exact payloads the state
machine sends (infra/fanout.py), against moto S3."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mlserve.batch.fanout import _ObjectReader


@pytest.fixture
def handlers(batch_env: Any) -> Any:
    import lambda_batch.fanout as fanout

    fanout.reset()
    yield fanout
    fanout.reset()


def execution_input(batch_env: Any, key: str, body: bytes) -> dict[str, Any]:
    put = batch_env.s3.put_object(Bucket=batch_env.bucket, Key=key, Body=body)
    return {
        "bucket": batch_env.bucket,
        "key": key,
        "version_id": put["VersionId"],
        "etag": put["ETag"].strip('"'),
        "size": len(body),
    }


def test_plan_map_merge_payloads(batch_env: Any, handlers: Any, breast_cancer: pd.DataFrame) -> None:
    state = execution_input(batch_env, "incoming/steps.csv", breast_cancer.to_csv(index=False).encode())
    state["plan"] = handlers.plan(dict(state))
    manifest = json.loads(
        batch_env.s3.get_object(Bucket=batch_env.bucket, Key=state["plan"]["manifest_key"])["Body"].read()
    )
    for item in manifest:  # the Distributed Map's ItemSelector
        handlers.score({"bucket": state["bucket"], "job_key": state["plan"]["job_key"], "range": item})
    result = handlers.merge({"bucket": state["bucket"], "plan": state["plan"], "execution": "arn:exec:1"})
    assert result["status"] == "succeeded" and result["rows_scored"] == len(breast_cancer)
    report = batch_env.report("incoming/steps.csv")
    assert report["fanout"]["execution"] == "arn:exec:1"
    assert batch_env.has_predictions("incoming/steps.csv")


def test_fail_step_payload_when_the_plan_failed(batch_env: Any, handlers: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLSERVE_MODEL_NAME", "no-such-model")  # nothing live: the plan refuses
    state = execution_input(batch_env, "incoming/noplan.csv", b"a\n1\n")
    from mlserve.errors import ModelUnavailableError

    with pytest.raises(ModelUnavailableError):
        handlers.plan(dict(state))
    error = {"Error": "ModelUnavailableError", "Cause": '{"errorMessage": "no live model"}'}
    result = handlers.fail({"request": {**state, "error": error}, "execution": "arn:exec:2"})
    assert result["status"] == "failed"
    report = batch_env.report("incoming/noplan.csv")
    assert report["error"]["code"] == "fanout_failed" and "ModelUnavailableError" in report["error"]["message"]
    assert not batch_env.has_predictions("incoming/noplan.csv")


class RangeIgnoringClient:
    """Answers a ranged GET with the whole object and no ContentRange (as MiniStack 1.5.33
    does when VersionId is given too)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def get_object(self, **kwargs: Any) -> dict[str, Any]:
        return {"Body": io.BytesIO(self.data)}


@pytest.mark.parametrize(("start", "end"), [(0, 10), (5, 17), (90, 100), (3, 3)])
def test_ranged_reads_are_right_even_if_the_endpoint_ignores_range(start: int, end: int, tmp_path: Path) -> None:
    data = bytes(range(100))
    reader = _ObjectReader(RangeIgnoringClient(data), "b", "k", "v1", start, end)
    out = b""
    while chunk := reader.read(4):
        out += chunk
    assert out == data[start:end]
