"""Local mode: receive an upload into the store's batch area (enforcing what the S3 policy
enforces when deployed) and score it with the batch code, as the batch Lambda would."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from mlserve.contract import INCOMING_PREFIX, PREDICTIONS_SUFFIX, REPORT_SUFFIX
from mlserve.contract import UPLOAD_SLOTS_PREFIX as JOBS_PREFIX
from mlserve.errors import ErrorDetail, InputError
from mlserve.store import LocalStore
from mlserve.uploads.jobs import find_result
from mlserve.uploads.settings import UploadSettings, results_prefix
from mlserve.uploads.slots import check_job_id, too_large

logger = logging.getLogger(__name__)


async def receive_local_upload(
    settings: UploadSettings,
    job_id: str,
    content_type: str | None,
    declared_length: str | None,
    chunks: AsyncIterator[bytes],
) -> Path:
    """Write a local upload into `<store>/batch/incoming/<job>/<file>`, enforcing what the
    S3 policy enforces when deployed: the slot, its content type, the size range."""
    area = LocalStore(settings.local_root)
    check_job_id(job_id)
    try:
        slot = json.loads(area.read_bytes(f"{JOBS_PREFIX}{job_id}.json"))
    except KeyError:
        raise InputError(f"no upload slot for job {job_id}", code="job_not_found", status=404) from None
    if time.time() > float(slot.get("expires_at", 0)):
        raise InputError(
            f"the upload slot for job {job_id} has expired; start again", code="upload_expired", status=403
        )
    given = (content_type or "").split(";", 1)[0].strip().lower()
    if given != slot["content_type"]:
        raise InputError(
            f"content type {given or 'none'!r} does not match the upload slot ({slot['content_type']})",
            code="unsupported_media_type",
            status=415,
            details=[ErrorDetail(["header", "content-type"], f"expected {slot['content_type']}")],
        )
    if declared_length and declared_length.isdigit() and int(declared_length) > settings.max_bytes:
        raise too_large(int(declared_length), settings.max_bytes)
    target = area.local_path(slot["key"])
    if target.exists():
        raise InputError(f"job {job_id} already has its file", code="already_uploaded", status=409)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    tmp = Path(tmp_name)
    size = 0
    try:
        with os.fdopen(fd, "wb") as handle:
            async for chunk in chunks:
                size += len(chunk)
                if size > settings.max_bytes:
                    raise too_large(None, settings.max_bytes)
                handle.write(chunk)
        if size == 0:
            raise InputError("the file is empty", code="empty_file", details=[ErrorDetail(["body"], "no bytes")])
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def score_local_upload(settings: UploadSettings, job_id: str, live: Any) -> dict[str, Any]:
    """Score an uploaded local file with the batch scorer, exactly as the batch Lambda
    would: `results/<job>/<file>.predictions.csv` (only when complete) + `.report.json`."""
    area = LocalStore(settings.local_root)
    keys = [k for k in area.list_keys(f"{INCOMING_PREFIX}{job_id}/") if not k.rsplit("/", 1)[-1].startswith(".")]
    if not keys:
        raise InputError(f"job {job_id} has no uploaded file", code="job_not_found", status=404)
    key = keys[0]
    relative = key[len(INCOMING_PREFIX) :]
    output = area.local_path(f"{results_prefix(settings)}{relative}{PREDICTIONS_SUFFIX}")
    from mlserve.batch.core import BatchOptions
    from mlserve.batch.job import score_local

    return score_local(area.local_path(key), output, live, BatchOptions.from_env())


def score_local_upload_safely(settings: UploadSettings, job_id: str, live: Any) -> None:
    """The background task: whatever happens, the job ends with a report (`failed` and why
    when the scorer itself could not run, e.g. no live model), so the page stops waiting."""
    try:
        score_local_upload(settings, job_id, live)
    except Exception as exc:
        logger.exception("scoring local upload %s failed", job_id)
        from mlserve.batch.job import build_report

        area = LocalStore(settings.local_root)
        keys = list(area.list_keys(f"{INCOMING_PREFIX}{job_id}/"))
        relative = keys[0][len(INCOMING_PREFIX) :] if keys else f"{job_id}/upload.csv"
        now = time.time()
        report = build_report(
            status="failed", source={"key": keys[0] if keys else None}, started=now, ended=now, model=None, error=exc
        )
        area.write_bytes(f"{results_prefix(settings)}{relative}{REPORT_SUFFIX}", json.dumps(report, indent=1).encode())


def local_download_path(settings: UploadSettings, job_id: str) -> tuple[Path, str]:
    area = LocalStore(settings.local_root)
    key = find_result(area, settings, check_job_id(job_id), PREDICTIONS_SUFFIX)
    if key is None:
        raise InputError(f"job {job_id} has no predictions (yet)", code="job_not_found", status=404)
    return area.local_path(key), key.rsplit("/", 1)[-1]
