"""Streaming (context ``stream`` and ``stream_*``): the event source mapping's limits are
Lambda's own for a Kinesis source."""

from __future__ import annotations

from typing import Annotated, Any, Literal, cast

from pydantic import Field
from pydantic.dataclasses import dataclass

from infra.config.base import MODEL_CONFIG, Check, ConfigError, ContextChecks
from infra.config.checks import boolean, integer

StreamOutput = Literal["kinesis", "firehose"]
STREAM_OUTPUTS: tuple[StreamOutput, ...] = ("kinesis", "firehose")


def stream_output(key: str, raw: Any) -> StreamOutput:
    if raw not in STREAM_OUTPUTS:
        raise ConfigError(f"context {key!r} must be kinesis or firehose, got {raw!r}")
    return cast(StreamOutput, raw)


def max_record_age(key: str, raw: Any) -> int:
    age = integer(key, raw, -1, 604_800)
    if age != -1 and age < 60:
        raise ConfigError(f"context {key!r} must be -1 (no limit) or 60-604800, got {age}")
    return age


@dataclass(frozen=True, kw_only=True, config=MODEL_CONFIG)
class StreamSettings(ContextChecks):
    max_record_age_seconds: Annotated[int, Check(max_record_age)] = Field(
        validation_alias="stream_max_record_age_seconds"
    )
    output: Annotated[StreamOutput, Check(stream_output)] = Field(validation_alias="stream_output")
    shards: Annotated[int, Check(integer, 1, 500)] = Field(validation_alias="stream_shards")
    retention_hours: Annotated[int, Check(integer, 24, 8760)] = Field(validation_alias="stream_retention_hours")
    batch_size: Annotated[int, Check(integer, 1, 10_000)] = Field(validation_alias="stream_batch_size")
    batching_window_seconds: Annotated[int, Check(integer, 0, 300)] = Field(
        validation_alias="stream_batching_window_seconds"
    )
    bisect_on_error: Annotated[bool, Check(boolean)] = Field(validation_alias="stream_bisect_on_error")
    retry_attempts: Annotated[int, Check(integer, -1, 10_000)] = Field(validation_alias="stream_retry_attempts")
    parallelization_factor: Annotated[int, Check(integer, 1, 10)] = Field(
        validation_alias="stream_parallelization_factor"
    )
