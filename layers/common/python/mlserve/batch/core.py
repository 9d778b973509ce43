"""Score one CSV stream with one model version, chunk by chunk, into a sink.

The stages live beside this module: `header_plan` (once per file), then per chunk
`screening` (malformed records), `conversion` (cells -> the model's columns) and `lines`
(output bytes); this module runs them and keeps the counts.

Memory is bounded by the chunk size (plus one output part), not by the file: records are
split from raw bytes, only the signature's columns are parsed, and each output line is the
input record's own bytes (extra columns untouched) followed by the prediction columns.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlserve.batch.conversion import ConvertedRows, convert_rows, model_frame
from mlserve.batch.formulas import escape_formulas
from mlserve.batch.header_plan import HeaderPlan, plan_header
from mlserve.batch.limits import BatchLimits, DeadlineReached
from mlserve.batch.lines import interleave, suffix_bytes
from mlserve.batch.output import DEFAULT_PART_BYTES, MIN_PART_BYTES, Sink
from mlserve.batch.reader import DEFAULT_CHUNK_BYTES, Chunk, iter_chunks, open_binary
from mlserve.batch.screening import ScreenedChunk, screen_chunk
from mlserve.config import env_bool, env_number
from mlserve.errors import InputError
from mlserve.scoring import LoadedModel, predict_frame

RAW_PREVIEW_CHARS = 2000


@dataclass(frozen=True)
class BatchOptions:
    probabilities: bool = False
    chunk_bytes: int = DEFAULT_CHUNK_BYTES
    max_listed: int = 100  # rejected rows listed in full in the report
    part_bytes: int = DEFAULT_PART_BYTES  # multipart part size (S3 minimum 5 MiB)
    # Called after each chunk with (rows read so far, input bytes consumed so far);
    # the CLI draws its progress bar with it.
    progress: Callable[[int, int], None] | None = None
    limits: BatchLimits = field(default_factory=BatchLimits)
    # Prefix cells of passthrough columns that start with = + - @ with ' (spreadsheet
    # formula injection); off by default because it changes the caller's data.
    escape_formulas: bool = False

    @classmethod
    def from_env(cls) -> BatchOptions:
        return cls(
            limits=BatchLimits.from_env(),
            escape_formulas=env_bool("MLSERVE_BATCH_ESCAPE_FORMULAS", False),
            probabilities=env_bool("MLSERVE_BATCH_PROBABILITIES", False),
            chunk_bytes=int(env_number("MLSERVE_BATCH_CHUNK_BYTES", DEFAULT_CHUNK_BYTES, minimum=64 * 1024)),
            max_listed=int(env_number("MLSERVE_BATCH_MAX_LISTED", 100)),
            part_bytes=int(env_number("MLSERVE_BATCH_PART_BYTES", DEFAULT_PART_BYTES, minimum=MIN_PART_BYTES)),
        )


@dataclass
class ScoreResult:
    rows_read: int = 0
    rows_scored: int = 0
    rows_rejected: int = 0
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    rejected_rows: list[dict[str, Any]] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    output_columns: list[str] = field(default_factory=list)
    bytes_read: int = 0  # input bytes (decompressed) consumed so far: how far a stopped run got


def _decode_preview(raw: bytes) -> str:
    return raw[: RAW_PREVIEW_CHARS * 4].decode("utf-8", errors="replace")[:RAW_PREVIEW_CHARS]


class _Rejections:
    """Counts every rejected row by reason; keeps the first `limit` rows in full."""

    def __init__(self, result: ScoreResult, limit: int) -> None:
        self.result = result
        self.limit = limit

    def add(self, chunk: Chunk, index: int, record_number: int, errors: list[dict[str, Any]]) -> None:
        result = self.result
        result.rows_rejected += 1
        for reason in {e["reason"] for e in errors}:
            result.rejected_by_reason[reason] += 1
        if len(result.rejected_rows) < self.limit:
            result.rejected_rows.append(
                {
                    "line": chunk.line_of(index),
                    "record": record_number,
                    "errors": errors,
                    "raw": _decode_preview(chunk.record(index)),
                }
            )

    def add_chunk(self, chunk: Chunk, screened: ScreenedChunk) -> None:
        for i in sorted(screened.problems):
            self.add(chunk, i, int(screened.record_numbers[i]), screened.problems[i])


def _check_deadline(time_left: Callable[[], float] | None, limits: BatchLimits, result: ScoreResult) -> None:
    if time_left is not None and time_left() < limits.deadline_margin_seconds:
        raise DeadlineReached(
            f"stopped {limits.deadline_margin_seconds:g} s before the function's deadline after "
            f"{result.rows_read} rows and {result.bytes_read} input bytes; the file needs more time "
            "than one invocation has (split it, or raise the function timeout)",
            code="deadline_reached",
        )


def _scored_lines(chunk: Chunk, plan: HeaderPlan, model: LoadedModel, converted: ConvertedRows) -> bytes:
    """Predict the converted rows and build their output lines."""
    frame = model_frame(plan.signature, converted.columns)
    prediction = predict_frame(model, frame)
    matrix = model.estimator.predict_proba(frame) if plan.classes is not None else None
    output = interleave(chunk, converted.rows, suffix_bytes(prediction.predictions, matrix, plan.tail))
    if plan.passthrough:
        output = escape_formulas(output, plan.passthrough, len(converted.rows))
    return output


def score_stream(
    source: Any,
    sink: Sink,
    model: LoadedModel,
    options: BatchOptions = BatchOptions(),
    *,
    result: ScoreResult | None = None,
    time_left: Callable[[], float] | None = None,
) -> ScoreResult:
    """Score a CSV byte stream (plain or gzip) into `sink`. The caller commits or aborts
    the sink; InputError means the file as a whole was rejected (LimitExceeded: a bound
    was passed). `result` (if given) is filled in as chunks go, so a caller still knows how
    far a stopped run got; `time_left()` (seconds) below the deadline margin stops the run
    with DeadlineReached between chunks.

    Four stages: the header plan (once), then per chunk screening, conversion and output."""
    limits = options.limits
    header, header_raw, chunks = iter_chunks(open_binary(source, limits), options.chunk_bytes, limits)
    plan = plan_header(
        header, header_raw, model, probabilities=options.probabilities, escape_formulas=options.escape_formulas
    )
    result = result if result is not None else ScoreResult()
    result.columns = header
    result.output_columns = plan.output_columns
    sink.write(plan.header_line)
    rejections = _Rejections(result, options.max_listed)
    result.bytes_read = len(header_raw)
    for chunk in chunks:
        _check_deadline(time_left, limits, result)
        screened = screen_chunk(chunk, plan.field_count, result.rows_read)
        result.rows_read += len(screened.nonblank)
        converted = convert_rows(chunk, plan, screened)
        rejections.add_chunk(chunk, screened)
        if len(converted.rows):
            sink.write(_scored_lines(chunk, plan, model, converted))
            result.rows_scored += len(converted.rows)
        result.bytes_read += len(chunk.data)
        if options.progress is not None:
            options.progress(result.rows_read, result.bytes_read)
    if result.rows_read == 0:
        raise InputError("the file has a header but no data rows", code="no_rows")
    return result


def score_file(
    path: str | os.PathLike[str], sink: Sink, model: LoadedModel, options: BatchOptions = BatchOptions()
) -> ScoreResult:
    with open(path, "rb") as handle:
        return score_stream(handle, sink, model, options)
