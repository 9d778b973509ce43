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
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from mlserve.batch.core import BatchOptions, ScoreResult, score_stream
from mlserve.batch.output import S3MultipartSink, Sink
from mlserve.errors import InputError, MlserveError
from mlserve.live import LiveModel
from mlserve.observability import record_rows_scored
from mlserve.scoring import LoadedModel

logger = logging.getLogger(__name__)

INCOMING_PREFIX = "incoming/"
SUFFIXES = (".csv", ".csv.gz")
PREDICTIONS_SUFFIX = ".predictions.csv"
REPORT_SUFFIX = ".report.json"
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
    return f"{prefix}.markers/{relative}/{version}"


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
        message = error.message if isinstance(error, MlserveError) else str(error)
        report["error"] = {"code": code, "message": message}
    return report


def score_to_sink(
    source: Any, sink: Sink, model: LoadedModel, options: BatchOptions, source_info: dict[str, Any], predictions: str
) -> tuple[dict[str, Any], Exception | None]:
    """Score, then commit (or abort) the sink; return (report, exception to re-raise).

    An InputError rejects the file (report `rejected`, nothing to retry); anything else
    is `failed`. The sink is aborted in both cases, so no partial predictions exist.
    """
    started = time.time()
    try:
        result = score_stream(source, sink, model, options)
        sink.commit()
    except InputError as exc:
        _abort(sink)
        return build_report(
            status="rejected", source=source_info, started=started, ended=time.time(), model=model, error=exc
        ), None
    except Exception as exc:
        _abort(sink)
        logger.exception("scoring %s failed", source_info.get("key"))
        return build_report(
            status="failed", source=source_info, started=started, ended=time.time(), model=model, error=exc
        ), exc
    return build_report(
        status="succeeded",
        source=source_info,
        started=started,
        ended=time.time(),
        model=model,
        result=result,
        predictions=predictions,
    ), None


def _abort(sink: Sink) -> None:
    try:
        sink.abort()
    except Exception:  # the original error matters more; log and carry on
        logger.exception("aborting the output failed")


class S3Markers:
    """Claim/finish markers with S3 conditional writes (If-None-Match / If-Match)."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def _put(self, key: str, body: dict[str, Any], **condition: str) -> str:
        response = self.client.put_object(
            Bucket=self.bucket, Key=key, Body=json.dumps(body).encode(), ContentType="application/json", **condition
        )
        return str(response["ETag"])

    def claim(self, key: str, deadline: float) -> str | None:
        """Return the marker ETag when this invocation owns the work, None when the work
        is already done (a duplicate); raise ClaimHeld when another invocation has it."""
        from botocore.exceptions import ClientError

        body = {"status": "in_progress", "claimed_at": _iso(time.time()), "deadline": deadline}
        try:
            return self._put(key, body, IfNoneMatch="*")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise
        current = self.client.get_object(Bucket=self.bucket, Key=key)
        state = json.loads(current["Body"].read())
        if state.get("status") == "done":
            return None
        if state.get("status") == "in_progress" and time.time() < float(state.get("deadline", 0)) + STALE_SLACK_SECONDS:
            raise ClaimHeld(f"s3://{self.bucket}/{key} is being scored by another invocation", code="claim_held")
        # `failed`, or a holder that died past its deadline: take over, atomically, so two
        # retries cannot both win.
        try:
            return self._put(key, body, IfMatch=current["ETag"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise ClaimHeld(f"lost the race to take over s3://{self.bucket}/{key}", code="claim_held") from None
            raise

    def finish(self, key: str, status: str, report_key: str) -> None:
        done = "done" if status in ("succeeded", "rejected") else "failed"
        self._put(key, {"status": done, "report": report_key, "finished_at": _iso(time.time())})


def process_s3_object(
    client: Any,
    item: S3Input,
    live: LiveModel,
    *,
    results_prefix: str = "results/",
    options: BatchOptions | None = None,
    deadline: float | None = None,
    input_prefix: str = INCOMING_PREFIX,
    marker_suffix: str = "",
) -> dict[str, Any]:
    """Score one uploaded object; returns the report (or a `skipped`/`duplicate` note).

    ``input_prefix``: where inputs may live (scheduled runs score their own prefix).
    ``marker_suffix``: appended to the idempotency marker's name, so a scheduled run can
    score an object version again for a NEW model version (``@model-<v>``) while replays
    for the same model version stay exactly once."""
    options = options or BatchOptions.from_env()
    key = item.key
    if not key.startswith(input_prefix) or not key.endswith(SUFFIXES) or key.startswith(results_prefix):
        # Defence in depth: the notification filter already keeps results/ out.
        logger.warning("not scoring s3://%s/%s: not under %s with %s", item.bucket, key, input_prefix, SUFFIXES)
        return {"status": "skipped", "key": key}
    predictions_key, report_key, relative = result_keys(key, results_prefix)
    version = (item.version_id or item.etag or "null") + marker_suffix
    markers = S3Markers(client, item.bucket)
    marker = marker_key(relative, results_prefix, version)
    if markers.claim(marker, deadline or time.time() + 900) is None:
        logger.info("duplicate event for s3://%s/%s version %s: already scored", item.bucket, key, version)
        return {"status": "duplicate", "key": key, "version": version, "report": report_key}

    source_info: dict[str, Any] = {"bucket": item.bucket, "key": key, "version_id": item.version_id, "etag": item.etag}
    started = time.time()
    model: LoadedModel | None = None
    error: Exception | None = None
    try:
        model = live.get()  # ONE version for the whole file, whatever lands mid-file
        get_kwargs = {"VersionId": item.version_id} if item.version_id else {}
        obj = client.get_object(Bucket=item.bucket, Key=key, **get_kwargs)
        source_info["etag"] = str(obj.get("ETag", "")).strip('"') or item.etag
        source_info["version_id"] = obj.get("VersionId") or item.version_id
        source_info["size"] = obj.get("ContentLength")
        sink = S3MultipartSink(client, item.bucket, predictions_key, part_bytes=options.part_bytes)
        report, error = score_to_sink(obj["Body"], sink, model, options, source_info, predictions_key)
    except Exception as exc:
        logger.exception("batch job for %s failed before scoring", key)
        report, error = (
            build_report(
                status="failed", source=source_info, started=started, ended=time.time(), model=model, error=exc
            ),
            exc,
        )
    client.put_object(
        Bucket=item.bucket, Key=report_key, Body=json.dumps(report, indent=1).encode(), ContentType="application/json"
    )
    markers.finish(marker, report["status"], report_key)
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
    sink = LocalFileSink(output_path)
    with open(input_path, "rb") as handle:
        report, _ = score_to_sink(handle, sink, model, options, source_info, str(output_path))
    stem = output_path.name.removesuffix(PREDICTIONS_SUFFIX).removesuffix(".csv")
    report_path = output_path.with_name(stem + REPORT_SUFFIX)
    report_path.write_text(json.dumps(report, indent=1))
    report["report"] = str(report_path)
    return report
