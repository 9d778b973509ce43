"""One S3 object -> predictions + report, exactly once per object version.

Order of writes: claim marker -> predictions (multipart, completed last) -> report ->
marker `done`. On failure: abort the upload, write a `failed` report, mark the marker
`failed` (so the retry may take over), re-raise (so Lambda retries, then the DLQ).

Idempotency uses an S3 conditional-write marker, not DynamoDB (see docs/batch.md):
`<results>/.markers/<path>/<versionId or etag>` created with `If-None-Match: *`.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from mlserve.batch.core import BatchOptions, ScoreResult, score_stream
from mlserve.batch.limits import LimitExceeded
from mlserve.batch.output import Sink
from mlserve.batch.overlap import BackgroundPartsSink, ReadAhead, WriteBehind
from mlserve.contract import (
    INCOMING_PREFIX,
    INPUT_SUFFIXES,
    JOB_CLAIMS_DIR,
    MARKERS_DIR,
    PREDICTIONS_SUFFIX,
    REPORT_SUFFIX,
    RESULTS_PREFIX,
)
from mlserve.errors import InputError, MlserveError
from mlserve.live import LiveModel
from mlserve.observability import record_rows_scored
from mlserve.scoring import LoadedModel

logger = logging.getLogger(__name__)

SUFFIXES = INPUT_SUFFIXES
# Output bytes kept for the web page's summary (uploads.SUMMARY_MAX_BYTES, plus one byte
# to tell a partial summary).
SUMMARY_CAPTURE_BYTES = 20 * 1024 * 1024 + 1
# A web-page upload key: incoming/<32 hex job id>/<file name>
JOB_ID = re.compile(r"^[0-9a-f]{32}$")
# A claim whose holder is past its Lambda deadline (plus slack) is abandoned.
STALE_SLACK_SECONDS = 60.0


class ClaimHeld(MlserveError):
    """Another invocation is scoring this object version right now: retry later."""


@dataclass(frozen=True)
class S3Input:
    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None
    size: int | None = None


def inputs_from_event(event: dict[str, Any]) -> list[S3Input]:
    """S3 event notification records -> inputs (keys arrive URL-encoded, '+' for space)."""
    inputs = []
    for record in event.get("Records") or []:
        if record.get("eventSource") != "aws:s3" or not str(record.get("eventName", "")).startswith("ObjectCreated"):
            logger.info("ignoring record %s %s", record.get("eventSource"), record.get("eventName"))
            continue
        s3 = record["s3"]
        obj = s3["object"]
        inputs.append(
            S3Input(
                bucket=s3["bucket"]["name"],
                key=unquote_plus(obj["key"]),
                version_id=obj.get("versionId") or None,
                etag=(obj.get("eTag") or "").strip('"') or None,
                size=obj.get("size"),
            )
        )
    return inputs


def result_keys(key: str, results_prefix: str) -> tuple[str, str, str]:
    """(predictions key, report key, relative path) for an input key under incoming/."""
    relative = key[len(INCOMING_PREFIX) :] if key.startswith(INCOMING_PREFIX) else key
    prefix = results_prefix if results_prefix.endswith("/") else results_prefix + "/"
    return f"{prefix}{relative}{PREDICTIONS_SUFFIX}", f"{prefix}{relative}{REPORT_SUFFIX}", relative


def marker_key(relative: str, results_prefix: str, version: str) -> str:
    prefix = results_prefix if results_prefix.endswith("/") else results_prefix + "/"
    return f"{prefix}{MARKERS_DIR}{relative}/{version}"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def build_report(
    *,
    status: str,
    source: dict[str, Any],
    started: float,
    ended: float,
    model: LoadedModel | None,
    result: ScoreResult | None = None,
    error: MlserveError | Exception | None = None,
    predictions: str | None = None,
) -> dict[str, Any]:
    seconds = max(ended - started, 0.0)
    report: dict[str, Any] = {
        "status": status,
        "input": source,
        "predictions": predictions,
        "model": model.identity.to_dict() if model else None,
        "rows_read": result.rows_read if result else 0,
        "rows_scored": result.rows_scored if result else 0,
        "rows_rejected": result.rows_rejected if result else 0,
        "rejected_by_reason": dict(result.rejected_by_reason) if result else {},
        "rejected_rows": result.rejected_rows if result else [],
        "rejected_rows_listed": len(result.rejected_rows) if result else 0,
        "output_columns": result.output_columns if result else [],
        "started_at": _iso(started),
        "ended_at": _iso(ended),
        "seconds": round(seconds, 3),
        "rows_per_second": round(result.rows_read / seconds, 1) if result and seconds > 0 else 0.0,
    }
    if error is not None:
        code = error.code if isinstance(error, MlserveError) else type(error).__name__
        message = (error.message if isinstance(error, MlserveError) else str(error)) or type(error).__name__
        report["error"] = {"code": code, "message": message}
    return report


class Superseded(MlserveError):
    """A newer version of the input key exists: this version's results must not replace it."""


def score_to_sink(
    source: Any,
    sink: Sink,
    model: LoadedModel,
    options: BatchOptions,
    source_info: dict[str, Any],
    predictions: str,
    *,
    time_left: Callable[[], float] | None = None,
    before_commit: Callable[[], None] | None = None,
) -> tuple[dict[str, Any], Exception | None]:
    """Score, then commit (or abort) the sink; return (report, exception to re-raise).

    An InputError rejects the file (report `rejected`, nothing to retry); a passed limit
    (LimitExceeded) is `failed` with the limit named and not retried either (the same input
    fails the same way); anything else - DeadlineReached included - is `failed` and
    re-raised so Lambda retries. The sink is aborted in every case, so no partial
    predictions exist. `before_commit` may raise Superseded to keep the output from landing.
    """
    started = time.time()
    result = ScoreResult()

    def aborted(status: str, exc: Exception, *, with_progress: bool = False) -> dict[str, Any]:
        _abort(sink)
        report = build_report(
            status=status, source=source_info, started=started, ended=time.time(), model=model, error=exc
        )
        if with_progress:
            report["progress"] = progress(result)
        return report

    try:
        score_stream(source, sink, model, options, result=result, time_left=time_left)
        if before_commit is not None:
            before_commit()
        sink.commit()
    except Superseded as exc:
        return aborted("superseded", exc), None
    except LimitExceeded as exc:
        report = aborted("failed", exc, with_progress=True)
        logger.warning("batch input %s refused: %s", source_info.get("key") or source_info.get("path"), exc)
        report["retryable"] = False
        return report, None
    except InputError as exc:
        return aborted("rejected", exc), None
    except Exception as exc:
        report = aborted("failed", exc, with_progress=True)
        logger.exception("scoring %s failed", source_info.get("key"))
        return report, exc
    return build_report(
        status="succeeded",
        source=source_info,
        started=started,
        ended=time.time(),
        model=model,
        result=result,
        predictions=predictions,
    ), None


def progress(result: ScoreResult) -> dict[str, int]:
    """How far a stopped run got (its partial output was discarded)."""
    return {"rows_read": result.rows_read, "rows_scored": result.rows_scored, "bytes_read": result.bytes_read}


def _abort(sink: Sink) -> None:
    try:
        sink.abort()
    except Exception:  # the original error matters more; log and carry on
        logger.exception("aborting the output failed")


def _precondition_failed(exc: Exception) -> bool:
    from botocore.exceptions import ClientError

    return isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in (
        "PreconditionFailed",
        "ConditionalRequestConflict",
    )


class S3Markers:
    """Claim/finish markers with S3 conditional writes (If-None-Match / If-Match)."""

    def __init__(self, client: Any, bucket: str, request_id: str | None = None) -> None:
        self.client = client
        self.bucket = bucket
        self.request_id = request_id

    def _put(self, key: str, body: dict[str, Any], **condition: str) -> str:
        response = self.client.put_object(
            Bucket=self.bucket, Key=key, Body=json.dumps(body).encode(), ContentType="application/json", **condition
        )
        return str(response["ETag"])

    def claim(self, key: str, deadline: float) -> str | None:
        """Return the marker ETag when this invocation owns the work, None when the work
        is already done (a duplicate); raise ClaimHeld when another invocation has it."""
        body = {"status": "in_progress", "claimed_at": _iso(time.time()), "deadline": deadline}
        if self.request_id:
            body["request_id"] = self.request_id
        try:
            return self._put(key, body, IfNoneMatch="*")
        except Exception as exc:
            if not _precondition_failed(exc):
                raise
        current = self.client.get_object(Bucket=self.bucket, Key=key)
        state = json.loads(current["Body"].read())
        if state.get("status") == "done":
            return None
        # Lambda retries an asynchronous event with the same request id, and only after the
        # previous attempt ended: an in-progress claim carrying our own id is a dead attempt
        # of this very event (e.g. killed), not a concurrent one - take it over at once.
        own = bool(self.request_id) and state.get("request_id") == self.request_id
        if (
            not own
            and state.get("status") == "in_progress"
            and time.time() < float(state.get("deadline", 0)) + STALE_SLACK_SECONDS
        ):
            raise ClaimHeld(f"s3://{self.bucket}/{key} is being scored by another invocation", code="claim_held")
        # `failed`, or a holder that died past its deadline: take over, atomically, so two
        # retries cannot both win.
        try:
            return self._put(key, body, IfMatch=current["ETag"])
        except Exception as exc:
            if _precondition_failed(exc):
                raise ClaimHeld(f"lost the race to take over s3://{self.bucket}/{key}", code="claim_held") from None
            raise

    def finish(self, key: str, status: str, report_key: str, *, final: bool = False) -> None:
        done = "done" if final or status in ("succeeded", "rejected", "superseded") else "failed"
        self._put(key, {"status": done, "report": report_key, "finished_at": _iso(time.time())})


def job_id_of(key: str) -> str | None:
    """The web page's job id of an `incoming/<job id>/<file>` key (None for other keys)."""
    parts = key[len(INCOMING_PREFIX) :].split("/")
    return parts[0] if len(parts) == 2 and JOB_ID.match(parts[0]) else None


def claim_job(client: Any, bucket: str, results_prefix: str, key: str, version: str) -> bool:
    """A web-page job id scores ONE object version: the first event for it records
    `<results>/.jobs/<job id>` with If-None-Match; any other object or version under the same
    job id (a replayed presigned POST) is refused. The same version again (a retry) passes."""
    job_id = job_id_of(key)
    if job_id is None:
        return True
    prefix = results_prefix if results_prefix.endswith("/") else results_prefix + "/"
    marker = f"{prefix}{JOB_CLAIMS_DIR}{job_id}"
    body = {"key": key, "version": version, "claimed_at": _iso(time.time())}
    try:
        client.put_object(
            Bucket=bucket, Key=marker, Body=json.dumps(body).encode(), ContentType="application/json", IfNoneMatch="*"
        )
        return True
    except Exception as exc:
        if not _precondition_failed(exc):
            raise
    first = json.loads(client.get_object(Bucket=bucket, Key=marker)["Body"].read())
    return bool(first.get("key") == key and first.get("version") == version)


def current_version(client: Any, bucket: str, key: str) -> tuple[str | None, str | None]:
    """(version id, etag) of the key's current object; (None, None) when it is gone."""
    from botocore.exceptions import ClientError

    try:
        head = client.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        # Without s3:ListBucket (the role has none), a missing key answers 403, not 404.
        if exc.response.get("Error", {}).get("Code") in ("403", "404", "NoSuchKey", "NotFound"):
            return None, None
        raise
    return head.get("VersionId"), str(head.get("ETag", "")).strip('"') or None


def superseded_by(client: Any, item: S3Input, source_info: dict[str, Any]) -> str | None:
    """The newer version of the input key, when this object version is no longer current.
    Results are per key, so only the current version may write them: a late retry of an
    older upload must never replace the results of a newer one."""
    ours_version = source_info.get("version_id") or item.version_id
    ours_etag = source_info.get("etag") or item.etag
    version, etag = current_version(client, item.bucket, item.key)
    if version is None and etag is None:
        return None  # deleted: nobody newer to protect
    if ours_version and version and version != "null":
        return None if version == ours_version else version
    return None if etag == ours_etag else f"etag {etag}"


def write_report(client: Any, item: S3Input, report_key: str, report: dict[str, Any], results_prefix: str) -> str:
    """The plain report key when this version is current, else a per-version key under
    `<results>/.superseded/` (the newer version's report stays where it is)."""
    newer = superseded_by(client, item, report.get("input") or {})
    key = report_key
    if newer is not None:
        prefix = results_prefix if results_prefix.endswith("/") else results_prefix + "/"
        version = (report.get("input") or {}).get("version_id") or item.version_id or item.etag or "null"
        relative = report_key[len(prefix) :]
        key = f"{prefix}.superseded/{relative}/{version}.json"
        report["superseded_by"] = newer
    client.put_object(
        Bucket=item.bucket, Key=key, Body=json.dumps(report, indent=1).encode(), ContentType="application/json"
    )
    return key


class HeadCapture:
    """A sink wrapper keeping the first `limit` bytes written, for the job page's summary
    (computed here once, so the function needs no read access to results)."""

    def __init__(self, inner: Sink, limit: int) -> None:
        self.inner = inner
        self.limit = limit
        self.head = bytearray()

    def write(self, data: bytes) -> None:
        if len(self.head) < self.limit:
            self.head += data[: self.limit - len(self.head)]
        self.inner.write(data)

    def commit(self) -> None:
        self.inner.commit()

    def abort(self) -> None:
        self.inner.abort()


def write_summary(client: Any, bucket: str, head: bytes, report_key: str) -> None:
    """The job page's summary of the predictions, cached beside the report
    (`.summary.json`), so status polls do not re-parse up to 20 MB each time."""
    from mlserve.contract import SUMMARY_SUFFIX
    from mlserve.uploads.summaries import SUMMARY_MAX_BYTES, summarize

    try:
        summary = summarize(bytes(head[:SUMMARY_MAX_BYTES]), partial=len(head) > SUMMARY_MAX_BYTES)
        key = report_key.removesuffix(REPORT_SUFFIX) + SUMMARY_SUFFIX
        client.put_object(Bucket=bucket, Key=key, Body=json.dumps(summary).encode(), ContentType="application/json")
    except Exception:  # the page computes it itself when the cache is missing
        logger.exception("caching the summary beside %s failed", report_key)


def process_s3_object(
    client: Any,
    item: S3Input,
    live: LiveModel,
    *,
    results_prefix: str = RESULTS_PREFIX,
    options: BatchOptions | None = None,
    deadline: float | None = None,
    time_left: Callable[[], float] | None = None,
    request_id: str | None = None,
    input_prefix: str = INCOMING_PREFIX,
    marker_suffix: str = "",
    fanout: Callable[[S3Input], dict[str, Any] | None] | None = None,
) -> dict[str, Any]:
    """Score one uploaded object; returns the report (or a `skipped`/`duplicate`/
    `replay_refused`/`fanned_out` note). `time_left()` is the invocation's remaining seconds.

    ``input_prefix``: where inputs may live (scheduled runs score their own prefix).
    ``marker_suffix``: appended to the idempotency marker's name, so a scheduled run can
    score an object version again for a NEW model version (``@model-<v>``) while replays
    for the same model version stay exactly once.
    ``fanout(item)`` (mlserve.batch.fanout.FanoutStarter) hands a big file to the Step Functions
    fan-out and returns its note, or None to score it here."""
    options = options or BatchOptions.from_env()
    key = item.key
    if not key.startswith(input_prefix) or not key.endswith(SUFFIXES) or key.startswith(results_prefix):
        # Defence in depth: the notification filter already keeps results/ out.
        logger.warning("not scoring s3://%s/%s: not under %s with %s", item.bucket, key, input_prefix, SUFFIXES)
        return {"status": "skipped", "key": key}
    predictions_key, report_key, relative = result_keys(key, results_prefix)
    object_version = item.version_id or item.etag or "null"
    if not claim_job(client, item.bucket, results_prefix, key, object_version):
        logger.warning(
            "refusing s3://%s/%s version %s: its job id already scored another upload (replayed upload?)",
            item.bucket,
            key,
            object_version,
        )
        return {"status": "replay_refused", "key": key, "version": object_version}
    version = object_version + marker_suffix
    markers = S3Markers(client, item.bucket, request_id)
    marker = marker_key(relative, results_prefix, version)
    if markers.claim(marker, deadline or time.time() + 900) is None:
        logger.info("duplicate event for s3://%s/%s version %s: already scored", item.bucket, key, version)
        return {"status": "duplicate", "key": key, "version": version, "report": report_key}
    if fanout is not None:
        handed_over = fanout(item)
        if handed_over is not None:
            # The execution (one per object version, by name) owns the file now and writes
            # its report; the marker makes a repeated event a duplicate.
            markers.finish(marker, "succeeded", report_key, final=True)
            return handed_over

    source_info: dict[str, Any] = {"bucket": item.bucket, "key": key, "version_id": item.version_id, "etag": item.etag}
    started = time.time()
    model: LoadedModel | None = None
    error: Exception | None = None
    sink: HeadCapture | None = None

    def guard() -> None:
        newer = superseded_by(client, item, source_info)
        if newer is not None:
            raise Superseded(f"a newer version ({newer}) of {key} was uploaded; its results stand", code="superseded")

    try:
        model = live.get()  # ONE version for the whole file, whatever lands mid-file
        get_kwargs = {"VersionId": item.version_id} if item.version_id else {}
        obj = client.get_object(Bucket=item.bucket, Key=key, **get_kwargs)
        source_info["etag"] = str(obj.get("ETag", "")).strip('"') or item.etag
        source_info["version_id"] = obj.get("VersionId") or item.version_id
        source_info["size"] = obj.get("ContentLength")
        # Overlap the S3 read and part uploads with scoring (mlserve.batch.overlap); same bytes out.
        sink = HeadCapture(
            BackgroundPartsSink(client, item.bucket, predictions_key, part_bytes=options.part_bytes),
            SUMMARY_CAPTURE_BYTES if job_id_of(key) else 0,  # only web-page jobs show a summary
        )
        body = ReadAhead(obj["Body"])
        try:
            report, error = score_to_sink(
                body, sink, model, options, source_info, predictions_key, time_left=time_left, before_commit=guard
            )
        finally:
            body.close()
    except Exception as exc:
        logger.exception("batch job for %s failed before scoring", key)
        report, error = (
            build_report(
                status="failed", source=source_info, started=started, ended=time.time(), model=model, error=exc
            ),
            exc,
        )
    written = write_report(client, item, report_key, report, results_prefix)
    if report["status"] == "succeeded" and written == report_key and sink is not None and job_id_of(key):
        write_summary(client, item.bucket, bytes(sink.head), report_key)
    markers.finish(marker, report["status"], written, final=report.get("retryable") is False)
    if model is not None:  # EMF, model_name/model_version dimensions; flushed by the handler
        record_rows_scored(model, report["rows_scored"], report["rows_rejected"])
    logger.info(
        "batch %s: %s, %s rows scored, %s rejected (model %s v%s)",
        key,
        report["status"],
        report["rows_scored"],
        report["rows_rejected"],
        model.identity.name if model else None,
        model.identity.version if model else None,
    )
    if error is not None:
        raise error
    return report


def score_local(
    input_path: Any,
    output_path: Any,
    live: LiveModel,
    options: BatchOptions,
) -> dict[str, Any]:
    """The CLI path: the same scorer over local files; the output appears only when complete,
    and the report is written next to it (`x.predictions.csv` -> `x.report.json`)."""
    from pathlib import Path

    from mlserve.batch.output import LocalFileSink

    input_path, output_path = Path(input_path), Path(output_path)
    source_info = {"path": str(input_path), "size": input_path.stat().st_size}
    model = live.get()
    sink = WriteBehind(LocalFileSink(output_path))  # file writes overlap the next chunk's parsing
    with open(input_path, "rb") as handle:
        report, _ = score_to_sink(handle, sink, model, options, source_info, str(output_path))
    stem = output_path.name.removesuffix(PREDICTIONS_SUFFIX).removesuffix(".csv")
    report_path = output_path.with_name(stem + REPORT_SUFFIX)
    report_path.write_text(json.dumps(report, indent=1))
    report["report"] = str(report_path)
    return report
