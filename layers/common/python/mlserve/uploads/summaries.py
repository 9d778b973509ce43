"""What the page shows of a predictions CSV: a preview (prediction columns first) and a
summary (counts per class, or a histogram of numeric predictions)."""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from typing import Any

PREVIEW_ROWS = 20


PREVIEW_MAX_BYTES = 256 * 1024


SUMMARY_MAX_BYTES = 20 * 1024 * 1024


MAX_CLASSES_COUNTED = 30


HISTOGRAM_BINS = 10


PREDICTION_COLUMNS = ("prediction", "model_version")


def _complete_lines(data: bytes) -> str:
    """Decode, dropping a last line cut in the middle by a ranged read."""
    text = data.decode("utf-8-sig", errors="replace")
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    return text


def _records(data: bytes) -> tuple[list[str], list[list[str]]]:
    reader = csv.reader(io.StringIO(_complete_lines(data), newline=""))
    header = next(reader, [])
    try:
        records = [record for record in reader if record]
    except csv.Error:
        records = []
    return header, records


def _ordered_columns(header: list[str]) -> list[int]:
    """Prediction columns first (what people look for), then the input columns."""
    first = [i for i, name in enumerate(header) if name in PREDICTION_COLUMNS or name.startswith("probability_")]
    return first + [i for i in range(len(header)) if i not in first]


def preview(data: bytes, rows: int) -> dict[str, Any]:
    header, records = _records(data)
    order = _ordered_columns(header)
    return {
        "columns": [header[i] for i in order],
        "rows": [[record[i] if i < len(record) else "" for i in order] for record in records[:rows]],
    }


def summarize(data: bytes, *, partial: bool = False) -> dict[str, Any]:
    """Counts per predicted class, or a histogram of numeric predictions."""
    header, records = _records(data)
    if "prediction" not in header:
        return {"kind": "none", "rows": 0, "partial": partial}
    position = header.index("prediction")
    values = [record[position] for record in records if position < len(record)]
    numbers = _as_numbers(values)
    counts = Counter(values)
    integral = numbers is not None and all(float(v).is_integer() for v in numbers)
    if numbers is None or (integral and len(counts) <= MAX_CLASSES_COUNTED):
        ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        shown = dict(ordered[:MAX_CLASSES_COUNTED])
        other = sum(n for _, n in ordered[MAX_CLASSES_COUNTED:])
        summary: dict[str, Any] = {"kind": "counts", "rows": len(values), "counts": shown, "partial": partial}
        if other:
            summary["other"] = other
        return summary
    return {"kind": "histogram", "rows": len(values), "bins": histogram(numbers), "partial": partial}


def _as_numbers(values: list[str]) -> list[float] | None:
    try:
        numbers = [float(v) for v in values]
    except ValueError:
        return None
    return numbers if all(math.isfinite(n) for n in numbers) else None


def histogram(numbers: list[float], bins: int = HISTOGRAM_BINS) -> list[dict[str, float]]:
    if not numbers:
        return []
    low, high = min(numbers), max(numbers)
    if low == high:
        return [{"from": low, "to": high, "count": len(numbers)}]
    width = (high - low) / bins
    counts = [0] * bins
    for n in numbers:
        counts[min(int((n - low) / width), bins - 1)] += 1
    return [{"from": low + i * width, "to": low + (i + 1) * width, "count": c} for i, c in enumerate(counts)]
