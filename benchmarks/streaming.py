"""Streaming and scheduled scoring figures.

    python -m benchmarks.streaming [--records 10000] [--batch-sizes 100,1000] [--repeats 3]
                                   [--files 10] [--rows-per-file 1000]

1. Records/s per shard-consumer: the demo model, single-row records put into a moto Kinesis
   stream with real ``put_records``, the Lambda events built from real ``get_records``
   output (tests/kinesis_events.py), the consumer (``StreamRuntime.handle_event``, what the
   handler runs) timed per batch. Output two ways: ``memory`` (an in-process writer: the
   consumer alone) and ``moto`` (real ``put_records`` into a moto output stream, in process).
2. The scheduled run for ``--files`` CSVs over moto S3 (``run_schedule``, the function's
   code): first run (scores every file) and the rerun (every file up to date).

End-to-end latency put -> output record on MiniStack comes from the deployed suite
(``measure_latency`` below, called by tests/e2e/test_streaming.py, which writes
benchmarks/results/streaming-e2e-<date>.json when MLSERVE_STREAM_LATENCY_OUT is set).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.common import demo_store, summary, write_results


@dataclass
class MemoryWriter:
    """OutputWriter that keeps the encoded records (the consumer without network I/O)."""

    max_record_bytes: int = 1024 * 1024
    records: list[tuple[bytes, str]] = field(default_factory=list)

    def write(self, items: Any) -> list[int]:
        self.records.extend(items)
        return []


def consumer_throughput(
    store_uri: str, features: Any, records: int, batch_sizes: list[int], repeats: int
) -> list[dict[str, Any]]:
    import boto3
    from moto import mock_aws

    from mlserve.live import LiveModel
    from mlserve.store import open_store
    from mlserve.stream import FailureQueue, KinesisWriter, StreamRuntime
    from tests.kinesis_events import shard_batches

    rows = features.to_dict(orient="records")
    payloads = [json.dumps(rows[i % len(rows)]).encode() for i in range(records)]
    results = []
    with mock_aws():
        kinesis = boto3.client("kinesis", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        queue = sqs.create_queue(QueueName="failures")["QueueUrl"]
        kinesis.create_stream(StreamName="in", ShardCount=1)
        for start in range(0, records, 500):
            kinesis.put_records(
                StreamName="in",
                Records=[
                    {"Data": data, "PartitionKey": f"k{start + i}"}
                    for i, data in enumerate(payloads[start : start + 500])
                ],
            )
        live = LiveModel(open_store(store_uri), "demo-classifier", cache_dir=Path(tempfile.mkdtemp()))
        live.get()
        for batch_size in batch_sizes:
            events = shard_batches(kinesis, "in", batch_size)
            assert sum(len(e["Records"]) for e in events) == records
            for output in ("memory", "moto"):
                rates = []
                for repeat in range(repeats):
                    if output == "memory":
                        writer: Any = MemoryWriter()
                    else:
                        name = f"out-{batch_size}-{repeat}"
                        kinesis.create_stream(StreamName=name, ShardCount=1)
                        writer = KinesisWriter(kinesis, name)
                    runtime = StreamRuntime(live, writer, FailureQueue(sqs, queue))
                    started = time.perf_counter()
                    for event in events:
                        assert runtime.handle_event(event) == {"batchItemFailures": []}
                    rates.append(records / (time.perf_counter() - started))
                results.append(
                    {
                        "batch_size": batch_size,
                        "output": output,
                        "records": records,
                        "records_per_second": summary(rates),
                    }
                )
                print(
                    f"batch size {batch_size:5d}, output {output:6s}: "
                    f"{statistics.median(rates):,.0f} records/s (min {min(rates):,.0f}, max {max(rates):,.0f})"
                )
    return results


def scheduled_run(store_uri: str, features: Any, files: int, rows_per_file: int) -> dict[str, Any]:
    import boto3
    import pandas as pd
    from moto import mock_aws

    from mlserve.batch.core import BatchOptions
    from mlserve.batch.scheduled import ScheduleLimits, ScheduleRequest, run_schedule
    from mlserve.live import LiveModel
    from mlserve.store import open_store

    frame = pd.concat([features] * (rows_per_file // len(features) + 1)).head(rows_per_file)
    body = frame.to_csv(index=False).encode()
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="batch")
        s3.put_bucket_versioning(Bucket="batch", VersioningConfiguration={"Status": "Enabled"})
        for i in range(files):
            s3.put_object(Bucket="batch", Key=f"scheduled/bench/file-{i:02d}.csv", Body=body)
        live = LiveModel(open_store(store_uri), "demo-classifier", cache_dir=Path(tempfile.mkdtemp()))
        live.get()
        request = ScheduleRequest("bench", "scheduled/bench/")
        limits = ScheduleLimits(max_files=files)
        started = time.perf_counter()
        first = run_schedule(s3, "batch", request, live, options=BatchOptions(), limits=limits)
        first_seconds = time.perf_counter() - started
        started = time.perf_counter()
        rerun = run_schedule(s3, "batch", request, live, options=BatchOptions(), limits=limits)
        rerun_seconds = time.perf_counter() - started
    assert first["files_scored"] == files and rerun["files_up_to_date"] == files
    result = {
        "files": files,
        "rows_per_file": rows_per_file,
        "first_run_seconds": round(first_seconds, 3),
        "rows_scored": first["rows_scored"],
        "rerun_seconds": round(rerun_seconds, 3),
        "rerun_files_scored": rerun["files_scored"],
    }
    print(
        f"scheduled run, {files} files x {rows_per_file} rows: {first_seconds:.2f}s "
        f"({first['rows_scored'] / first_seconds:,.0f} rows/s); rerun (all up to date) {rerun_seconds:.2f}s"
    )
    return result


def measure_latency(
    kinesis: Any, input_stream: str, output_stream: str, row: dict[str, Any], samples: int = 10
) -> list[float]:
    """Put one record at a time and wait for its prediction on the output stream: seconds
    from put_records returning to the output record being read (0.2 s polling)."""
    iterators = {}
    for shard in kinesis.list_shards(StreamName=output_stream)["Shards"]:
        iterators[shard["ShardId"]] = kinesis.get_shard_iterator(
            StreamName=output_stream, ShardId=shard["ShardId"], ShardIteratorType="LATEST"
        )["ShardIterator"]
    latencies = []
    for _ in range(samples):
        record_id = uuid.uuid4().hex
        kinesis.put_record(
            StreamName=input_stream,
            Data=json.dumps({"id": record_id, "instances": [row]}).encode(),
            PartitionKey=record_id,
        )
        sent = time.perf_counter()
        deadline = sent + 120
        seen = False
        while not seen and time.perf_counter() < deadline:
            for shard_id, iterator in list(iterators.items()):
                response = kinesis.get_records(ShardIterator=iterator, Limit=1000)
                iterators[shard_id] = response["NextShardIterator"]
                seen = seen or any(json.loads(r["Data"]).get("id") == record_id for r in response["Records"])
            if not seen:
                time.sleep(0.2)
        if not seen:
            raise AssertionError(f"record {record_id} never reached {output_stream}")
        latencies.append(time.perf_counter() - sent)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--batch-sizes", default="100,1000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--rows-per-file", type=int, default=1000)
    args = parser.parse_args()
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        os.environ.pop(var, None)
    import logging

    logging.disable(logging.WARNING)
    store_uri, _, features = demo_store()
    throughput = consumer_throughput(
        store_uri, features, args.records, [int(b) for b in args.batch_sizes.split(",")], args.repeats
    )
    scheduled = scheduled_run(store_uri, features, args.files, args.rows_per_file)
    path = write_results("streaming", {"consumer": throughput, "scheduled": scheduled, "args": vars(args)})
    print(f"results: {path}")


if __name__ == "__main__":
    main()
