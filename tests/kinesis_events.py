"""Lambda Kinesis events exactly as an event source mapping delivers them, built from what
Kinesis really returned (``get_records`` output), plus helpers to read a stream back."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any


def kinesis_event(
    records: list[dict[str, Any]], stream_arn: str, shard_id: str, region: str = "us-east-1"
) -> dict[str, Any]:
    """``get_records()["Records"]`` of one shard -> the ``{"Records": [...]}`` Lambda gets."""
    items = []
    for record in records:
        arrival = record["ApproximateArrivalTimestamp"]
        items.append(
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": record["PartitionKey"],
                    "sequenceNumber": record["SequenceNumber"],
                    "data": base64.b64encode(record["Data"]).decode(),
                    "approximateArrivalTimestamp": arrival.timestamp() if isinstance(arrival, datetime) else arrival,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"{shard_id}:{record['SequenceNumber']}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/mlserve-stream",
                "awsRegion": region,
                "eventSourceARN": stream_arn,
            }
        )
    return {"Records": items}


def shard_batches(kinesis: Any, stream: str, batch_size: int) -> list[dict[str, Any]]:
    """Every record of every shard, from TRIM_HORIZON, as Lambda events of ``batch_size``."""
    description = kinesis.describe_stream(StreamName=stream)["StreamDescription"]
    events = []
    for shard in description["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            response = kinesis.get_records(ShardIterator=iterator, Limit=batch_size)
            if not response["Records"]:
                break
            events.append(kinesis_event(response["Records"], description["StreamARN"], shard["ShardId"]))
            iterator = response.get("NextShardIterator")
    return events


def read_stream(kinesis: Any, stream: str) -> list[tuple[str, dict[str, Any]]]:
    """(partition key, decoded JSON) of every record in the stream, from TRIM_HORIZON."""
    out = []
    for event in shard_batches(kinesis, stream, 10_000):
        for item in event["Records"]:
            out.append((item["kinesis"]["partitionKey"], json.loads(base64.b64decode(item["kinesis"]["data"]))))
    return out
