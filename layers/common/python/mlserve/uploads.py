"""CSV batches from the browser: upload targets, job status, previews and downloads.

Deployed (``MLSERVE_BATCH_BUCKET`` set and the model store on S3), ``POST /batch/uploads``
hands the browser a presigned S3 POST for ``incoming/<job id>/<filename>`` whose policy
enforces the size limit and the content type; the S3-triggered batch Lambda scores it into
``results/<job id>/<filename>.predictions.csv`` + ``.report.json``.

Locally (no batch bucket, or a ``file://`` store), the upload goes to a same-origin route of
the API (``POST /batch/local-uploads/<job id>``) that writes into the local store's batch area
(``<store>/batch/``, same layout as the bucket) and scores it with the same batch code.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import re
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from mlserve.config import Settings, env_number
from mlserve.contract import (
    INCOMING_PREFIX,
    PREDICTIONS_SUFFIX,
    REPORT_SUFFIX,
    RESULTS_PREFIX,
    SUMMARY_SUFFIX,
    Env,
)
from mlserve.contract import UPLOAD_SLOTS_PREFIX as JOBS_PREFIX
from mlserve.errors import ErrorDetail, InputError
from mlserve.store import LocalStore, ModelStore, S3Store

logger = logging.getLogger(__name__)

DEFAULT_UPLOAD_MAX_BYTES = 50 * 1024 * 1024
DEFAULT_URL_SECONDS = 900
# The presigned POST only has to outlive the browser starting its upload (S3 checks the
# policy's expiration when the POST arrives); a short life narrows the replay window, and the
# batch function scores one object per job id anyway (mlserve.batch.job.claim_job).
DEFAULT_POST_SECONDS = 120
PREVIEW_ROWS = 20
PREVIEW_MAX_BYTES = 256 * 1024
SUMMARY_MAX_BYTES = 20 * 1024 * 1024
MAX_CLASSES_COUNTED = 30
HISTOGRAM_BINS = 10
CONTENT_TYPES = {".csv": "text/csv", ".csv.gz": "application/gzip"}
ACCEPTED_CONTENT_TYPES = {
    ".csv": {"text/csv", "application/csv", "application/vnd.ms-excel", "text/plain", ""},
    ".csv.gz": {"application/gzip", "application/x-gzip", ""},
}
JOB_ID = re.compile(r"^[0-9a-f]{32}$")
UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._ -]+")
PREDICTION_COLUMNS = ("prediction", "model_version")
AUTH_MODES = ("none", "api_key", "iam")


@dataclass(frozen=True)
class UploadSettings:
    """Where browser uploads go, read from MLSERVE_* environment variables."""

    store_uri: str
    batch_bucket: str | None
    results_prefix: str = RESULTS_PREFIX
    max_bytes: int = DEFAULT_UPLOAD_MAX_BYTES
    url_seconds: int = DEFAULT_URL_SECONDS
    post_seconds: int = DEFAULT_POST_SECONDS

    @classmethod
    def from_env(cls, settings: Settings) -> UploadSettings:
        return cls(
            store_uri=settings.store_uri,
            batch_bucket=(os.environ.get(Env.BATCH_BUCKET) or "").strip() or None,
            results_prefix=settings.results_prefix,
            max_bytes=int(env_number(Env.UPLOAD_MAX_BYTES, DEFAULT_UPLOAD_MAX_BYTES, minimum=1)),
            url_seconds=int(env_number(Env.UPLOAD_URL_SECONDS, DEFAULT_URL_SECONDS, minimum=60)),
            post_seconds=int(env_number(Env.UPLOAD_POST_SECONDS, DEFAULT_POST_SECONDS, minimum=10)),
        )

    @property
    def local(self) -> bool:
        return self.batch_bucket is None or urlparse(self.store_uri).scheme in ("file", "")

    @property
    def local_root(self) -> Path:
        parsed = urlparse(self.store_uri)
        base = Path(unquote(parsed.path)) if parsed.scheme == "file" else Path(self.store_uri)
        return base / "batch"


def auth_mode() -> str:
    """How callers authenticate (set by the stack from the cdk.json `auth` context)."""
    mode = (os.environ.get(Env.AUTH) or "none").strip().lower().replace("-", "_")
    return mode if mode in AUTH_MODES else "none"


def results_prefix(settings: UploadSettings) -> str:
    prefix = settings.results_prefix
    return prefix if prefix.endswith("/") else prefix + "/"


# --- upload slots -------------------------------------------------------------------


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


def s3_client() -> Any:
    import boto3
    from botocore.config import Config

    # SigV4 and, on AWS, the regional virtual-hosted endpoint: what browsers can POST to with
    # CORS (the global endpoint answers other regions with a redirect, which CORS refuses).
    # An emulator endpoint (AWS_ENDPOINT_URL[_S3], e.g. LocalStack) keeps path-style URLs.
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    config = Config(signature_version="s3v4", s3={"addressing_style": "path" if s3_endpoint() else "virtual"})
    endpoint = None if s3_endpoint() or not region else regional_s3_endpoint(region)
    return boto3.client("s3", region_name=region, config=config, endpoint_url=endpoint)


def regional_s3_endpoint(region: str) -> str:
    """Always the regional endpoint (us-east-1 too), so upload URLs are
    `https://<bucket>.s3.<region>.amazonaws.com/` - the origin the page's CSP names."""
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://s3.{region}.{suffix}"


def upload_origin() -> str | None:
    """The origin browsers POST uploads to: `MLSERVE_UPLOAD_ORIGIN` (set by the stack from
    the bucket's regional domain name), else derived from the bucket and region."""
    explicit = (os.environ.get(Env.UPLOAD_ORIGIN) or "").strip().rstrip("/")
    if explicit:
        return explicit
    bucket = (os.environ.get(Env.BATCH_BUCKET) or "").strip()
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not bucket or not region or s3_endpoint():
        return None
    return "https://" + bucket + "." + regional_s3_endpoint(region).removeprefix("https://")


def s3_endpoint() -> str | None:
    """The S3 endpoint override boto3 honours (emulators), or None on AWS."""
    return (os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or "").strip() or None


# --- local uploads --------------------------------------------------------------------


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
    key = _find_result(area, settings, check_job_id(job_id), PREDICTIONS_SUFFIX)
    if key is None:
        raise InputError(f"job {job_id} has no predictions (yet)", code="job_not_found", status=404)
    return area.local_path(key), key.rsplit("/", 1)[-1]


# --- job status -----------------------------------------------------------------------


def batch_area(settings: UploadSettings, client: Any = None) -> ModelStore:
    if settings.local:
        return LocalStore(settings.local_root)
    assert settings.batch_bucket is not None
    return S3Store(settings.batch_bucket, client=client or s3_client())


def _find_result(area: ModelStore, settings: UploadSettings, job_id: str, suffix: str) -> str | None:
    for key in area.list_keys(f"{results_prefix(settings)}{job_id}/"):
        name = key.rsplit("/", 1)[-1]
        if key.endswith(suffix) and not name.startswith("."):
            return key
    return None


def job_status(settings: UploadSettings, job_id: str, client: Any = None) -> dict[str, Any]:
    """pending (no report yet) or done: the report, a preview, a summary, a download URL."""
    check_job_id(job_id)
    area = batch_area(settings, client)
    report_key = _find_result(area, settings, job_id, REPORT_SUFFIX)
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
    predictions_key = _find_result(area, settings, job_id, PREDICTIONS_SUFFIX)
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


def _complete_lines(data: bytes) -> str:
    """Decode, dropping a last line cut in the middle by a ranged read."""
    text = data.decode("utf-8-sig", errors="replace")
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    return text


def _records(data: bytes) -> tuple[list[str], list[list[str]]]:
    reader = csv.reader(io.StringIO(_complete_lines(data), newline=""))
    header = next(reader, [])
    try:
        records = [record for record in reader if record]
    except csv.Error:
        records = []
    return header, records


def _ordered_columns(header: list[str]) -> list[int]:
    """Prediction columns first (what people look for), then the input columns."""
    first = [i for i, name in enumerate(header) if name in PREDICTION_COLUMNS or name.startswith("probability_")]
    return first + [i for i in range(len(header)) if i not in first]


def preview(data: bytes, rows: int) -> dict[str, Any]:
    header, records = _records(data)
    order = _ordered_columns(header)
    return {
        "columns": [header[i] for i in order],
        "rows": [[record[i] if i < len(record) else "" for i in order] for record in records[:rows]],
    }


def summarize(data: bytes, *, partial: bool = False) -> dict[str, Any]:
    """Counts per predicted class, or a histogram of numeric predictions."""
    header, records = _records(data)
    if "prediction" not in header:
        return {"kind": "none", "rows": 0, "partial": partial}
    position = header.index("prediction")
    values = [record[position] for record in records if position < len(record)]
    numbers = _as_numbers(values)
    counts = Counter(values)
    integral = numbers is not None and all(float(v).is_integer() for v in numbers)
    if numbers is None or (integral and len(counts) <= MAX_CLASSES_COUNTED):
        ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        shown = dict(ordered[:MAX_CLASSES_COUNTED])
        other = sum(n for _, n in ordered[MAX_CLASSES_COUNTED:])
        summary: dict[str, Any] = {"kind": "counts", "rows": len(values), "counts": shown, "partial": partial}
        if other:
            summary["other"] = other
        return summary
    return {"kind": "histogram", "rows": len(values), "bins": histogram(numbers), "partial": partial}


def _as_numbers(values: list[str]) -> list[float] | None:
    try:
        numbers = [float(v) for v in values]
    except ValueError:
        return None
    return numbers if all(math.isfinite(n) for n in numbers) else None


def histogram(numbers: list[float], bins: int = HISTOGRAM_BINS) -> list[dict[str, float]]:
    if not numbers:
        return []
    low, high = min(numbers), max(numbers)
    if low == high:
        return [{"from": low, "to": high, "count": len(numbers)}]
    width = (high - low) / bins
    counts = [0] * bins
    for n in numbers:
        counts[min(int((n - low) / width), bins - 1)] += 1
    return [{"from": low + i * width, "to": low + (i + 1) * width, "count": c} for i, c in enumerate(counts)]
