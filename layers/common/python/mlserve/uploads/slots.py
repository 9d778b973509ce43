"""Upload slots: check the requested file, hand out a job id and where to upload it (a
presigned S3 POST when deployed, a same-origin route locally)."""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from mlserve.contract import INCOMING_PREFIX
from mlserve.contract import UPLOAD_SLOTS_PREFIX as JOBS_PREFIX
from mlserve.errors import ErrorDetail, InputError
from mlserve.store import LocalStore
from mlserve.uploads.settings import UploadSettings, s3_client

CONTENT_TYPES = {".csv": "text/csv", ".csv.gz": "application/gzip"}


ACCEPTED_CONTENT_TYPES = {
    ".csv": {"text/csv", "application/csv", "application/vnd.ms-excel", "text/plain", ""},
    ".csv.gz": {"application/gzip", "application/x-gzip", ""},
}


JOB_ID = re.compile(r"^[0-9a-f]{32}$")


UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._ -]+")


def new_job_id() -> str:
    return uuid.uuid4().hex


def check_job_id(job_id: str) -> str:
    if not JOB_ID.match(job_id):
        raise InputError(
            f"no such batch job {job_id!r}",
            code="job_not_found",
            status=404,
            details=[ErrorDetail(["path", "job_id"], "a job id is 32 hex characters")],
        )
    return job_id


def safe_filename(raw: Any) -> tuple[str, str]:
    """(sanitized file name, its suffix). Only the base name is kept; .csv or .csv.gz."""
    if not isinstance(raw, str) or not raw.strip():
        raise _field_error("filename", "a file name is required", code="invalid_filename")
    name = raw.replace("\\", "/").rsplit("/", 1)[-1].strip()
    name = UNSAFE_NAME_CHARS.sub("_", name).strip(" .") or "upload.csv"
    lowered = name.lower()
    suffix = ".csv.gz" if lowered.endswith(".csv.gz") else ".csv" if lowered.endswith(".csv") else ""
    if not suffix:
        raise _field_error("filename", "only .csv and .csv.gz files can be scored", code="invalid_filename")
    # Lower-case suffix: the batch notification filter and scorer match `.csv`/`.csv.gz` exactly.
    name = name[: -len(suffix)] + suffix
    if len(name) > 200:
        name = name[: 200 - len(suffix)] + suffix
    return name, suffix


def _field_error(field: str, msg: str, *, code: str = "validation_error", status: int = 422) -> InputError:
    return InputError(f"invalid {field}: {msg}", code=code, status=status, details=[ErrorDetail(["body", field], msg)])


def check_size(size: Any, max_bytes: int) -> int | None:
    if size is None:
        return None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _field_error("size", "the file size in bytes, a non-negative integer")
    if size == 0:
        raise _field_error("size", "the file is empty", code="empty_file")
    if size > max_bytes:
        raise too_large(size, max_bytes)
    return size


def too_large(size: int | None, max_bytes: int) -> InputError:
    shown = f"{size} bytes" if size is not None else "larger than allowed"
    return InputError(
        f"the file is {shown}; the limit is {max_bytes} bytes (MLSERVE_UPLOAD_MAX_BYTES)",
        code="file_too_large",
        status=413,
        details=[ErrorDetail(["body", "size"], f"at most {max_bytes} bytes")],
    )


def check_content_type(raw: Any, suffix: str) -> str:
    given = (raw or "").split(";", 1)[0].strip().lower() if isinstance(raw, str) else ""
    if given not in ACCEPTED_CONTENT_TYPES[suffix]:
        raise InputError(
            f"a {suffix} file cannot have content type {given!r}",
            code="unsupported_media_type",
            status=415,
            details=[ErrorDetail(["body", "content_type"], f"expected {CONTENT_TYPES[suffix]}")],
        )
    return CONTENT_TYPES[suffix]


def parse_upload_request(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(
            f"malformed JSON: {exc}", code="malformed_json", status=400, details=[ErrorDetail(["body"], str(exc))]
        ) from None
    if not isinstance(payload, dict):
        raise InputError("the body must be a JSON object", details=[ErrorDetail(["body"], "expected an object")])
    return payload


def create_upload(settings: UploadSettings, payload: dict[str, Any], client: Any = None) -> dict[str, Any]:
    """Validate {filename, size?, content_type?} and hand out an upload target for a new job."""
    filename, suffix = safe_filename(payload.get("filename"))
    size = check_size(payload.get("size"), settings.max_bytes)
    content_type = check_content_type(payload.get("content_type"), suffix)
    job_id = new_job_id()
    key = f"{INCOMING_PREFIX}{job_id}/{filename}"
    response: dict[str, Any] = {
        "job_id": job_id,
        "key": key,
        "filename": filename,
        "max_bytes": settings.max_bytes,
        "expires_in": settings.post_seconds,
        "status_url": f"batch/jobs/{job_id}",
    }
    if settings.local:
        slot = {
            "job_id": job_id,
            "key": key,
            "filename": filename,
            "content_type": content_type,
            "size": size,
            "created_at": datetime.now(UTC).isoformat(),
            "expires_at": time.time() + settings.post_seconds,
        }
        LocalStore(settings.local_root).write_bytes(f"{JOBS_PREFIX}{job_id}.json", json.dumps(slot).encode())
        # A raw-body POST to our own route: same origin, no multipart parser needed.
        response["upload"] = {
            "mode": "local",
            "method": "POST",
            "url": f"batch/local-uploads/{job_id}",
            "headers": {"Content-Type": content_type},
        }
    else:
        assert settings.batch_bucket is not None
        response["upload"] = {
            "mode": "s3",
            "method": "POST",
            **presigned_post(
                client, settings.batch_bucket, key, content_type, settings.max_bytes, settings.post_seconds
            ),
        }
    return response


def presigned_post(
    client: Any, bucket: str, key: str, content_type: str, max_bytes: int, expires_in: int
) -> dict[str, Any]:
    """A browser form POST straight to S3; the policy pins the key, the content type and
    the size range, so S3 itself refuses anything else."""
    client = client or s3_client()
    post = client.generate_presigned_post(
        Bucket=bucket,
        Key=key,
        Fields={"Content-Type": content_type},
        Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, max_bytes]],
        ExpiresIn=expires_in,
    )
    return {"url": post["url"], "fields": post["fields"]}
