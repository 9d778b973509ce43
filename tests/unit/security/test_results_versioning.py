"""Issue 11, Medium 5: results belong to the newest upload of a key.

Results are per input key. The review's sequence: v1 fails, v2 succeeds, then Lambda's retry
of v1 succeeds - and replaced v2's predictions and report with v1's. Now only the current
version of the key writes the plain result keys; an older version's report goes under
`results/.superseded/` and its predictions are discarded.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pandas as pd
import pytest

KEY = "incoming/versioned.csv"


def test_retry_of_an_older_version_never_replaces_newer_results(
    batch_env: Any, breast_cancer: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlserve.batch.core as core

    v1 = batch_env.upload(KEY, breast_cancer.head(11).to_csv(index=False).encode())
    real = core.predict_frame
    monkeypatch.setattr(core, "predict_frame", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("v1 boom")))
    with pytest.raises(RuntimeError):
        batch_env.run(v1)
    monkeypatch.setattr(core, "predict_frame", real)

    v2 = batch_env.upload(KEY, breast_cancer.head(22).to_csv(index=False).encode())
    batch_env.run(v2)
    v2_version = v2["Records"][0]["s3"]["object"]["versionId"]
    assert batch_env.report(KEY)["rows_scored"] == 22

    response = batch_env.run(v1)  # Lambda's retry of the failed v1 event

    assert response["results"][0]["status"] == "superseded"
    report = batch_env.report(KEY)
    assert report["status"] == "succeeded" and report["rows_scored"] == 22
    assert report["input"]["version_id"] == v2_version
    predictions = pd.read_csv(io.BytesIO(batch_env.predictions(KEY)))
    assert len(predictions) == 22  # report and predictions from the same (newest) version

    v1_version = v1["Records"][0]["s3"]["object"]["versionId"]
    kept = json.loads(
        batch_env.s3.get_object(
            Bucket=batch_env.bucket, Key=f"results/.superseded/versioned.csv.report.json/{v1_version}.json"
        )["Body"].read()
    )
    assert kept["status"] == "superseded" and kept["superseded_by"] == v2_version


def test_a_late_failure_of_an_older_version_does_not_replace_the_newer_report(
    batch_env: Any, breast_cancer: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlserve.batch.core as core

    v1 = batch_env.upload(KEY, breast_cancer.head(5).to_csv(index=False).encode())
    batch_env.run(batch_env.upload(KEY, breast_cancer.head(9).to_csv(index=False).encode()))
    monkeypatch.setattr(core, "predict_frame", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("late")))
    with pytest.raises(RuntimeError):
        batch_env.run(v1)
    report = batch_env.report(KEY)
    assert report["status"] == "succeeded" and report["rows_scored"] == 9
    assert len(pd.read_csv(io.BytesIO(batch_env.predictions(KEY)))) == 9
