"""Big files on Step Functions Distributed Map: plan -> one scorer per range -> merge.

The state machine (``infra/fanout.py``) runs these steps; ``lambda_batch/fanout.py`` holds
their thin handlers. Everything a step needs travels through S3, under

    <results>/.fanout/<path>/<version>/job.json          input, pinned model pointer, header
                                        manifest.json     [{index, start, end, lines_before}]
                                        parts/<i>.csv     range i's scored lines
                                        parts/<i>.json    range i's report (its own counts)

- **plan** pins the live model version (its pointer, checksums included, goes into
  job.json: every range loads exactly that version, whatever is promoted meanwhile), scans
  the input once for record boundaries (``mlserve.batch.ranges``) and writes the manifest
  that the Distributed Map's S3 item reader reads.
- **range** reads ``header + file[start:end]`` (two ranged GETs of the pinned object
  version) and runs the ordinary ``score_stream`` over it into its part; range 0's part
  starts with the output header. Rejected rows get line numbers of the whole file here
  (``lines_before``); record numbers are shifted at merge (they need the rows before).
- **merge** refuses to produce anything unless every range reported ``succeeded``, then
  assembles ``results/<path>.predictions.csv`` with multipart ``UploadPartCopy`` (no
  re-download; see ``assemble_parts`` for parts under 5 MiB) and writes one report summing
  the ranges. Otherwise it writes a ``failed`` (or ``rejected``) report naming the ranges,
  and no predictions object appears.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from mlserve.batch.core import BatchOptions, ScoreResult, score_stream
from mlserve.batch.job import (
    S3Input,
    Superseded,
    build_report,
    result_keys,
    superseded_by,
    write_report,
    write_summary,
)
from mlserve.batch.limits import LimitExceeded
from mlserve.batch.output import MIN_PART_BYTES, Sink
from mlserve.batch.overlap import BackgroundPartsSink, ReadAhead
from mlserve.batch.ranges import ByteRange, plan_ranges
from mlserve.contract import Env
from mlserve.errors import InputError, MlserveError, ModelUnavailableError
from mlserve.scoring import LoadedModel

logger = logging.getLogger(__name__)

DEFAULT_THRESHOLD_BYTES = 256 * 1024 * 1024
DEFAULT_RANGE_BYTES = 64 * 1024 * 1024
# Ranges at least this big make every scored part a whole multipart part (>= 5 MiB) unless
# a range rejects most of its rows; assemble_parts handles that case too.
MIN_RANGE_BYTES = 8 * 1024 * 1024
COPY_PART_MAX_BYTES = 5 * 1024**3  # S3's UploadPartCopy limit per part


class RangeFailed(MlserveError):
    """A range did not succeed; its report (parts/<i>.json) says why."""


def job_prefix(results_prefix: str, relative: str, version: str) -> str:
    prefix = results_prefix if results_prefix.endswith("/") else results_prefix + "/"
    return f"{prefix}.fanout/{relative}/{version}/"


def execution_name(bucket: str, key: str, version: str) -> str:
    """Deterministic (at most 80 chars, [0-9a-zA-Z_-]): one execution per object version, so
    a repeated S3 event cannot start a second one (StartExecution: ExecutionAlreadyExists)."""
    return "mlserve-" + hashlib.sha256(f"{bucket}\0{key}\0{version}".encode()).hexdigest()[:64]


def _read_json(client: Any, bucket: str, key: str) -> Any:
    return json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())


def _read_json_or_none(client: Any, bucket: str, key: str) -> Any:
    from botocore.exceptions import ClientError

    try:
        return _read_json(client, bucket, key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise


def _put_json(client: Any, bucket: str, key: str, body: Any) -> None:
    client.put_object(Bucket=bucket, Key=key, Body=json.dumps(body).encode(), ContentType="application/json")


def part_key(prefix: str, index: int) -> str:
    return f"{prefix}parts/{index:05d}.csv"


def part_report_key(prefix: str, index: int) -> str:
    return f"{prefix}parts/{index:05d}.json"


class _ObjectReader:
    """`.read(n)` over an S3 object's byte range (GetObject Range). An endpoint that ignores
    Range (MiniStack 1.5.33 does when VersionId is given too) answers with the whole object
    and no Content-Range: then the bytes before `start` are skipped and reading stops at
    `end` here, so the range is right either way."""

    def __init__(self, client: Any, bucket: str, key: str, version_id: str | None, start: int, end: int) -> None:
        self._body: Any = None
        self._left = max(end - start, 0)
        if end > start:
            kwargs = {"VersionId": version_id} if version_id else {}
            response = client.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{end - 1}", **kwargs)
            self._body = response["Body"]
            if not response.get("ContentRange") and start > 0:
                skip = start
                while skip > 0:
                    skipped = len(self._body.read(min(skip, 8 * 1024 * 1024)))
                    if not skipped:
                        break
                    skip -= skipped

    def read(self, n: int = -1) -> bytes:
        if self._body is None or self._left <= 0:
            return b""
        n = self._left if n is None or n < 0 else min(n, self._left)
        data = bytes(self._body.read(n))
        self._left -= len(data)
        return data


class HeaderThenRange:
    """The header's bytes, then a range's bytes: what a range scorer reads as its file."""

    def __init__(self, header: bytes, body: Any) -> None:
        self._header = header
        self._body = body

    def read(self, n: int = -1) -> bytes:
        if self._header:
            if n is None or n < 0:
                data, self._header = self._header + bytes(self._body.read()), b""
                return data
            data, self._header = self._header[:n], self._header[n:]
            return data
        return bytes(self._body.read(n))


class DropHeaderLine:
    """A sink that drops score_stream's first write - the output header line - so only
    range 0's part carries it (score_stream writes the header in exactly one call first;
    tests/unit/batch/test_fanout.py holds the merged output byte-identical to one run)."""

    def __init__(self, sink: Sink) -> None:
        self._sink = sink
        self._dropped = False

    def write(self, data: bytes) -> None:
        if not self._dropped:
            self._dropped = True
            return
        self._sink.write(data)

    def commit(self) -> None:
        self._sink.commit()

    def abort(self) -> None:
        self._sink.abort()


def local_to_file_lines(rejected_rows: list[dict[str, Any]], lines_before: int, header_lines: int) -> None:
    """A range scorer numbers lines as if its text (header + range) were the file; shift them
    to the whole file's: the range's first record is on line lines_before + 1."""
    for row in rejected_rows:
        row["line"] = int(row["line"]) + lines_before - header_lines


def range_result(index: int, status: str, result: ScoreResult, error: Exception | None = None) -> dict[str, Any]:
    report: dict[str, Any] = {
        "index": index,
        "status": status,
        "rows_read": result.rows_read,
        "rows_scored": result.rows_scored,
        "rows_rejected": result.rows_rejected,
        "rejected_by_reason": dict(result.rejected_by_reason),
        "rejected_rows": result.rejected_rows,
        "output_columns": result.output_columns,
        "bytes_read": result.bytes_read,
    }
    if error is not None:
        code = error.code if isinstance(error, MlserveError) else type(error).__name__
        message = error.message if isinstance(error, MlserveError) else str(error)
        report["error"] = {"code": code, "message": message}
    return report


def score_range_into(
    source: Any,
    sink: Sink,
    model: LoadedModel,
    options: BatchOptions,
    item: ByteRange,
    header_lines: int,
    time_left: Callable[[], float] | None = None,
) -> dict[str, Any]:
    """Score one range (`source` = header + range bytes) into `sink`; commit it when the range
    succeeded, abort it otherwise. Returns the range's report (lines of the whole file)."""
    result = ScoreResult()
    target: Sink = sink if item.index == 0 else DropHeaderLine(sink)
    status = "succeeded"
    error: Exception | None = None
    try:
        score_stream(source, target, model, options, result=result, time_left=time_left)
    except LimitExceeded as exc:
        status, error = "failed", exc
    except InputError as exc:
        if exc.code == "no_rows" and result.output_columns:
            pass  # a range of blank lines only; the whole file is judged at merge
        else:
            status, error = "rejected", exc
    except Exception as exc:
        logger.exception("range %s failed", item.index)
        status, error = "failed", exc
    try:
        if status == "succeeded":
            target.commit()
        else:
            target.abort()
    except Exception as exc:
        logger.exception("finishing range %s's part failed", item.index)
        status, error = "failed", exc
    local_to_file_lines(result.rejected_rows, item.lines_before, header_lines)
    return range_result(item.index, status, result, error)


# --- plan -------------------------------------------------------------------------------


def plan_file(
    client: Any,
    request: dict[str, Any],
    pointer: dict[str, Any] | None,
    *,
    results_prefix: str,
    range_bytes: int = DEFAULT_RANGE_BYTES,
) -> dict[str, Any]:
    """Pin the model version, scan the input for record boundaries, write job.json and the
    manifest. `request` is the execution input: bucket, key, version_id, etag, size."""
    if pointer is None:
        raise ModelUnavailableError("no live model: nothing to pin the file's version to")
    bucket, key = request["bucket"], request["key"]
    version_id = request.get("version_id")
    kwargs = {"VersionId": version_id} if version_id else {}
    started = time.time()
    obj = client.get_object(Bucket=bucket, Key=key, **kwargs)
    plan = plan_ranges(obj["Body"], max(range_bytes, 1))
    etag = str(obj.get("ETag", "")).strip('"') or request.get("etag")
    version = version_id or etag or "null"
    _, _, relative = result_keys(key, results_prefix)
    prefix = job_prefix(results_prefix, relative, version)
    manifest_key = f"{prefix}manifest.json"
    job_key = f"{prefix}job.json"
    job = {
        "input": {
            "bucket": bucket,
            "key": key,
            "version_id": obj.get("VersionId") or version_id,
            "etag": etag,
            "size": plan.size,
        },
        "pointer": pointer,
        "model": {"name": pointer["name"], "version": str(pointer["version"]), "run_id": pointer.get("run_id")},
        "header_end": plan.header_end,
        "header_lines": plan.header_lines,
        "ranges": len(plan.ranges),
        "range_bytes": range_bytes,
        "prefix": prefix,
        "manifest": manifest_key,
        "started": started,
    }
    _put_json(client, bucket, manifest_key, [r.to_dict() for r in plan.ranges])
    _put_json(client, bucket, job_key, job)
    logger.info(
        "planned %s: %s ranges over %s bytes (model version %s)", key, len(plan.ranges), plan.size, pointer["version"]
    )
    return {"job_key": job_key, "manifest_key": manifest_key, "ranges": len(plan.ranges)}


# --- range ------------------------------------------------------------------------------


def score_range(
    client: Any,
    bucket: str,
    job_key: str,
    item: dict[str, Any],
    load_model: Callable[[dict[str, Any]], LoadedModel],
    options: BatchOptions,
    *,
    time_left: Callable[[], float] | None = None,
) -> dict[str, Any]:
    """One Distributed Map item: score the range into parts/<i>.csv, write parts/<i>.json;
    raise RangeFailed (failing the map, hence the file) when it did not succeed."""
    job = _read_json(client, bucket, job_key)
    byte_range = ByteRange.from_dict(item)
    source_info = job["input"]
    prefix = job["prefix"]
    started = time.time()
    try:
        model = load_model(job["pointer"])
        if str(model.identity.version) != job["model"]["version"]:  # never score with another version
            raise ModelUnavailableError(
                f"range {byte_range.index} loaded version {model.identity.version}, the file is pinned to "
                f"{job['model']['version']}"
            )
        header = _ObjectReader(
            client, bucket, source_info["key"], source_info.get("version_id"), 0, int(job["header_end"])
        ).read()
        body = ReadAhead(
            _ObjectReader(
                client, bucket, source_info["key"], source_info.get("version_id"), byte_range.start, byte_range.end
            )
        )
        sink = BackgroundPartsSink(client, bucket, part_key(prefix, byte_range.index), part_bytes=options.part_bytes)
        try:
            report = score_range_into(
                HeaderThenRange(header, body), sink, model, options, byte_range, int(job["header_lines"]), time_left
            )
        finally:
            body.close()
    except Exception as exc:
        logger.exception("range %s of %s failed before scoring", byte_range.index, source_info["key"])
        report = range_result(byte_range.index, "failed", ScoreResult(), exc)
    report.update({"start": byte_range.start, "end": byte_range.end, "seconds": round(time.time() - started, 3)})
    _put_json(client, bucket, part_report_key(prefix, byte_range.index), report)
    if report["status"] != "succeeded":
        error = report.get("error") or {}
        raise RangeFailed(
            f"range {byte_range.index} (bytes {byte_range.start}-{byte_range.end}) {report['status']}: "
            f"{error.get('code')}: {error.get('message')}",
            code="range_failed",
        )
    return {"index": byte_range.index, "status": report["status"], "rows_read": report["rows_read"]}


# --- merge ------------------------------------------------------------------------------


def merge_reports(reports: list[dict[str, Any]], max_listed: int) -> tuple[ScoreResult, list[str]]:
    """Sum range reports (in range order) into one result; record numbers become numbers in
    the whole file (each range counted its own from 1)."""
    total = ScoreResult()
    reasons: Counter[str] = Counter()
    output_columns: list[str] = []
    for report in reports:
        offset = total.rows_read
        for row in report.get("rejected_rows") or []:
            if len(total.rejected_rows) < max_listed:
                total.rejected_rows.append({**row, "record": int(row["record"]) + offset})
        total.rows_read += int(report["rows_read"])
        total.rows_scored += int(report["rows_scored"])
        total.rows_rejected += int(report["rows_rejected"])
        total.bytes_read += int(report.get("bytes_read") or 0)
        reasons.update(report.get("rejected_by_reason") or {})
        output_columns = output_columns or list(report.get("output_columns") or [])
    total.rejected_by_reason = reasons
    total.output_columns = output_columns
    return total, output_columns


def merged_report(
    status: str,
    source: dict[str, Any],
    started: float,
    total: ScoreResult,
    error: MlserveError | None,
    predictions: str,
) -> dict[str, Any]:
    """The report of a file scored in ranges: the merged counts and the predictions only
    when it succeeded (no model: the ranges loaded it)."""
    succeeded = status == "succeeded"
    return build_report(
        status=status,
        source=source,
        started=started,
        ended=time.time(),
        model=None,
        result=total if succeeded else None,
        error=error,
        predictions=predictions if succeeded else None,
    )


def assemble_parts(
    client: Any,
    bucket: str,
    key: str,
    parts: list[tuple[str, int]],
    *,
    min_part_bytes: int = MIN_PART_BYTES,
    content_type: str = "text/csv; charset=utf-8",
    before_commit: Callable[[], None] | None = None,
) -> int:
    """Concatenate the part objects into `key` with one multipart upload; returns its parts.

    Every part but the last must be >= 5 MiB: a part object that big (the normal case: ranges
    are >= 8 MiB of input and a part holds the input bytes plus predictions) is copied
    server-side with UploadPartCopy, never downloaded. A smaller one (a range that rejected
    most of its rows) is downloaded - it is under 5 MiB - and carried in a buffer that is
    topped up with the head of the next object (a ranged GET of at most 5 MiB) and uploaded
    once it reaches 5 MiB; the rest of that next object is copied with CopySourceRange. So at
    most ~10 MiB is ever re-downloaded per small part, and only for small parts. Empty parts
    (every row of a range rejected) are skipped. Aborted on any error: nothing appears.
    """
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=key, ContentType=content_type)["UploadId"]
    done: list[dict[str, Any]] = []
    pending = bytearray()

    def upload(data: bytes) -> None:
        response = client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=len(done) + 1, Body=data)
        done.append({"PartNumber": len(done) + 1, "ETag": response["ETag"]})

    def copy(source: str, start: int, end: int) -> None:
        # UploadPartCopy copies at most 5 GiB per part: a bigger object goes in equal pieces
        # (each >= 2.5 GiB, far above the 5 MiB minimum).
        pieces = -(-(end - start) // COPY_PART_MAX_BYTES)
        step = -(-(end - start) // pieces)
        for piece_start in range(start, end, step):
            piece_end = min(end, piece_start + step)
            response = client.upload_part_copy(
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=len(done) + 1,
                CopySource={"Bucket": bucket, "Key": source},
                CopySourceRange=f"bytes={piece_start}-{piece_end - 1}",
            )
            done.append({"PartNumber": len(done) + 1, "ETag": response["CopyPartResult"]["ETag"]})

    def read(source: str, start: int, end: int) -> bytes:
        return bytes(client.get_object(Bucket=bucket, Key=source, Range=f"bytes={start}-{end - 1}")["Body"].read())

    try:
        nonempty = [(source, size) for source, size in parts if size > 0]
        for position, (source, size) in enumerate(nonempty):
            last = position == len(nonempty) - 1
            if not pending:
                if size >= min_part_bytes or last:
                    copy(source, 0, size)
                else:
                    pending += read(source, 0, size)
                continue
            need = min_part_bytes - len(pending)
            if size - need >= min_part_bytes:
                pending += read(source, 0, need)
                upload(bytes(pending))
                pending.clear()
                copy(source, need, size)
            else:
                pending += read(source, 0, size)
                if len(pending) >= min_part_bytes:
                    upload(bytes(pending))
                    pending.clear()
        if pending or not done:
            upload(bytes(pending))
        if before_commit is not None:
            before_commit()
        client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": done})
    except BaseException:
        try:
            client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        except Exception:
            logger.exception("aborting the merge upload of %s failed", key)
        raise
    return len(done)


def _model_identity(job: dict[str, Any] | None) -> dict[str, Any] | None:
    return dict(job["model"]) if job else None


def _finish(
    client: Any,
    job: dict[str, Any] | None,
    source: dict[str, Any],
    report: dict[str, Any],
    results_prefix: str,
    execution: str | None,
) -> dict[str, Any]:
    report["model"] = _model_identity(job)
    report["fanout"] = {
        "ranges": job["ranges"] if job else 0,
        "range_bytes": job["range_bytes"] if job else None,
        "execution": execution,
    }
    item = S3Input(source["bucket"], source["key"], source.get("version_id"), source.get("etag"), source.get("size"))
    _, report_key, _ = result_keys(source["key"], results_prefix)
    written = write_report(client, item, report_key, report, results_prefix)
    if report["status"] == "succeeded" and written == report_key and report.get("predictions"):
        write_summary(client, source["bucket"], report["predictions"], report_key)
    logger.info(
        "fan-out %s: %s, %s rows scored, %s rejected",
        source["key"],
        report["status"],
        report["rows_scored"],
        report["rows_rejected"],
    )
    return {"status": report["status"], "report": written, "rows_scored": report["rows_scored"]}


def _failure_report(
    job: dict[str, Any] | None,
    source: dict[str, Any],
    reports: list[dict[str, Any] | None],
    manifest: list[dict[str, Any]],
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`failed` naming every range that did not succeed (a range with no report never
    finished); `rejected` when the ranges rejected the file as a whole (e.g. its header)."""
    bad: list[dict[str, Any]] = []
    for item, report in zip(manifest, reports, strict=True):
        if report is None:
            bad.append({**item, "status": "not_finished", "error": None})
        elif report.get("status") != "succeeded":
            bad.append({**item, "status": report["status"], "error": report.get("error")})
    started = float(job["started"]) if job else time.time()
    rejected = bool(bad) and all(b["status"] == "rejected" for b in bad)
    if rejected:
        first = bad[0]["error"] or {}
        exc: MlserveError = InputError(str(first.get("message")), code=str(first.get("code")))
    elif bad:
        named = "; ".join(
            f"range {b['index']} (bytes {b['start']}-{b['end']}, from line {b['lines_before'] + 1}) {b['status']}"
            + (f": {b['error'].get('code')}: {b['error'].get('message')}" if b["error"] else "")
            for b in bad[:10]
        )
        exc = MlserveError(f"{len(bad)} of {len(manifest)} ranges did not succeed: {named}", code="range_failed")
    else:
        detail = error or {}
        exc = MlserveError(
            f"the fan-out failed: {detail.get('Error') or 'error'}: {str(detail.get('Cause') or '')[:1000]}",
            code="fanout_failed",
        )
    report = build_report(
        status="rejected" if rejected else "failed",
        source=source,
        started=started,
        ended=time.time(),
        model=None,
        error=exc,
    )
    if bad:
        report["failed_ranges"] = bad
    return report


def merge_file(
    client: Any,
    bucket: str,
    job_key: str,
    *,
    results_prefix: str,
    max_listed: int = 100,
    execution: str | None = None,
    min_part_bytes: int = MIN_PART_BYTES,
) -> dict[str, Any]:
    """The final step: one predictions object from the parts and one report, or none and
    a report naming the ranges that failed."""
    job = _read_json(client, bucket, job_key)
    source = job["input"]
    prefix = job["prefix"]
    manifest = _read_json(client, bucket, job["manifest"])
    reports = [_read_json_or_none(client, bucket, part_report_key(prefix, int(r["index"]))) for r in manifest]
    if any(r is None or r.get("status") != "succeeded" for r in reports):
        return _finish(client, job, source, _failure_report(job, source, reports, manifest), results_prefix, execution)
    complete = [r for r in reports if r is not None]
    total, _ = merge_reports(complete, max_listed)
    predictions_key, _, _ = result_keys(source["key"], results_prefix)
    item = S3Input(bucket, source["key"], source.get("version_id"), source.get("etag"), source.get("size"))
    started = float(job["started"])
    status = "succeeded"
    error: MlserveError | None = None

    def guard() -> None:
        newer = superseded_by(client, item, source)
        if newer is not None:
            raise Superseded(
                f"a newer version ({newer}) of {source['key']} was uploaded; its results stand", code="superseded"
            )

    if total.rows_read == 0:
        status, error = "rejected", InputError("the file has a header but no data rows", code="no_rows")
    else:
        parts = [
            (
                part_key(prefix, int(r["index"])),
                int(client.head_object(Bucket=bucket, Key=part_key(prefix, int(r["index"])))["ContentLength"]),
            )
            for r in manifest
        ]
        try:
            assemble_parts(client, bucket, predictions_key, parts, min_part_bytes=min_part_bytes, before_commit=guard)
        except Superseded as exc:
            status, error = "superseded", exc
    report = merged_report(status, source, started, total, error, predictions_key)
    return _finish(client, job, source, report, results_prefix, execution)


def fail_file(
    client: Any,
    request: dict[str, Any],
    error: dict[str, Any] | None,
    *,
    results_prefix: str,
    execution: str | None = None,
) -> dict[str, Any]:
    """The Catch step: a `failed` report naming the ranges that did not succeed (or the
    plan's error when there was no plan); never a predictions object."""
    bucket = request["bucket"]
    plan = request.get("plan") or {}
    job = _read_json_or_none(client, bucket, plan["job_key"]) if plan.get("job_key") else None
    if job is None:
        source = {k: request.get(k) for k in ("bucket", "key", "version_id", "etag", "size")}
        return _finish(client, None, source, _failure_report(None, source, [], [], error), results_prefix, execution)
    manifest = _read_json(client, bucket, job["manifest"])
    reports = [_read_json_or_none(client, bucket, part_report_key(job["prefix"], int(r["index"]))) for r in manifest]
    report = _failure_report(job, job["input"], reports, manifest, error)
    return _finish(client, job, job["input"], report, results_prefix, execution)


# --- start (from the S3-triggered function) -------------------------------------------


class FanoutStarter:
    """Decides, for the S3-triggered function, whether a file goes to the fan-out, and starts
    the execution: plain CSV over `threshold_bytes` only (gzip is not splittable: it stays on
    the single-function path, see docs/batch.md). The execution name is derived from the
    object version, so a repeated event can never start a second execution."""

    def __init__(self, s3: Any, stepfunctions: Any, state_machine_arn: str, threshold_bytes: int) -> None:
        self.s3 = s3
        self.stepfunctions = stepfunctions
        self.state_machine_arn = state_machine_arn
        self.threshold_bytes = threshold_bytes

    @classmethod
    def from_env(cls, s3: Any) -> FanoutStarter | None:
        import os

        from mlserve.config import env_number

        arn = os.environ.get(Env.FANOUT_STATE_MACHINE_ARN)
        if not arn:
            return None
        import boto3

        threshold = int(env_number(Env.FANOUT_THRESHOLD_BYTES, DEFAULT_THRESHOLD_BYTES, minimum=1))
        return cls(s3, boto3.client("stepfunctions"), arn, threshold)

    def _is_gzip(self, item: S3Input) -> bool:
        from mlserve.batch.reader import GZIP_MAGIC

        kwargs = {"VersionId": item.version_id} if item.version_id else {}
        head = self.s3.get_object(Bucket=item.bucket, Key=item.key, Range="bytes=0-1", **kwargs)["Body"].read()
        return bytes(head) == GZIP_MAGIC

    def __call__(self, item: S3Input) -> dict[str, Any] | None:
        size = item.size
        if size is None:
            kwargs = {"VersionId": item.version_id} if item.version_id else {}
            size = int(self.s3.head_object(Bucket=item.bucket, Key=item.key, **kwargs)["ContentLength"])
        if size <= self.threshold_bytes:
            return None
        if self._is_gzip(item):
            logger.info("%s is gzip (%s bytes): not splittable, scoring it in this function", item.key, size)
            return None
        version = item.version_id or item.etag or "null"
        name = execution_name(item.bucket, item.key, version)
        request = {
            "bucket": item.bucket,
            "key": item.key,
            "version_id": item.version_id,
            "etag": item.etag,
            "size": size,
        }
        try:
            started = self.stepfunctions.start_execution(
                stateMachineArn=self.state_machine_arn, name=name, input=json.dumps(request)
            )
            execution = started["executionArn"]
        except self.stepfunctions.exceptions.ExecutionAlreadyExists:
            execution = f"{self.state_machine_arn.replace(':stateMachine:', ':execution:')}:{name}"
            logger.info("fan-out of %s version %s already started: %s", item.key, version, execution)
        logger.info("fan-out started for %s (%s bytes > %s): %s", item.key, size, self.threshold_bytes, execution)
        return {"status": "fanned_out", "key": item.key, "version": version, "execution": execution}
