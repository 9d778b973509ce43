"""A job's status for the page: pending, or done with the report, a preview, a summary and
where to download the predictions."""

from __future__ import annotations

import json
from typing import Any

from mlserve.contract import INCOMING_PREFIX, PREDICTIONS_SUFFIX, REPORT_SUFFIX, SUMMARY_SUFFIX
from mlserve.contract import UPLOAD_SLOTS_PREFIX as JOBS_PREFIX
from mlserve.errors import InputError
from mlserve.store import LocalStore, ModelStore, S3Store
from mlserve.uploads.settings import UploadSettings, results_prefix, s3_client
from mlserve.uploads.slots import check_job_id
from mlserve.uploads.summaries import PREVIEW_MAX_BYTES, PREVIEW_ROWS, SUMMARY_MAX_BYTES, preview, summarize


def batch_area(settings: UploadSettings, client: Any = None) -> ModelStore:
    if settings.local:
        return LocalStore(settings.local_root)
    assert settings.batch_bucket is not None
    return S3Store(settings.batch_bucket, client=client or s3_client())


def find_result(area: ModelStore, settings: UploadSettings, job_id: str, suffix: str) -> str | None:
    for key in area.list_keys(f"{results_prefix(settings)}{job_id}/"):
        name = key.rsplit("/", 1)[-1]
        if key.endswith(suffix) and not name.startswith("."):
            return key
    return None


def job_status(settings: UploadSettings, job_id: str, client: Any = None) -> dict[str, Any]:
    """pending (no report yet) or done: the report, a preview, a summary, a download URL."""
    check_job_id(job_id)
    area = batch_area(settings, client)
    report_key = find_result(area, settings, job_id, REPORT_SUFFIX)
    report: dict[str, Any] | None = None
    if report_key is not None:
        try:
            report = json.loads(area.read_bytes(report_key))
        except (KeyError, ValueError):
            report = None  # being written right now: still pending
    if report is None:
        uploaded = any(True for _ in area.list_keys(f"{INCOMING_PREFIX}{job_id}/"))
        if not uploaded and settings.local and not area.exists(f"{JOBS_PREFIX}{job_id}.json"):
            raise InputError(f"no such batch job {job_id}", code="job_not_found", status=404)
        return {"job_id": job_id, "status": "pending", "uploaded": uploaded}
    result: dict[str, Any] = {"job_id": job_id, "status": "done", "report": report}
    predictions_key = find_result(area, settings, job_id, PREDICTIONS_SUFFIX)
    if predictions_key is not None and report.get("status") == "succeeded":
        head = read_head(area, predictions_key, PREVIEW_MAX_BYTES)
        result["preview"] = preview(head, PREVIEW_ROWS)
        result["summary"] = cached_summary(area, settings, str(report_key), predictions_key)
        filename = predictions_key.rsplit("/", 1)[-1]
        result["download"] = {"filename": filename, "url": download_url(settings, area, job_id, predictions_key)}
    return result


def cached_summary(area: ModelStore, settings: UploadSettings, report_key: str, predictions_key: str) -> Any:
    """The summary cached beside the report (written by the batch function, or by the first
    local poll); computed from up to SUMMARY_MAX_BYTES of predictions only when missing."""
    summary_key = report_key.removesuffix(REPORT_SUFFIX) + SUMMARY_SUFFIX
    try:
        return json.loads(area.read_bytes(summary_key))
    except (KeyError, ValueError):
        pass
    data = read_head(area, predictions_key, SUMMARY_MAX_BYTES + 1)
    summary = summarize(data[:SUMMARY_MAX_BYTES], partial=len(data) > SUMMARY_MAX_BYTES)
    if settings.local:  # the deployed API has no write access to results/; the batch function caches it
        area.write_bytes(summary_key, json.dumps(summary).encode())
    return summary


def download_url(settings: UploadSettings, area: ModelStore, job_id: str, key: str) -> str:
    url = None
    if not settings.local:
        url = area.presign_get(
            key,
            filename=key.rsplit("/", 1)[-1],
            content_type="text/csv; charset=utf-8",
            expires_in=settings.url_seconds,
        )
    return url or f"batch/jobs/{job_id}/download"


def read_head(area: ModelStore, key: str, limit: int) -> bytes:
    """The first `limit` bytes of an object, without reading the rest."""
    return area.read_range(key, 0, limit)
