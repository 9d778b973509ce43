"""Issue 11 (Low): job-status polls do not re-parse up to 20 MB of predictions each time.

The batch function computes the page's summary once, from the bytes it wrote, and caches it
beside the report (`<file>.summary.json`); GET /batch/jobs/{id} reads that small object.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest

JOB = "fedcba9876543210fedcba9876543210"
KEY = f"incoming/{JOB}/leads.csv"


def test_status_polls_read_the_cached_summary(
    batch_env: Any, breast_cancer: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlserve.uploads.jobs as uploads  # job_status reads the preview and summary through these

    batch_env.run(batch_env.upload(KEY, breast_cancer.head(40).to_csv(index=False).encode()))
    cached = json.loads(
        batch_env.s3.get_object(Bucket=batch_env.bucket, Key=f"results/{JOB}/leads.csv.summary.json")["Body"].read()
    )
    assert cached["kind"] == "counts" and cached["rows"] == 40 and cached["partial"] is False

    parsed: list[int] = []
    real_summarize, real_read_head = uploads.summarize, uploads.read_head

    def summarize(*args: Any, **kwargs: Any) -> Any:
        parsed.append(1)
        return real_summarize(*args, **kwargs)

    monkeypatch.setattr(uploads, "summarize", summarize)
    read_sizes: list[int] = []

    def read_head(area: Any, key: str, limit: int) -> bytes:
        read_sizes.append(limit)
        return bytes(real_read_head(area, key, limit))

    monkeypatch.setattr(uploads, "read_head", read_head)
    settings = uploads.UploadSettings(store_uri="s3://models", batch_bucket=batch_env.bucket)
    for _ in range(3):
        status = uploads.job_status(settings, JOB, client=batch_env.s3)
        assert status["status"] == "done" and status["summary"] == cached
    assert parsed == []  # never re-parsed
    assert max(read_sizes) <= uploads.PREVIEW_MAX_BYTES  # only the 256 KiB preview is read


def test_summary_is_computed_when_no_cache_exists(batch_env: Any, breast_cancer: pd.DataFrame) -> None:
    """Results written before the cache existed still get a summary (computed, as before)."""
    import mlserve.uploads.jobs as uploads  # job_status reads the preview and summary through these

    batch_env.run(batch_env.upload(KEY, breast_cancer.head(12).to_csv(index=False).encode()))
    batch_env.s3.delete_object(Bucket=batch_env.bucket, Key=f"results/{JOB}/leads.csv.summary.json")
    settings = uploads.UploadSettings(store_uri="s3://models", batch_bucket=batch_env.bucket)
    assert uploads.job_status(settings, JOB, client=batch_env.s3)["summary"]["rows"] == 12
