"""Issue 11, Medium 4: a presigned upload slot scores once.

Re-POSTing the same presigned form during its life makes a new object version under the
same `incoming/<job id>/<file>` key; each used to be scored again (and replace the results).
Now the first version of a job id is recorded (`results/.jobs/<job id>`, If-None-Match) and
any other object for that job id is refused; Lambda's retry of the same version still works.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest

JOB = "0123456789abcdef0123456789abcdef"
KEY = f"incoming/{JOB}/scores.csv"


def test_replayed_upload_for_a_job_id_is_not_scored_again(
    batch_env: Any, breast_cancer: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlserve.batch.job as job

    calls: list[int] = []
    real = job.score_stream

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(job, "score_stream", counting)
    first = batch_env.upload(KEY, breast_cancer.head(10).to_csv(index=False).encode())
    batch_env.run(first)
    original = batch_env.report(KEY)

    replay = batch_env.upload(KEY, breast_cancer.head(3).to_csv(index=False).encode())  # the re-POST
    response = batch_env.run(replay)

    assert response["results"][0]["status"] == "replay_refused"
    assert len(calls) == 1
    assert batch_env.report(KEY) == original  # results of the first upload stand
    assert batch_env.report(KEY)["rows_read"] == 10

    # Another file name under the same job id is a replay too.
    other = batch_env.upload(f"incoming/{JOB}/other.csv", breast_cancer.head(3).to_csv(index=False).encode())
    assert batch_env.run(other)["results"][0]["status"] == "replay_refused"

    # Lambda's retry of the first event is not a replay (and a duplicate at that).
    assert batch_env.run(first)["results"][0]["status"] == "duplicate"


def test_keys_outside_web_jobs_may_be_uploaded_again(batch_env: Any, breast_cancer: pd.DataFrame) -> None:
    """Operators re-uploading `incoming/daily.csv` still get it scored: only job ids are one-shot."""
    batch_env.run(batch_env.upload("incoming/daily.csv", breast_cancer.head(4).to_csv(index=False).encode()))
    batch_env.run(batch_env.upload("incoming/daily.csv", breast_cancer.head(6).to_csv(index=False).encode()))
    assert batch_env.report("incoming/daily.csv")["rows_read"] == 6


def test_presigned_post_lives_only_as_long_as_an_upload_needs(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlserve.uploads import DEFAULT_POST_SECONDS, UploadSettings, create_upload

    s3.create_bucket(Bucket="uploads")
    settings = UploadSettings(store_uri="s3://models", batch_bucket="uploads")
    before = datetime.now(UTC)
    response = create_upload(settings, {"filename": "x.csv", "size": 10, "content_type": "text/csv"}, client=s3)
    policy = json.loads(base64.b64decode(response["upload"]["fields"]["policy"]))
    expires = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    assert DEFAULT_POST_SECONDS <= 300
    assert response["expires_in"] == DEFAULT_POST_SECONDS
    assert (expires - before).total_seconds() <= DEFAULT_POST_SECONDS + 5
    # Configurable, e.g. for very slow links.
    monkeypatch.setenv("MLSERVE_UPLOAD_POST_SECONDS", "600")
    monkeypatch.setenv("MLSERVE_STORE", "s3://models")
    monkeypatch.setenv("MLSERVE_MODEL_NAME", "demo-classifier")
    from mlserve.config import Settings

    assert UploadSettings.from_env(Settings.from_env()).post_seconds == 600
