"""Stage 4 of scoring a CSV: output lines. Each scored record's own bytes (extra columns
untouched) followed by `,<prediction>[,<p0>,<p1>...],<version>`, built with C-level list
operations rather than a Python loop per row."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlserve.batch.reader import Chunk


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


def _sliced_records(chunk: Chunk, rows: np.ndarray) -> list[bytes]:
    data = chunk.data
    return list(map(data.__getitem__, map(slice, chunk.starts[rows].tolist(), chunk.ends[rows].tolist())))


def interleave(chunk: Chunk, rows: np.ndarray, suffixes: list[bytes]) -> bytes:
    """Each scored record's own bytes followed by its suffix."""
    data = chunk.data
    if len(rows) == len(chunk) and b"\r" not in data and data.endswith(b"\n"):
        # Every record scored, plain LF lines: the lines are the records.
        records = data.split(b"\n")[:-1]
    else:
        records = _sliced_records(chunk, rows)
    if len(records) != len(suffixes):  # e.g. a quoted newline broke the line split: slice instead
        records = _sliced_records(chunk, rows)
    parts: list[bytes] = [b""] * (2 * len(records))
    parts[::2] = records
    parts[1::2] = suffixes
    return b"".join(parts)
