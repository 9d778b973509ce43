"""A scheduled batch run: score every CSV under a prefix that has no results yet for the
live model version, with the batch job's own code (same predictions and report files, same
S3 conditional-write markers), then write a run summary
``<results>/_runs/<schedule>/<timestamp>.json``.

"No results for the live version" means: no report beside the predictions, or a report
that is ``failed``, names another object version, or another model version. The last case
re-scores the file for the new version with the marker ``<object version>@model-<v>``, so
the first scoring's ``done`` marker does not block it and a repeated run still scores each
(object version, model version) once.

Bounded: at most ``max_files`` files are scored per run, and no file is started when less
than ``stop_margin_seconds`` remain before the Lambda deadline. What was left is counted
(and the first keys listed) in the summary, with the reason; the next run picks it up.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mlserve.batch.job import (
    SUFFIXES,
    ClaimHeld,
    S3Input,
    process_s3_object,
    result_keys,
)
from mlserve.contract import INCOMING_PREFIX, RESULTS_PREFIX, SCHEDULE_RUNS_DIR, Env
from mlserve.errors import MlserveError
from mlserve.scoring import LoadedModel

logger = logging.getLogger(__name__)

RUNS_DIR = SCHEDULE_RUNS_DIR
SCHEDULE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
LISTED_KEYS = 50  # keys listed by name in a summary section; the counts are always complete
DONE_STATUSES = ("succeeded", "rejected")


class ScheduledRunFailed(MlserveError):
    """Some files failed (the summary lists them): raised after the summary is written, so
    Lambda's retry runs the schedule again, which scores only what is still missing."""


@dataclass(frozen=True)
class ScheduleRequest:
    name: str
    input_prefix: str


@dataclass(frozen=True)
class ScheduleLimits:
    max_files: int = 100
    stop_margin_seconds: float = 60.0


def parse_request(event: dict[str, Any], allowed_prefixes: dict[str, str]) -> ScheduleRequest:
    """The Scheduler target's input ``{"schedule": NAME}`` -> the configured schedule.
    The prefix comes from the deployment's configuration, never from the event alone: an
    event naming another prefix is refused (it would fail on IAM anyway)."""
    name = event.get("schedule") if isinstance(event, dict) else None
    if not isinstance(name, str) or not SCHEDULE_NAME.match(name):
        raise MlserveError(f"event has no valid 'schedule' name: {name!r}", code="bad_schedule_event")
    if name not in allowed_prefixes:
        raise MlserveError(
            f"schedule {name!r} is not configured here (known: {sorted(allowed_prefixes)})", code="unknown_schedule"
        )
    prefix = allowed_prefixes[name]
    given = event.get("input_prefix")
    if given is not None and given != prefix:
        raise MlserveError(f"schedule {name!r} scores {prefix!r}, not {given!r}", code="bad_schedule_event")
    return ScheduleRequest(name, prefix)


def list_inputs(client: Any, bucket: str, prefix: str, results_prefix: str) -> list[dict[str, Any]]:
    """CSV/CSV.gz objects under the prefix, oldest first (then by key)."""
    found = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents") or []:
            key = obj["Key"]
            if key.endswith(SUFFIXES) and not key.startswith(results_prefix):
                found.append(obj)
    found.sort(key=lambda obj: (obj["LastModified"], obj["Key"]))
    return found


def _read_json(client: Any, bucket: str, key: str) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
            return None
        raise
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def freshness(report: dict[str, Any] | None, version_id: str | None, etag: str | None, model_version: str) -> str:
    """``up_to_date`` | ``missing`` | ``failed`` | ``new_object`` | ``other_model`` (the report is for
    another model version of this very object version)."""
    if report is None:
        return "missing"
    source = report.get("input") or {}
    same_object = (version_id and source.get("version_id") == version_id) or (
        not version_id and etag and source.get("etag") == etag
    )
    if not same_object:
        return "new_object"
    if report.get("status") not in DONE_STATUSES:
        return "failed"
    if str((report.get("model") or {}).get("version")) != model_version:
        return "other_model"
    return "up_to_date"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


@dataclass
class RunSummary:
    schedule: str
    bucket: str
    input_prefix: str
    started: float
    max_files: int
    model: dict[str, Any] | None = None
    files_listed: int = 0
    up_to_date: list[str] = field(default_factory=list)
    scored: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    not_started: list[str] = field(default_factory=list)
    stop_reason: str | None = None
    error: dict[str, str] | None = None

    def to_dict(self, ended: float) -> dict[str, Any]:
        if self.error is not None:
            status = "failed"
        elif self.failed:
            status = "partial"
        elif self.not_started:
            status = "stopped_early"
        else:
            status = "succeeded"
        return {
            "status": status,
            "schedule": self.schedule,
            "bucket": self.bucket,
            "input_prefix": self.input_prefix,
            "model": self.model,
            "started_at": _iso(self.started),
            "ended_at": _iso(ended),
            "seconds": round(max(ended - self.started, 0.0), 3),
            "max_files": self.max_files,
            "files_listed": self.files_listed,
            "files_up_to_date": len(self.up_to_date),
            "files_scored": len(self.scored),
            "files_failed": len(self.failed),
            "files_not_started": len(self.not_started),
            "stopped_early": bool(self.not_started),
            "stop_reason": self.stop_reason,
            "rows_scored": sum(int(item.get("rows_scored") or 0) for item in self.scored),
            "rows_rejected": sum(int(item.get("rows_rejected") or 0) for item in self.scored),
            "scored": self.scored[:LISTED_KEYS],
            "failed": self.failed[:LISTED_KEYS],
            "not_started": self.not_started[:LISTED_KEYS],
            "error": self.error,
        }


def summary_key(results_prefix: str, schedule: str, started: float) -> str:
    stamp = datetime.fromtimestamp(started, UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    prefix = results_prefix if results_prefix.endswith("/") else results_prefix + "/"
    return f"{prefix}{RUNS_DIR}/{schedule}/{stamp}.json"


def run_schedule(
    client: Any,
    bucket: str,
    request: ScheduleRequest,
    live: Any,
    *,
    results_prefix: str = RESULTS_PREFIX,
    options: Any = None,
    limits: ScheduleLimits | None = None,
    deadline: float | None = None,
    clock: Any = time.time,
) -> dict[str, Any]:
    """One run of a schedule; returns the summary (also written to S3). Raises
    ScheduledRunFailed (after writing it) when a file failed or no model could be loaded."""
    limits = limits or ScheduleLimits()
    started = clock()
    deadline = deadline if deadline is not None else started + 900
    summary = RunSummary(request.name, bucket, request.input_prefix, started, limits.max_files)
    try:
        model: LoadedModel = live.get()
        summary.model = model.identity.to_dict()
        _score_missing(client, bucket, request, live, model, summary, results_prefix, options, limits, deadline, clock)
    except Exception as exc:  # the summary says why; the raise below makes Lambda retry
        code = exc.code if isinstance(exc, MlserveError) else type(exc).__name__
        summary.error = {"code": code, "message": str(exc)}
        logger.exception("scheduled run %s failed", request.name)
    ended = clock()
    report = summary.to_dict(ended)
    key = summary_key(results_prefix, request.name, started)
    client.put_object(
        Bucket=bucket, Key=key, Body=json.dumps(report, indent=1).encode(), ContentType="application/json"
    )
    report["summary_key"] = key
    logger.info(
        "scheduled run %s: %s, %d listed, %d up to date, %d scored, %d failed, %d not started%s",
        request.name,
        report["status"],
        report["files_listed"],
        report["files_up_to_date"],
        report["files_scored"],
        report["files_failed"],
        report["files_not_started"],
        f" ({summary.stop_reason})" if summary.stop_reason else "",
    )
    if summary.error is not None or summary.failed:
        what = summary.error["message"] if summary.error else f"{len(summary.failed)} file(s) failed"
        raise ScheduledRunFailed(
            f"scheduled run {request.name} did not finish: {what} (summary s3://{bucket}/{key})",
            code="scheduled_run_failed",
        )
    return report


def _score_missing(
    client: Any,
    bucket: str,
    request: ScheduleRequest,
    live: Any,
    model: LoadedModel,
    summary: RunSummary,
    results_prefix: str,
    options: Any,
    limits: ScheduleLimits,
    deadline: float,
    clock: Any,
) -> None:
    inputs = list_inputs(client, bucket, request.input_prefix, results_prefix)
    summary.files_listed = len(inputs)
    model_version = model.identity.version
    attempted = 0
    for index, obj in enumerate(inputs):
        key = obj["Key"]
        if attempted >= limits.max_files:
            summary.stop_reason = f"max_files: {limits.max_files} files scored in this run"
        elif deadline - clock() < limits.stop_margin_seconds:
            summary.stop_reason = (
                f"deadline: less than {limits.stop_margin_seconds:.0f}s left before the function's timeout"
            )
        if summary.stop_reason is not None:
            summary.not_started = [o["Key"] for o in inputs[index:]]
            return
        head = client.head_object(Bucket=bucket, Key=key)
        version_id = head.get("VersionId")
        etag = str(head.get("ETag", "")).strip('"') or None
        _, report_key, _ = result_keys(key, results_prefix)
        state = freshness(_read_json(client, bucket, report_key), version_id, etag, model_version)
        if state == "up_to_date":
            summary.up_to_date.append(key)
            continue
        attempted += 1
        marker_suffix = f"@model-{model_version}" if state == "other_model" else ""
        item = S3Input(bucket=bucket, key=key, version_id=version_id, etag=etag, size=head.get("ContentLength"))
        try:
            report = process_s3_object(
                client,
                item,
                live,
                results_prefix=results_prefix,
                options=options,
                deadline=deadline,
                input_prefix=request.input_prefix,
                marker_suffix=marker_suffix,
            )
        except ClaimHeld as exc:
            summary.failed.append({"key": key, "error": {"code": exc.code, "message": exc.message}})
            continue
        except Exception as exc:
            code = exc.code if isinstance(exc, MlserveError) else type(exc).__name__
            summary.failed.append({"key": key, "error": {"code": code, "message": str(exc)}, "report": report_key})
            continue
        summary.scored.append(
            {
                "key": key,
                "status": report.get("status"),
                "reason": state,
                "rows_scored": report.get("rows_scored", 0),
                "rows_rejected": report.get("rows_rejected", 0),
                "model_version": (report.get("model") or {}).get("version"),
                "report": report_key if report.get("status") != "duplicate" else report.get("report"),
            }
        )


@dataclass
class ScheduledRuntime:
    """What a scheduled-batch container keeps: the batch runtime (settings, S3 client, live
    model, options), the bucket, the configured schedules and the limits."""

    batch: Any  # mlserve.batch.runtime.BatchRuntime
    bucket: str
    schedules: dict[str, str]
    limits: ScheduleLimits

    @classmethod
    def from_env(cls, s3_client: Any = None) -> ScheduledRuntime:
        import os

        from mlserve.batch.runtime import BatchRuntime
        from mlserve.config import env_number

        bucket = os.environ.get(Env.BATCH_BUCKET, "").strip()
        raw = os.environ.get(Env.SCHEDULES, "")
        try:
            schedules = json.loads(raw) if raw else None
        except ValueError:
            schedules = None
        if not bucket or not isinstance(schedules, dict) or not schedules:
            raise MlserveError(
                "MLSERVE_BATCH_BUCKET and MLSERVE_SCHEDULES (JSON {name: input_prefix}) are required",
                code="bad_config",
            )
        limits = ScheduleLimits(
            max_files=int(env_number(Env.SCHEDULE_MAX_FILES, 100, minimum=1)),
            stop_margin_seconds=env_number(Env.SCHEDULE_STOP_MARGIN_SECONDS, 60.0),
        )
        return cls(BatchRuntime.from_env(s3_client), bucket, {str(k): str(v) for k, v in schedules.items()}, limits)

    def handle_event(self, event: dict[str, Any], deadline: float | None = None) -> dict[str, Any]:
        request = parse_request(event, self.schedules)
        return run_schedule(
            self.batch.s3,
            self.bucket,
            request,
            self.batch.live,
            results_prefix=self.batch.settings.results_prefix,
            options=self.batch.options,
            limits=self.limits,
            deadline=deadline,
        )


__all__ = [
    "INCOMING_PREFIX",
    "ScheduleLimits",
    "ScheduleRequest",
    "ScheduledRunFailed",
    "parse_request",
    "run_schedule",
]
