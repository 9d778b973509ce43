"""The fan-out flow against moto S3 (and moto Step Functions for the hand-over): plan ->
one scorer per range -> merge, compared with the single-function path byte for byte."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlserve.batch.core import BatchOptions
from mlserve.batch.fanout import RangeFailed, fail_file, merge_file, plan_file, score_range
from mlserve.live import load_version, read_pointer

MIB = 1024 * 1024


def big_csv(frame: pd.DataFrame, rows: int, *, crlf: bool = False, bom: bool = False) -> tuple[bytes, pd.DataFrame]:
    """`rows` records of the 30 model columns plus a `note` column holding quoted newlines,
    with bad cells sprinkled in (every 997th row has text in a number column)."""
    data = pd.concat([frame] * (rows // len(frame) + 1), ignore_index=True).head(rows).copy()
    notes = np.array(["plain", "two\nlines", 'say "hi", ok', "x\r\ny"], dtype=object)
    data.insert(0, "note", notes[np.arange(rows) % len(notes)])
    text = data.to_csv(index=False, lineterminator="\r\n" if crlf else "\n")
    lines = text.split("\r\n" if crlf else "\n")
    # The bad cells: replace the first model column's value on some physical lines that start
    # a record with "plain" (those hold no quoted newline).
    column = frame.columns[0]
    out = []
    for number, line in enumerate(lines):
        if number > 0 and number % 997 == 0 and line.startswith("plain,"):
            cells = line.split(",")
            cells[1] = "not-a-number"
            line = ",".join(cells)
        out.append(line)
    body = ("\r\n" if crlf else "\n").join(out).encode()
    assert column in text.splitlines()[0]
    return (b"\xef\xbb\xbf" if bom else b"") + body, data


def run_fanout(
    batch_env: Any, batch_store: Any, key: str, body: bytes, range_bytes: int, tmp_path: Path, **fail: Any
) -> dict[str, Any]:
    """Drive the state machine's three steps by hand, as Step Functions would."""
    put = batch_env.s3.put_object(Bucket=batch_env.bucket, Key=key, Body=body)
    request = {"bucket": batch_env.bucket, "key": key, "version_id": put["VersionId"], "etag": put["ETag"].strip('"')}
    pointer = read_pointer(batch_store, "demo-classifier")
    plan = plan_file(batch_env.s3, request, pointer, results_prefix="results/", range_bytes=range_bytes)
    manifest = json.loads(batch_env.s3.get_object(Bucket=batch_env.bucket, Key=plan["manifest_key"])["Body"].read())
    assert len(manifest) == plan["ranges"]

    def load(pointer: dict[str, Any]) -> Any:
        loads.append(None)  # ranges run in order here: the n-th load is range n-1
        if fail.get("range") is not None and len(loads) - 1 == fail["range"]:
            raise RuntimeError("disk full (injected)")
        return load_version(batch_store, pointer, tmp_path / "cache", allow_pickle=False)

    loads: list[None] = []
    failed = False
    for item in manifest:
        try:
            score_range(batch_env.s3, batch_env.bucket, plan["job_key"], item, load, BatchOptions())
        except RangeFailed:
            failed = True
    if failed:
        error = {"Error": "RangeFailed", "Cause": "{}"}
        return fail_file(batch_env.s3, {**request, "plan": plan}, error, results_prefix="results/")
    return merge_file(batch_env.s3, batch_env.bucket, plan["job_key"], results_prefix="results/")


@pytest.mark.parametrize(("crlf", "bom"), [(False, False), (True, True)])
def test_fanout_output_is_byte_identical_to_single_function(
    batch_env: Any,
    batch_store: Any,
    breast_cancer: pd.DataFrame,
    classifier: Any,
    tmp_path: Path,
    crlf: bool,
    bom: bool,
) -> None:
    body, data = big_csv(breast_cancer, 40_000, crlf=crlf, bom=bom)
    assert len(body) > 8 * MIB

    batch_env.run(batch_env.upload("incoming/single/big.csv", body))
    single = batch_env.predictions("incoming/single/big.csv")
    single_report = batch_env.report("incoming/single/big.csv")

    # 3 MiB ranges: parts under 5 MiB (re-uploaded in combination); 5.5 MiB: parts copied.
    for name, range_bytes in (("small", 3 * MIB), ("large", 5 * MIB + MIB // 2)):
        key = f"incoming/{name}/big.csv"
        outcome = run_fanout(batch_env, batch_store, key, body, range_bytes, tmp_path)
        assert outcome["status"] == "succeeded"
        merged = batch_env.predictions(key)
        assert merged == single  # byte for byte, rows in the original order
        report = batch_env.report(key)
        assert report["fanout"]["ranges"] >= 2
        for field in (
            "rows_read",
            "rows_scored",
            "rows_rejected",
            "rejected_by_reason",
            "rejected_rows",
            "output_columns",
        ):
            assert report[field] == single_report[field], field
        assert report["model"] == single_report["model"]

    # Predictions equal model.predict in the original row order (the good rows).
    out = pd.read_csv(io.BytesIO(single), keep_default_na=False)
    good = pd.to_numeric(data[breast_cancer.columns[0]], errors="coerce").notna()
    assert single_report["rows_rejected"] > 0
    assert len(out) == single_report["rows_scored"]
    frame = out[list(breast_cancer.columns)].astype(float)
    np.testing.assert_array_equal(out["prediction"].to_numpy(), classifier.estimator.predict(frame))
    assert good.all()  # (the bad cells were written into the CSV text, not the frame)


def test_rejected_rows_keep_their_line_numbers_in_the_whole_file(
    batch_env: Any, batch_store: Any, breast_cancer: pd.DataFrame, tmp_path: Path
) -> None:
    body, _ = big_csv(breast_cancer, 40_000)
    outcome = run_fanout(batch_env, batch_store, "incoming/lines.csv", body, 3 * MIB, tmp_path)
    assert outcome["status"] == "succeeded"
    report = batch_env.report("incoming/lines.csv")
    lines = body.split(b"\n")
    assert report["rows_rejected"] >= 10
    later = [row for row in report["rejected_rows"] if row["line"] > 20_000]
    assert later, "rejected rows from later ranges are listed"
    for row in report["rejected_rows"]:
        # The physical line the report names holds the rejected record's text.
        assert lines[row["line"] - 1].decode() == row["raw"]
        assert row["errors"][0]["reason"] == "invalid_number"


def test_a_failed_range_fails_the_file_and_no_output_appears(
    batch_env: Any, batch_store: Any, breast_cancer: pd.DataFrame, tmp_path: Path
) -> None:
    body, _ = big_csv(breast_cancer, 30_000)
    outcome = run_fanout(batch_env, batch_store, "incoming/broken.csv", body, 2 * MIB, tmp_path, range=1)
    assert outcome["status"] == "failed"
    report = batch_env.report("incoming/broken.csv")
    assert report["status"] == "failed"
    assert report["error"]["code"] == "range_failed"
    assert "range 1 " in report["error"]["message"] and "disk full" in report["error"]["message"]
    assert [r["index"] for r in report["failed_ranges"]] == [1]
    assert not batch_env.has_predictions("incoming/broken.csv")


def test_missing_columns_reject_the_whole_file(batch_env: Any, batch_store: Any, tmp_path: Path) -> None:
    body = b"a,b\n" + b"1,2\n" * 5000
    outcome = run_fanout(batch_env, batch_store, "incoming/wrong.csv", body, 4096, tmp_path)
    assert outcome["status"] == "rejected"
    report = batch_env.report("incoming/wrong.csv")
    assert report["error"]["code"] == "missing_columns"
    assert not batch_env.has_predictions("incoming/wrong.csv")


def test_merge_refuses_when_a_range_never_reported(
    batch_env: Any, batch_store: Any, breast_cancer: pd.DataFrame, tmp_path: Path
) -> None:
    body, _ = big_csv(breast_cancer, 3000)
    key = "incoming/unfinished.csv"
    put = batch_env.s3.put_object(Bucket=batch_env.bucket, Key=key, Body=body)
    request = {"bucket": batch_env.bucket, "key": key, "version_id": put["VersionId"]}
    plan = plan_file(
        batch_env.s3,
        request,
        read_pointer(batch_store, "demo-classifier"),
        results_prefix="results/",
        range_bytes=100_000,
    )
    manifest = json.loads(batch_env.s3.get_object(Bucket=batch_env.bucket, Key=plan["manifest_key"])["Body"].read())
    for item in manifest[:-1]:  # the last range never ran (e.g. its function timed out)
        score_range(
            batch_env.s3,
            batch_env.bucket,
            plan["job_key"],
            item,
            lambda p: load_version(batch_store, p, tmp_path / "c", allow_pickle=False),
            BatchOptions(),
        )
    outcome = merge_file(batch_env.s3, batch_env.bucket, plan["job_key"], results_prefix="results/")
    assert outcome["status"] == "failed"
    report = batch_env.report(key)
    assert report["failed_ranges"][0]["index"] == len(manifest) - 1
    assert report["failed_ranges"][0]["status"] == "not_finished"
    assert not batch_env.has_predictions(key)


def test_a_range_never_scores_with_another_version(
    batch_env: Any, batch_store: Any, classifier: Any, tmp_path: Path
) -> None:
    import dataclasses

    from mlserve.scoring import ModelIdentity

    body = b"mean radius\n" + b"1\n" * 10
    key = "incoming/pinned.csv"
    put = batch_env.s3.put_object(Bucket=batch_env.bucket, Key=key, Body=body)
    plan = plan_file(
        batch_env.s3,
        {"bucket": batch_env.bucket, "key": key, "version_id": put["VersionId"]},
        read_pointer(batch_store, "demo-classifier"),
        results_prefix="results/",
        range_bytes=4,
    )
    job = json.loads(batch_env.s3.get_object(Bucket=batch_env.bucket, Key=plan["job_key"])["Body"].read())
    assert job["model"]["version"] == "1" and job["pointer"]["checksums"]  # the pin: the pointer itself
    manifest = json.loads(batch_env.s3.get_object(Bucket=batch_env.bucket, Key=plan["manifest_key"])["Body"].read())
    promoted = dataclasses.replace(classifier, identity=ModelIdentity("demo-classifier", "2", "run-2"))
    with pytest.raises(RangeFailed, match="pinned to 1"):
        score_range(batch_env.s3, batch_env.bucket, plan["job_key"], manifest[0], lambda p: promoted, BatchOptions())


def test_s3_event_hands_big_plain_files_to_the_state_machine(
    batch_env: Any, breast_cancer: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    import lambda_batch.handler as handler_module

    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    machine = sfn.create_state_machine(
        name="fanout",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn="arn:aws:iam::123456789012:role/sfn",
    )["stateMachineArn"]
    monkeypatch.setenv("MLSERVE_FANOUT_STATE_MACHINE_ARN", machine)
    monkeypatch.setenv("MLSERVE_FANOUT_THRESHOLD_BYTES", "50000")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    handler_module.reset_runtime()

    big = breast_cancer.to_csv(index=False).encode()
    assert len(big) > 50_000
    event = batch_env.upload("incoming/big.csv", big)
    result = batch_env.run(event)
    assert result["results"][0]["status"] == "fanned_out"
    executions = sfn.list_executions(stateMachineArn=machine)["executions"]
    assert len(executions) == 1
    started = json.loads(sfn.describe_execution(executionArn=executions[0]["executionArn"])["input"])
    assert started["key"] == "incoming/big.csv" and started["version_id"]
    assert not batch_env.has_predictions("incoming/big.csv")  # the execution writes them

    # The same event again: a duplicate, no second execution.
    assert batch_env.run(event)["results"][0]["status"] == "duplicate"
    assert len(sfn.list_executions(stateMachineArn=machine)["executions"]) == 1

    # gzip over the threshold and plain under it stay on the single-function path.
    batch_env.run(batch_env.upload("incoming/big.csv.gz", gzip.compress(big + big[big.index(b"\n") + 1 :] * 10)))
    assert batch_env.report("incoming/big.csv.gz")["status"] == "succeeded"
    batch_env.run(batch_env.upload("incoming/small.csv", big[:20_000].rsplit(b"\n", 1)[0] + b"\n"))
    assert batch_env.report("incoming/small.csv")["status"] == "succeeded"
    assert len(sfn.list_executions(stateMachineArn=machine)["executions"]) == 1
