"""Kinesis records -> the live model -> predictions on an output stream (Kinesis or Firehose).

One batch of a Lambda Kinesis event source mapping is scored with ONE model version (the
live model, hot-swapped between batches like everywhere else) and ONE ``predict`` call over
the rows of every good record, then split back per record.

What happens to each record:
- good: one output record ``{"id", "predictions", "model": {"name", "version", "run_id"},
  "sequence_number", "partition_key"}`` with the input's partition key, so a consumer
  sees one key's predictions in order and can dedupe replays on ``sequence_number``;
- malformed (not JSON, not an object, a field the schema refuses, too many rows, ...):
  sent by the function straight to the failure queue with the reason and NOT reported
  as a batch item failure. Reporting it would make Lambda retry it (and every record after
  it in the shard) until the retries run out: a record that can never succeed would hold
  up the shard for nothing;
- an output or failure-queue write that still fails after retries: reported in
  ``batchItemFailures``, so Lambda retries from that record (at-least-once; consumers
  dedupe on ``sequence_number``).

A model that cannot be loaded raises: the whole batch fails and is retried (with bisect
and the mapping's retry/age limits), never dropped or sent to the failure queue as
"malformed".
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np
import orjson

from mlserve.contract import Env
from mlserve.errors import ErrorDetail, InputError
from mlserve.schema import ValidatedRows
from mlserve.scoring import LoadedModel, predict_rows

logger = logging.getLogger(__name__)

# Kinesis: 500 records and 5 MiB per PutRecords, 1 MiB per record (data + partition key).
KINESIS_MAX_BATCH_RECORDS = 500
KINESIS_MAX_BATCH_BYTES = 5 * 1024 * 1024
KINESIS_MAX_RECORD_BYTES = 1024 * 1024
# Firehose: 500 records and 4 MiB per PutRecordBatch, 1000 KiB per record.
FIREHOSE_MAX_BATCH_RECORDS = 500
FIREHOSE_MAX_BATCH_BYTES = 4 * 1024 * 1024
FIREHOSE_MAX_RECORD_BYTES = 1000 * 1024
# SQS: 10 messages and 256 KiB per SendMessageBatch (and per message). The record's data is
# copied into the failure message only up to this many bytes (Kinesis allows 1 MiB).
SQS_MAX_BATCH_MESSAGES = 10
SQS_MAX_BATCH_BYTES = 256 * 1024
FAILURE_DATA_BYTES = 64 * 1024
# Partial write failures (throttling) are retried this many times before the record is
# reported as a batch item failure.
WRITE_ATTEMPTS = 4
RECORD_FORMATS = '{"id": ..., "instances": [{...}, ...]} or one row object {"col": value, ...}'


@dataclass(frozen=True)
class StreamRecord:
    """One Kinesis record as the event source mapping delivers it (data already decoded)."""

    sequence_number: str
    partition_key: str
    data: bytes
    shard_id: str | None = None
    event_source_arn: str | None = None
    approximate_arrival: float | None = None
    decode_error: str | None = None


def records_from_event(event: dict[str, Any]) -> list[StreamRecord]:
    """Lambda's Kinesis event (``Records[].kinesis``) -> records, in shard order."""
    records = []
    for item in event.get("Records") or []:
        kinesis = item.get("kinesis") or {}
        event_id = str(item.get("eventID") or "")
        raw = kinesis.get("data") or ""
        decode_error = None
        try:
            data = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError) as exc:
            data, decode_error = str(raw).encode(errors="replace"), f"record data is not base64: {exc}"
        records.append(
            StreamRecord(
                sequence_number=str(kinesis.get("sequenceNumber", "")),
                partition_key=str(kinesis.get("partitionKey", "")),
                data=data,
                shard_id=event_id.split(":", 1)[0] if ":" in event_id else None,
                event_source_arn=item.get("eventSourceARN"),
                approximate_arrival=kinesis.get("approximateArrivalTimestamp"),
                decode_error=decode_error,
            )
        )
    return records


def _bad(message: str, loc: list[str | int], code: str = "malformed_record") -> InputError:
    return InputError(message, code=code, details=[ErrorDetail(loc, message)])


def parse_record(data: bytes, model: LoadedModel) -> tuple[Any, list[dict[str, Any]]]:
    """A record's bytes -> (its id, validated rows), or InputError naming the problem.

    ``{"id": ..., "instances": [...]}`` (``id`` optional) or a single row object; a single
    row may carry an ``id`` key unless the model has a column of that name."""
    try:
        payload = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise _bad(f"record is not valid JSON: {exc}", ["data"], code="malformed_json") from None
    if not isinstance(payload, dict):
        raise _bad(f"record must be a JSON object: {RECORD_FORMATS}", ["data"])
    schema = model.schema
    if "instances" in payload:
        unknown = sorted(set(payload) - {"id", "instances"})
        if unknown:
            raise _bad(f"unknown key(s) {unknown} beside 'instances' (allowed: id, instances)", [unknown[0]])
        record_id = payload.get("id")
        rows = payload["instances"]
        where: list[str | int] = ["instances"]
    else:
        record_id = payload.pop("id", None) if "id" not in schema.column_names else None
        rows = [payload]
        where = []
    if record_id is not None and not isinstance(record_id, str | int):
        raise _bad("'id' must be a string or an integer", ["id"])
    try:
        validated = schema.validate_rows(rows, forbid_extra=True)
    except InputError as exc:
        details = [ErrorDetail(where + list(detail.loc), detail.msg) for detail in exc.details]
        first = ".".join(str(part) for part in details[0].loc) if details else "data"
        message = f"invalid record at {first}: {details[0].msg}" if details else exc.message
        raise InputError(message, code=exc.code, status=exc.status, details=details) from None
    return record_id, validated


def _concat(model: LoadedModel, parts: Sequence[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Rows of many records as one list; keeps the prebuilt float64 matrix when every part
    has one (all-double signatures), so scoring does not rebuild it."""
    rows = [row for part in parts for row in part]
    columns = model.schema.columns
    if parts and all(isinstance(part, ValidatedRows) and part.columns == columns for part in parts):
        matrix = np.vstack([part.matrix for part in parts])  # type: ignore[attr-defined]
        return ValidatedRows(rows, columns, matrix)
    return rows


@dataclass
class Rejected:
    record: StreamRecord
    error: InputError


@dataclass
class Scored:
    record: StreamRecord
    record_id: Any
    predictions: list[Any]


@dataclass
class BatchScore:
    scored: list[Scored] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    rows: int = 0


def score_records(model: LoadedModel, records: Sequence[StreamRecord]) -> BatchScore:
    """Validate each record on its own (a bad one cannot spoil the others), then one
    ``predict`` over all good rows. When the model itself refuses that call (a value the
    schema allows but the estimator does not), score record by record to find the culprit."""
    result = BatchScore()
    good: list[tuple[StreamRecord, Any, list[dict[str, Any]]]] = []
    for record in records:
        if record.decode_error is not None:
            result.rejected.append(Rejected(record, _bad(record.decode_error, ["data"])))
            continue
        try:
            record_id, rows = parse_record(record.data, model)
        except InputError as exc:
            result.rejected.append(Rejected(record, exc))
            continue
        good.append((record, record_id, rows))
    if not good:
        return result
    try:
        predictions = predict_rows(model, _concat(model, [rows for _, _, rows in good])).predictions
    except InputError:
        predictions = None
    if predictions is not None:
        start = 0
        for record, record_id, rows in good:
            result.scored.append(Scored(record, record_id, predictions[start : start + len(rows)]))
            start += len(rows)
            result.rows += len(rows)
        return result
    for record, record_id, rows in good:
        try:
            one = predict_rows(model, rows).predictions
        except InputError as exc:
            result.rejected.append(Rejected(record, exc))
            continue
        result.scored.append(Scored(record, record_id, one))
        result.rows += len(rows)
    return result


def output_record(scored: Scored, model: LoadedModel) -> dict[str, Any]:
    return {
        "id": scored.record_id,
        "predictions": scored.predictions,
        "model": {
            "name": model.identity.name,
            "version": model.identity.version,
            "run_id": model.identity.run_id,
        },
        "sequence_number": scored.record.sequence_number,
        "partition_key": scored.record.partition_key,
    }


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(float(ts), UTC).isoformat()


def failure_message(rejected: Rejected, model: LoadedModel | None) -> dict[str, Any]:
    """What the failure queue gets for a malformed record: the reason, where it came from
    (enough to find it again: stream, shard, sequence number) and its data (truncated)."""
    record, error = rejected.record, rejected.error
    data = record.data[:FAILURE_DATA_BYTES]
    return {
        "kind": "malformed_record",
        "reason": {
            "code": error.code,
            "message": error.message,
            "details": [detail.to_dict() for detail in error.details[:20]],
        },
        "record": {
            "event_source_arn": record.event_source_arn,
            "shard_id": record.shard_id,
            "sequence_number": record.sequence_number,
            "partition_key": record.partition_key,
            "approximate_arrival": _iso(record.approximate_arrival),
            "data_base64": base64.b64encode(data).decode(),
            "data_bytes": len(record.data),
            "data_truncated": len(data) < len(record.data),
        },
        "model": model.identity.to_dict() if model else None,
        "detected_at": datetime.now(UTC).isoformat(),
    }


class OutputWriter(Protocol):
    """Writes encoded output records; returns the indices that could not be written."""

    max_record_bytes: int

    def write(self, items: Sequence[tuple[bytes, str]]) -> list[int]: ...


def _chunks(sizes: Sequence[int], max_records: int, max_bytes: int) -> list[list[int]]:
    chunks: list[list[int]] = []
    current: list[int] = []
    used = 0
    for index, size in enumerate(sizes):
        if current and (len(current) >= max_records or used + size > max_bytes):
            chunks.append(current)
            current, used = [], 0
        current.append(index)
        used += size
    if current:
        chunks.append(current)
    return chunks


def _with_retries(indices: list[int], send: Any, attempts: int, sleep: Any) -> list[int]:
    """``send(indices) -> failed indices``; retry the failed ones with backoff."""
    pending = indices
    for attempt in range(attempts):
        if not pending:
            return []
        if attempt:
            sleep(min(0.1 * 2**attempt, 1.0))
        pending = send(pending)
    return pending


def _send_batched(
    sizes: list[int], max_records: int, max_bytes: int, send: Any, attempts: int, sleep: Any
) -> list[int]:
    """Items (by index, with their sizes) sent in batches within the service's limits,
    each batch with retries; the indices that still failed."""
    failed: list[int] = []
    for chunk in _chunks(sizes, max_records, max_bytes):
        failed += _with_retries(chunk, send, attempts, sleep)
    return failed


@dataclass
class KinesisWriter:
    client: Any
    stream_name: str
    attempts: int = WRITE_ATTEMPTS
    sleep: Any = time.sleep
    max_record_bytes: int = KINESIS_MAX_RECORD_BYTES

    def write(self, items: Sequence[tuple[bytes, str]]) -> list[int]:
        def send(indices: list[int]) -> list[int]:
            response = self.client.put_records(
                StreamName=self.stream_name,
                Records=[{"Data": items[i][0], "PartitionKey": items[i][1]} for i in indices],
            )
            if not response.get("FailedRecordCount"):
                return []
            return [i for i, entry in zip(indices, response["Records"], strict=True) if entry.get("ErrorCode")]

        sizes = [len(data) + len(key.encode()) for data, key in items]
        return _send_batched(sizes, KINESIS_MAX_BATCH_RECORDS, KINESIS_MAX_BATCH_BYTES, send, self.attempts, self.sleep)


@dataclass
class FirehoseWriter:
    """Newline-delimited JSON into a Firehose delivery stream (S3 gets JSON lines). Firehose
    has no partition key: it rides inside each record (``partition_key``)."""

    client: Any
    delivery_stream: str
    attempts: int = WRITE_ATTEMPTS
    sleep: Any = time.sleep
    max_record_bytes: int = FIREHOSE_MAX_RECORD_BYTES - 1

    def write(self, items: Sequence[tuple[bytes, str]]) -> list[int]:
        def send(indices: list[int]) -> list[int]:
            response = self.client.put_record_batch(
                DeliveryStreamName=self.delivery_stream, Records=[{"Data": items[i][0] + b"\n"} for i in indices]
            )
            if not response.get("FailedPutCount"):
                return []
            return [i for i, entry in zip(indices, response["RequestResponses"], strict=True) if entry.get("ErrorCode")]

        sizes = [len(data) + 1 for data, _ in items]
        return _send_batched(
            sizes, FIREHOSE_MAX_BATCH_RECORDS, FIREHOSE_MAX_BATCH_BYTES, send, self.attempts, self.sleep
        )


@dataclass
class FailureQueue:
    """The SQS queue malformed records go to (also the mapping's on-failure destination)."""

    client: Any
    queue_url: str
    attempts: int = WRITE_ATTEMPTS
    sleep: Any = time.sleep

    def send(self, bodies: Sequence[bytes]) -> list[int]:
        def send(indices: list[int]) -> list[int]:
            response = self.client.send_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "MessageBody": bodies[i].decode()} for i in indices],
            )
            return [int(entry["Id"]) for entry in response.get("Failed") or []]

        return _send_batched(
            [len(b) for b in bodies], SQS_MAX_BATCH_MESSAGES, SQS_MAX_BATCH_BYTES, send, self.attempts, self.sleep
        )


@dataclass
class BatchOutcome:
    """What one invocation did; ``response()`` is the ESM's partial batch response."""

    records: int
    rows_scored: int
    written: int
    malformed: int
    retry: list[str]
    model: LoadedModel
    reasons: dict[str, int] = field(default_factory=dict)

    def response(self) -> dict[str, Any]:
        return {"batchItemFailures": [{"itemIdentifier": sequence} for sequence in self.retry]}


def process_batch(
    records: Sequence[StreamRecord], model: LoadedModel, writer: OutputWriter, failures: FailureQueue
) -> BatchOutcome:
    """Score one batch with ``model`` (the caller got it from the live model, so a model
    that cannot load has already failed the batch), write predictions and failures."""
    scored = score_records(model, records)
    rejected = list(scored.rejected)
    items: list[tuple[bytes, str]] = []
    written_records: list[StreamRecord] = []
    for item in scored.scored:
        data = orjson.dumps(output_record(item, model))
        if len(data) + len(item.record.partition_key.encode()) > writer.max_record_bytes:
            error = _bad(
                f"the predictions of this record ({len(data)} bytes) exceed the output stream's "
                f"{writer.max_record_bytes}-byte record limit: send fewer instances per record",
                ["instances"],
                code="output_too_large",
            )
            rejected.append(Rejected(item.record, error))
            continue
        items.append((data, item.record.partition_key))
        written_records.append(item.record)
    retry: list[StreamRecord] = [written_records[i] for i in writer.write(items)] if items else []
    if rejected:
        bodies = [json.dumps(failure_message(r, model)).encode() for r in rejected]
        retry += [rejected[i].record for i in failures.send(bodies)]
        for r in rejected:
            logger.warning(
                "malformed record %s (partition key %r) sent to the failure queue: %s",
                r.record.sequence_number,
                r.record.partition_key,
                r.error.message,
            )
    reasons: dict[str, int] = {}
    for r in rejected:
        reasons[r.error.code] = reasons.get(r.error.code, 0) + 1
    # Lambda resumes from the lowest reported sequence number; report in shard order.
    order = {record.sequence_number: index for index, record in enumerate(records)}
    retry_numbers = sorted({r.sequence_number for r in retry}, key=lambda s: order.get(s, 0))
    return BatchOutcome(
        records=len(records),
        rows_scored=sum(len(s.predictions) for s in scored.scored),
        written=len(items) - sum(1 for r in retry if r in written_records),
        malformed=len(rejected),
        retry=retry_numbers,
        model=model,
        reasons=reasons,
    )


OUTPUT_KINDS = ("kinesis", "firehose")


@dataclass
class StreamRuntime:
    """What a stream consumer container keeps between batches: the live model (hot swap
    as in the API: ``live.json`` re-checked at most every refresh interval), the clients."""

    live: Any  # mlserve.live.LiveModel
    writer: OutputWriter
    failures: FailureQueue

    @classmethod
    def from_env(cls, session: Any = None) -> StreamRuntime:
        import os

        import boto3

        from mlserve.config import Settings
        from mlserve.errors import MlserveError
        from mlserve.live import build_live_model

        session = session or boto3.session.Session()
        settings = Settings.from_env()
        kind = os.environ.get(Env.STREAM_OUTPUT, "kinesis")
        target = os.environ.get(Env.STREAM_OUTPUT_NAME, "")
        queue_url = os.environ.get(Env.STREAM_FAILURE_QUEUE_URL, "")
        if kind not in OUTPUT_KINDS:
            raise MlserveError(f"MLSERVE_STREAM_OUTPUT={kind!r} must be kinesis or firehose", code="bad_config")
        if not target or not queue_url:
            raise MlserveError(
                "missing required setting(s): MLSERVE_STREAM_OUTPUT_NAME and MLSERVE_STREAM_FAILURE_QUEUE_URL",
                code="bad_config",
            )
        writer: OutputWriter = (
            KinesisWriter(session.client("kinesis"), target)
            if kind == "kinesis"
            else FirehoseWriter(session.client("firehose"), target)
        )
        live = build_live_model(settings, s3_client=session.client("s3"))
        return cls(live, writer, FailureQueue(session.client("sqs"), queue_url))

    def handle_event(self, event: dict[str, Any]) -> dict[str, Any]:
        from mlserve.observability import record_rows_scored

        records = records_from_event(event)
        if not records:
            return {"batchItemFailures": []}
        # Raises ModelUnavailableError when no model can be loaded: the whole batch fails
        # and the mapping retries it (nothing is lost, nothing is called malformed).
        model = self.live.get()
        outcome = process_batch(records, model, self.writer, self.failures)
        record_rows_scored(model, outcome.rows_scored, outcome.malformed)
        logger.info(
            "stream batch: %d records, %d rows scored, %d written, %d malformed %s, %d to retry (model %s v%s)",
            outcome.records,
            outcome.rows_scored,
            outcome.written,
            outcome.malformed,
            outcome.reasons or "",
            len(outcome.retry),
            model.identity.name,
            model.identity.version,
        )
        return outcome.response()
