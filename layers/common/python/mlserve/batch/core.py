"""Score one CSV stream with one model version, chunk by chunk, into a sink.

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

import numpy as np
import pandas as pd

from mlserve.batch.convert import convert_column, finalize, parse_columns
from mlserve.batch.formulas import escape_formulas
from mlserve.batch.limits import BatchLimits, DeadlineReached
from mlserve.batch.output import DEFAULT_PART_BYTES, MIN_PART_BYTES, Sink
from mlserve.batch.reader import DEFAULT_CHUNK_BYTES, Chunk, iter_chunks, open_binary
from mlserve.config import env_bool, env_number
from mlserve.csv_hints import raise_if_wrong_separator, rejected_value
from mlserve.errors import InputError
from mlserve.mlmodel import ColumnSpec
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


def csv_field(text: str) -> str:
    if any(ch in text for ch in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def format_values(values: list[Any]) -> list[str]:
    """Predictions as CSV fields: shortest round-trip repr for floats, text quoted when needed."""
    if not values:
        return []
    first = values[0]
    if isinstance(first, float):
        return [repr(v) for v in values]
    if isinstance(first, bool):
        return ["true" if v else "false" for v in values]
    if isinstance(first, int):
        return [str(v) for v in values]
    return [csv_field(str(v)) for v in values]


def model_frame(signature: tuple[ColumnSpec, ...], columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """The frame the model sees. All-float64 columns (the common numeric case) become one 2-D
    block up front, which spares pandas a per-column block build and consolidation."""
    arrays = [columns[c.name] for c in signature]
    names = [c.name for c in signature]
    if arrays and all(a.dtype == np.float64 for a in arrays):
        return pd.DataFrame(np.column_stack(arrays), columns=names, copy=False)
    return pd.DataFrame(dict(zip(names, arrays, strict=True)), copy=False)


def suffix_bytes(predictions: list[Any], probabilities: np.ndarray | None, tail: bytes) -> list[bytes]:
    """`,<prediction>[,<p0>,<p1>...],<version>\n` per row. Classifier labels repeat, so they
    are formatted once per distinct value and looked up."""
    if probabilities is None and predictions and not isinstance(predictions[0], float):
        distinct = list(set(predictions))
        labels = {v: ("," + f).encode() + tail for v, f in zip(distinct, format_values(distinct), strict=True)}
        return list(map(labels.__getitem__, predictions))
    fields = format_values(predictions)
    if probabilities is None:
        return [("," + p).encode() + tail for p in fields]
    probs = [",".join(map(repr, row)) for row in probabilities.tolist()]
    return [("," + p + "," + q).encode() + tail for p, q in zip(fields, probs, strict=True)]


def interleave(chunk: Chunk, rows: np.ndarray, suffixes: list[bytes]) -> bytes:
    """Each scored record's own bytes followed by its suffix, built with C-level list
    operations (no Python loop per row)."""
    data = chunk.data
    if len(rows) == len(chunk) and b"\r" not in data and data.endswith(b"\n"):
        # Every record scored, plain LF lines: the lines are the records.
        records = data.split(b"\n")[:-1]
    else:
        records = list(map(data.__getitem__, map(slice, chunk.starts[rows].tolist(), chunk.ends[rows].tolist())))
    if len(records) != len(suffixes):  # e.g. a quoted newline broke the line split: slice instead
        records = list(map(data.__getitem__, map(slice, chunk.starts[rows].tolist(), chunk.ends[rows].tolist())))
    parts: list[bytes] = [b""] * (2 * len(records))
    parts[::2] = records
    parts[1::2] = suffixes
    return b"".join(parts)


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


def _bad_utf8(chunk: Chunk, candidates: np.ndarray) -> np.ndarray:
    """Indexes (among `candidates`) of records that are not valid UTF-8."""
    if chunk.data.isascii():
        return np.empty(0, dtype=np.int64)
    try:
        chunk.data.decode("utf-8")
        return np.empty(0, dtype=np.int64)
    except UnicodeDecodeError:
        pass
    # Slow path, only for a chunk that holds bad bytes. UTF-8 multi-byte sequences never
    # contain newline, quote or comma bytes, so record boundaries are still right.
    bad = []
    for i in candidates.tolist():
        try:
            chunk.record(i).decode("utf-8")
        except UnicodeDecodeError:
            bad.append(i)
    return np.asarray(bad, dtype=np.int64)


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
    with DeadlineReached between chunks."""
    limits = options.limits
    stream = open_binary(source, limits)
    header, header_raw, chunks = iter_chunks(stream, options.chunk_bytes, limits)
    signature: tuple[ColumnSpec, ...] = model.spec.inputs
    positions_by_name: dict[str, int] = {}
    for position, name in enumerate(header):
        positions_by_name.setdefault(name, position)
    missing = [c.name for c in signature if c.required and c.name not in positions_by_name]
    if missing:
        raise_if_wrong_separator(header, missing)
        raise InputError(
            f"the header is missing required column(s): {', '.join(missing)}",
            code="missing_columns",
        )
    # Counter, not list.count per name: a wide header must cost linear time.
    counts = Counter(header)
    duplicated = sorted({c.name for c in signature if counts[c.name] > 1})
    if duplicated:
        raise InputError(f"the header repeats model column(s): {', '.join(duplicated)}", code="duplicate_columns")
    # Optional columns absent from the file are missing in every row (NaN/None).
    present = [c for c in signature if c.name in positions_by_name]
    positions = [positions_by_name[c.name] for c in present]
    absent = [c for c in signature if c.name not in positions_by_name]

    classes = model.classes if options.probabilities else None
    if options.probabilities and classes is None:
        raise InputError(
            f"MLSERVE_BATCH_PROBABILITIES is on but model {model.identity.name} has no predict_proba",
            code="probabilities_unsupported",
        )
    prob_columns = [f"probability_{c}" for c in classes or []]
    result = result if result is not None else ScoreResult()
    result.columns = header
    result.output_columns = [*header, "prediction", *prob_columns, "model_version"]
    passthrough = sorted(set(range(len(header))) - set(positions)) if options.escape_formulas else []
    sink.write(
        header_raw
        + ("," + ",".join(csv_field(c) for c in ["prediction", *prob_columns, "model_version"]) + "\n").encode()
    )
    tail = ("," + csv_field(model.identity.version) + "\n").encode()
    rejections = _Rejections(result, options.max_listed)
    ncols = len(header)
    consumed = len(header_raw)

    result.bytes_read = consumed
    for chunk in chunks:
        if time_left is not None and time_left() < limits.deadline_margin_seconds:
            raise DeadlineReached(
                f"stopped {limits.deadline_margin_seconds:g} s before the function's deadline after "
                f"{result.rows_read} rows and {result.bytes_read} input bytes; the file needs more time "
                "than one invocation has (split it, or raise the function timeout)",
                code="deadline_reached",
            )
        consumed += len(chunk.data)
        blank = chunk.ends == chunk.starts
        record_numbers = result.rows_read + np.cumsum(~blank)
        nonblank = np.flatnonzero(~blank)
        result.rows_read += len(nonblank)
        problems: dict[int, list[dict[str, Any]]] = {}

        ragged = nonblank[chunk.fields[nonblank] != ncols]
        for i in ragged.tolist():
            problems[i] = [
                {
                    "column": None,
                    "reason": "wrong_field_count",
                    "message": f"has {int(chunk.fields[i])} fields, the header has {ncols}",
                }
            ]
        if chunk.unterminated and len(nonblank) and nonblank[-1] == len(chunk) - 1:
            problems[len(chunk) - 1] = [
                {
                    "column": None,
                    "reason": "unterminated_quote",
                    "message": "a quoted field is not closed before the end of the file",
                }
            ]
        for i in _bad_utf8(chunk, nonblank).tolist():
            problems.setdefault(i, []).append({"column": None, "reason": "invalid_utf8", "message": "not valid UTF-8"})

        parse_rows = (
            np.asarray([i for i in nonblank.tolist() if i not in problems], dtype=np.int64) if problems else nonblank
        )
        scored_rows = parse_rows
        frame_columns: dict[str, Any] = {}
        if len(parse_rows):
            if len(parse_rows) == len(chunk) and b"\r" not in chunk.data:
                data = chunk.data
            else:
                data = b"\n".join(chunk.record(i) for i in parse_rows.tolist())
            parsed = parse_columns(data, positions, tuple(present))
            if len(parsed) != len(parse_rows):  # a parser disagreement is a bug, never silent
                raise RuntimeError(f"CSV parser returned {len(parsed)} rows for {len(parse_rows)} records")
            ok = np.ones(len(parse_rows), dtype=bool)
            converted = []
            for column, position in zip(present, positions, strict=True):
                array, code, cell_problems = convert_column(parsed[position], column)
                converted.append(array)
                if cell_problems:
                    bad = code >= 0
                    ok &= ~bad
                    for j in np.flatnonzero(bad).tolist():
                        problem = cell_problems[code[j]]
                        problems.setdefault(int(parse_rows[j]), []).append(
                            {
                                "column": column.name,
                                "reason": problem.reason,
                                "message": problem.message,
                                "value": rejected_value(
                                    parsed[position].iat[j], chunk.record(int(parse_rows[j])), position
                                ),
                            }
                        )
            scored_rows = parse_rows[ok]
            for column, array in zip(present, converted, strict=True):
                frame_columns[column.name] = finalize(array[ok], column)
            for column in absent:
                frame_columns[column.name] = (
                    finalize(np.full(len(scored_rows), np.nan), column)
                    if column.type != "string"
                    else np.full(len(scored_rows), None, dtype=object)
                )

        for i in sorted(problems):
            rejections.add(chunk, i, int(record_numbers[i]), problems[i])

        if len(scored_rows):
            frame = model_frame(signature, frame_columns)
            prediction = predict_frame(model, frame)
            matrix = model.estimator.predict_proba(frame) if classes is not None else None
            suffixes = suffix_bytes(prediction.predictions, matrix, tail)
            output = interleave(chunk, scored_rows, suffixes)
            if passthrough:
                output = escape_formulas(output, passthrough, len(scored_rows))
            sink.write(output)
            result.rows_scored += len(scored_rows)
        result.bytes_read = consumed
        if options.progress is not None:
            options.progress(result.rows_read, consumed)
    if result.rows_read == 0:
        raise InputError("the file has a header but no data rows", code="no_rows")
    return result


def score_file(
    path: str | os.PathLike[str], sink: Sink, model: LoadedModel, options: BatchOptions = BatchOptions()
) -> ScoreResult:
    with open(path, "rb") as handle:
        return score_stream(handle, sink, model, options)
