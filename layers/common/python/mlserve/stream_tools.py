"""Client side of streaming, for ``mlserve stream-send`` / ``mlserve stream-read``: CSV rows
-> Kinesis records in the consumer's format, and a tail of the output stream. Works against
AWS and emulators alike (``--endpoint-url`` or ``AWS_ENDPOINT_URL``)."""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlserve.errors import InputError
from mlserve.stream import KINESIS_MAX_BATCH_BYTES, KINESIS_MAX_BATCH_RECORDS, KINESIS_MAX_RECORD_BYTES


def _clean(value: Any) -> Any:
    """pandas scalar -> JSON value; a missing cell (NaN) becomes None (dropped from the row)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


@dataclass(frozen=True)
class OutgoingRecord:
    partition_key: str
    data: bytes


def records_from_csv(
    path: Path,
    *,
    rows_per_record: int = 1,
    id_column: str | None = None,
    single_row: bool = False,
    limit: int | None = None,
) -> list[OutgoingRecord]:
    """Each record ``{"id", "instances": [rows_per_record rows]}`` (or, with ``single_row``,
    one bare row object). ``id_column``: that column becomes the record id and partition key
    (and is not sent as a feature); otherwise ids are ``<run>-<n>``."""
    import pandas as pd

    if rows_per_record < 1:
        raise InputError("--rows-per-record must be >= 1", code="bad_argument")
    if single_row and rows_per_record != 1:
        raise InputError("--single-row sends one row per record: drop --rows-per-record", code="bad_argument")
    frame = pd.read_csv(path, nrows=limit * rows_per_record if limit else None)
    if id_column is not None and id_column not in frame.columns:
        raise InputError(f"--id-column {id_column!r} is not a column of {path}", code="bad_argument")
    ids = frame.pop(id_column).astype(str).tolist() if id_column else None
    rows = [{k: _clean(v) for k, v in row.items() if _clean(v) is not None} for row in frame.to_dict("records")]
    run = uuid.uuid4().hex[:8]
    records = []
    for start in range(0, len(rows), rows_per_record):
        record_id = ids[start] if ids else f"{run}-{start // rows_per_record}"
        chunk = rows[start : start + rows_per_record]
        payload: dict[str, Any] = chunk[0] | {"id": record_id} if single_row else {"id": record_id, "instances": chunk}
        data = json.dumps(payload).encode()
        if len(data) > KINESIS_MAX_RECORD_BYTES - len(record_id.encode()):
            raise InputError(
                f"record {record_id} is {len(data)} bytes, over Kinesis' 1 MiB: use fewer --rows-per-record",
                code="record_too_large",
            )
        records.append(OutgoingRecord(record_id, data))
    return records


def put_all(client: Any, stream: str, records: list[OutgoingRecord], attempts: int = 5) -> dict[str, Any]:
    """PutRecords in batches of 500 / 5 MiB, retrying throttled entries; returns a summary
    with the sequence number of every record (in order)."""
    sequence_numbers: list[str | None] = [None] * len(records)
    start, failed = 0, 0
    while start < len(records):
        end, size = start, 0
        while end < len(records) and end - start < KINESIS_MAX_BATCH_RECORDS:
            size += len(records[end].data) + len(records[end].partition_key.encode())
            if size > KINESIS_MAX_BATCH_BYTES and end > start:
                break
            end += 1
        pending = list(range(start, end))
        for attempt in range(attempts):
            if not pending:
                break
            if attempt:
                time.sleep(min(0.2 * 2**attempt, 2.0))
            response = client.put_records(
                StreamName=stream,
                Records=[{"Data": records[i].data, "PartitionKey": records[i].partition_key} for i in pending],
            )
            retry = []
            for i, entry in zip(pending, response["Records"], strict=True):
                if entry.get("ErrorCode"):
                    retry.append(i)
                else:
                    sequence_numbers[i] = entry["SequenceNumber"]
            pending = retry
        failed += len(pending)
        start = end
    return {
        "stream": stream,
        "records_sent": len(records) - failed,
        "records_failed": failed,
        "first_sequence_number": next((s for s in sequence_numbers if s), None),
        "last_sequence_number": next((s for s in reversed(sequence_numbers) if s), None),
    }


def tail(
    client: Any,
    stream: str,
    *,
    start: str = "TRIM_HORIZON",
    follow: bool = False,
    timeout: float | None = None,
    poll_seconds: float = 1.0,
) -> Iterator[dict[str, Any]]:
    """Every record of every shard as ``{"partition_key", "sequence_number", "shard_id", "data"}``
    (``data`` parsed as JSON when it is JSON). Without ``follow`` it stops when every shard
    is caught up; with it, when ``timeout`` (if any) passes."""
    iterators: dict[str, str | None] = {}
    for shard in client.list_shards(StreamName=stream)["Shards"]:
        iterators[shard["ShardId"]] = client.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType=start
        )["ShardIterator"]
    deadline = None if timeout is None else time.monotonic() + timeout
    while any(iterators.values()):
        caught_up = True
        for shard_id, iterator in list(iterators.items()):
            if iterator is None:
                continue
            response = client.get_records(ShardIterator=iterator, Limit=1000)
            iterators[shard_id] = response.get("NextShardIterator")
            for record in response["Records"]:
                try:
                    data: Any = json.loads(record["Data"])
                except ValueError:
                    data = record["Data"].decode(errors="replace")
                yield {
                    "partition_key": record["PartitionKey"],
                    "sequence_number": record["SequenceNumber"],
                    "shard_id": shard_id,
                    "data": data,
                }
            if response["Records"] or response.get("MillisBehindLatest", 0) > 0:
                caught_up = False
        if deadline is not None and time.monotonic() >= deadline:
            return
        if caught_up:
            if not follow:
                return
            time.sleep(poll_seconds)
