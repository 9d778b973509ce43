"""The batch Lambda against moto S3, driven by real S3 event shapes."""

from __future__ import annotations

import gzip
import io
from typing import Any

import numpy as np
import pandas as pd
import pytest

KEY = "incoming/scores.csv"


def frame_csv(frame: pd.DataFrame, **kwargs: Any) -> bytes:
    return frame.to_csv(index=False, **kwargs).encode()


def test_happy_path_matches_model_predict(batch_env: Any, breast_cancer: pd.DataFrame, classifier: Any) -> None:
    data = breast_cancer.head(300).copy()
    data.insert(0, "customer id", [f"c-{i}" for i in range(len(data))])  # extra column, passed through
    event = batch_env.upload(KEY, frame_csv(data))

    batch_env.run(event)

    out = pd.read_csv(io.BytesIO(batch_env.predictions(KEY)))
    expected = classifier.estimator.predict(breast_cancer.head(300))
    assert list(out.columns) == [*data.columns, "prediction", "model_version"]
    np.testing.assert_array_equal(out["prediction"].to_numpy(), expected)
    assert (out["customer id"] == data["customer id"]).all()
    assert (out["model_version"].astype(str) == "1").all()
    report = batch_env.report(KEY)
    assert report["status"] == "succeeded"
    assert (report["rows_read"], report["rows_scored"], report["rows_rejected"]) == (300, 300, 0)
    assert report["model"]["name"] == "demo-classifier" and report["model"]["version"] == "1"
    assert report["model"]["run_id"]
    head = batch_env.s3.head_object(Bucket=batch_env.bucket, Key=KEY)
    assert report["input"]["etag"] == head["ETag"].strip('"')
    assert report["input"]["version_id"] == head["VersionId"]
    assert report["rows_per_second"] > 0 and report["started_at"] <= report["ended_at"]


def test_extra_columns_pass_through_byte_for_byte(batch_env: Any, breast_cancer: pd.DataFrame) -> None:
    body = frame_csv(breast_cancer.head(3))
    header, *rows = body.decode().splitlines()
    # Quoted commas and newlines in an extra column, and a number format pandas would rewrite.
    extras = ['"a, b"', '"line1\nline2"', '"say ""hi"""']
    text = f"note,{header}\n" + "".join(f"{e},{r}\n" for e, r in zip(extras, rows, strict=True))
    batch_env.run(batch_env.upload(KEY, text.encode()))
    out = batch_env.predictions(KEY).decode()
    for e, r in zip(extras, rows, strict=True):
        assert f"{e},{r}," in out
    assert batch_env.report(KEY)["rows_scored"] == 3


def test_probabilities_when_configured(
    batch_env: Any, breast_cancer: pd.DataFrame, classifier: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLSERVE_BATCH_PROBABILITIES", "true")
    batch_env.run(batch_env.upload(KEY, frame_csv(breast_cancer.head(20))))
    out = pd.read_csv(io.BytesIO(batch_env.predictions(KEY)))
    assert [c for c in out.columns if c.startswith("probability_")] == ["probability_0", "probability_1"]
    np.testing.assert_allclose(
        out[["probability_0", "probability_1"]].to_numpy(), classifier.estimator.predict_proba(breast_cancer.head(20))
    )


def test_gzip_input(batch_env: Any, breast_cancer: pd.DataFrame, classifier: Any) -> None:
    key = "incoming/daily/part.csv.gz"
    batch_env.run(batch_env.upload(key, gzip.compress(frame_csv(breast_cancer.head(50)))))
    out = pd.read_csv(io.BytesIO(batch_env.predictions(key)))
    np.testing.assert_array_equal(out["prediction"].to_numpy(), classifier.estimator.predict(breast_cancer.head(50)))
    assert batch_env.report(key)["status"] == "succeeded"


@pytest.mark.parametrize("key", ["incoming/my file (1).csv", "incoming/données/été 2026 ✓.csv", "incoming/a+b=c&d.csv"])
def test_keys_with_spaces_and_unicode(batch_env: Any, breast_cancer: pd.DataFrame, key: str) -> None:
    event = batch_env.upload(key, frame_csv(breast_cancer.head(5)))
    assert event["Records"][0]["s3"]["object"]["key"] != key  # it really arrives encoded
    batch_env.run(event)
    assert batch_env.report(key)["status"] == "succeeded"
    assert batch_env.has_predictions(key)


def test_duplicate_event_scores_once_and_new_upload_scores_again(
    batch_env: Any, breast_cancer: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlserve.batch.job as job

    calls: list[int] = []
    real = job.score_stream

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(job, "score_stream", counting)
    event = batch_env.upload(KEY, frame_csv(breast_cancer.head(10)))
    batch_env.run(event)
    second = batch_env.run(event)
    assert len(calls) == 1
    assert second["results"][0]["status"] == "duplicate"

    batch_env.run(batch_env.upload(KEY, frame_csv(breast_cancer.head(7))))  # new version, same key
    assert len(calls) == 2
    assert batch_env.report(KEY)["rows_read"] == 7


def test_results_and_other_keys_never_scored(batch_env: Any, breast_cancer: pd.DataFrame) -> None:
    body = frame_csv(breast_cancer.head(5))
    for key in ("results/x.csv.predictions.csv", "incoming/notes.txt"):
        response = batch_env.run(batch_env.upload(key, body))
        assert response["results"][0]["status"] == "skipped"
    listed = batch_env.s3.list_objects_v2(Bucket=batch_env.bucket, Prefix="results/")
    assert [o["Key"] for o in listed.get("Contents", [])] == ["results/x.csv.predictions.csv"]


def test_failure_mid_file_leaves_no_predictions(
    batch_env: Any, breast_cancer: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlserve.batch.core as core

    # Chunk 1 (6 MiB) fills a 5 MiB part, so the multipart upload has really started.
    monkeypatch.setenv("MLSERVE_BATCH_CHUNK_BYTES", str(6 * 1024 * 1024))
    monkeypatch.setenv("MLSERVE_BATCH_PART_BYTES", str(5 * 1024 * 1024))
    import mlserve.batch.output as output

    created: list[int] = []
    real_flush = output.S3MultipartSink._flush

    def flush(self: Any) -> None:
        created.append(1)
        real_flush(self)

    monkeypatch.setattr(output.S3MultipartSink, "_flush", flush)
    real = core.predict_frame
    calls = []

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("injected failure in chunk 2")
        return real(*args, **kwargs)

    monkeypatch.setattr(core, "predict_frame", flaky)
    big = pd.concat([breast_cancer] * 120, ignore_index=True)  # ~13 MB: two chunks and more
    body = frame_csv(big)
    with pytest.raises(RuntimeError, match="injected"):
        batch_env.run(batch_env.upload(KEY, body))
    assert created, "the multipart upload should have started before the failure"
    assert not batch_env.has_predictions(KEY)
    assert batch_env.s3.list_multipart_uploads(Bucket=batch_env.bucket).get("Uploads", []) == []
    report = batch_env.report(KEY)
    assert report["status"] == "failed" and "injected failure" in report["error"]["message"]
    # The input is untouched.
    assert batch_env.s3.get_object(Bucket=batch_env.bucket, Key=KEY)["Body"].read() == body

    # The Lambda retry of the same event may take over the `failed` claim and succeed.
    monkeypatch.setattr(core, "predict_frame", real)
    rel_event = batch_env.upload(KEY, body)
    batch_env.run(rel_event)
    assert batch_env.report(KEY)["status"] == "succeeded"


def test_retry_after_failure_takes_over(
    batch_env: Any, breast_cancer: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlserve.batch.core as core

    event = batch_env.upload(KEY, frame_csv(breast_cancer.head(10)))
    real = core.predict_frame
    monkeypatch.setattr(core, "predict_frame", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError):
        batch_env.run(event)
    monkeypatch.setattr(core, "predict_frame", real)
    batch_env.run(event)  # Lambda's retry of the very same event
    assert batch_env.report(KEY)["status"] == "succeeded"


def test_concurrent_duplicate_is_told_to_retry(batch_env: Any, breast_cancer: pd.DataFrame) -> None:
    import json

    event = batch_env.upload(KEY, frame_csv(breast_cancer.head(10)))
    version = event["Records"][0]["s3"]["object"]["versionId"]
    batch_env.s3.put_object(
        Bucket=batch_env.bucket,
        Key=f"results/.markers/scores.csv/{version}",
        Body=json.dumps({"status": "in_progress", "deadline": 4e9}).encode(),
    )
    # Issue 11: a duplicate delivery while another invocation holds the claim is not a
    # Lambda error (no retry, no Errors metric): it returns `claim_held`, scoring nothing.
    response = batch_env.run(event)
    assert response["results"][0]["status"] == "claim_held"
    assert not batch_env.has_predictions(KEY)


def test_model_from_s3_store(
    s3: Any,
    batch_env: Any,
    demo_registry: Any,
    breast_cancer: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
    classifier: Any,
) -> None:
    import lambda_batch.handler as handler_module
    from mlserve.store import open_store
    from tests.conftest import MODEL_BUCKET, publish

    publish(open_store(f"s3://{MODEL_BUCKET}", s3_client=s3), demo_registry.classifier_dir, version="3")
    monkeypatch.setenv("MLSERVE_STORE", f"s3://{MODEL_BUCKET}")
    handler_module.reset_runtime()
    batch_env.run(batch_env.upload(KEY, frame_csv(breast_cancer.head(10))))
    report = batch_env.report(KEY)
    assert report["model"]["version"] == "3" and report["rows_scored"] == 10
