"""The record splitter and the column converter, without S3 or a model."""

from __future__ import annotations

import csv
import io

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from mlserve.batch.convert import convert_column, finalize, parse_columns
from mlserve.batch.reader import iter_chunks, open_binary
from mlserve.mlmodel import ColumnSpec

# No bare CR inside cells: the csv module ends a record there, we (RFC 4180) do not.
cell = st.text(alphabet=st.sampled_from(list('ab1,"\n é')), max_size=6)


def records(body: bytes, chunk_bytes: int) -> list[list[str]]:
    header, _, chunks = iter_chunks(open_binary(io.BytesIO(body)), chunk_bytes)
    out = [header]
    for chunk in chunks:
        for i in range(len(chunk)):
            raw = chunk.record(i)
            if raw:
                out.append(next(csv.reader(io.StringIO(raw.decode(), newline=""))))
    return out


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.lists(cell, min_size=2, max_size=2), min_size=1, max_size=12),
    chunk_bytes=st.integers(1, 64),
    crlf=st.booleans(),
)
def test_records_do_not_depend_on_chunk_size(rows: list[list[str]], chunk_bytes: int, crlf: bool) -> None:
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\r\n" if crlf else "\n", quoting=csv.QUOTE_MINIMAL).writerows(
        [["a", "b"], *rows]
    )
    body = buffer.getvalue().encode()
    expected = [r for r in csv.reader(io.StringIO(buffer.getvalue(), newline="")) if r]
    assert records(body, chunk_bytes) == expected


def test_line_numbers_count_physical_lines() -> None:
    body = b'h1,h2\n"a\nb",1\n\nx,2\n'
    _, _, chunks = iter_chunks(open_binary(io.BytesIO(body)), 4)
    seen = [(chunk.line_of(i), chunk.record(i)) for chunk in chunks for i in range(len(chunk)) if chunk.record(i)]
    assert seen == [(2, b'"a\nb",1'), (5, b"x,2")]


def test_bare_cr_is_data_not_a_line_end() -> None:
    column = ColumnSpec("c", "double")
    frame = parse_columns(b"1.5\n2\r5\n", [0], (column,))
    _, code, problems = convert_column(frame[0], column)
    assert len(frame) == 2 and [problems[c].reason if c >= 0 else None for c in code] == [None, "invalid_number"]


def convert(values: list[str], kind: str, required: bool = True) -> tuple[np.ndarray, list[str | None]]:
    column = ColumnSpec("c", kind, required)
    body = "\n".join(f'"{v}"' if "," in v else v for v in values).encode() + b"\n"
    frame = parse_columns(body, [0], (column,))
    array, code, problems = convert_column(frame[0], column)
    return array, [problems[c].reason if c >= 0 else None for c in code]


def test_numbers() -> None:
    _, reasons = convert(["1.5", "abc", "", "inf", "1e3", "NaN"], "double")
    assert reasons == [None, "invalid_number", "missing_value", "not_finite", None, reasons[5]]
    assert reasons[5] is not None  # "NaN" is never a silent missing value in a required column


def test_integers_keep_dtype() -> None:
    array, reasons = convert(["1", "2", "3.5", "x"], "long")
    assert reasons == [None, None, "invalid_integer", "invalid_number"]
    good = finalize(array[:2], ColumnSpec("c", "long"))
    assert good.dtype == np.int64 and good.tolist() == [1, 2]


def test_optional_missing_becomes_nan() -> None:
    array, reasons = convert(["1", ""], "integer", required=False)
    assert reasons == [None, None]
    assert np.isnan(finalize(array, ColumnSpec("c", "integer", False))[1])


def test_booleans() -> None:
    array, reasons = convert(["true", "FALSE", "1", "0", "yes"], "boolean")
    assert reasons == [None, None, None, None, "invalid_boolean"]
    assert finalize(array[:4], ColumnSpec("c", "boolean")).tolist() == [True, False, True, False]


def test_strings_keep_text_and_empty() -> None:
    array, reasons = convert(["007", "", "a,b"], "string")
    assert reasons == [None, None, None]
    assert list(array) == ["007", "", "a,b"]


def test_datetimes() -> None:
    array, reasons = convert(["2026-01-02", "2026-01-02T10:00:00", "not a date"], "datetime")
    assert reasons == [None, None, "invalid_datetime"]
    assert pd.Timestamp(array[0]) == pd.Timestamp("2026-01-02")


def test_datetimes_with_mixed_offsets_become_utc() -> None:
    array, reasons = convert(["2026-01-02T10:00:00+02:00", "2026-01-02T10:00:00Z", "2026-01-02T10:00:00"], "datetime")
    assert reasons == [None, None, None]
    assert [str(pd.Timestamp(v)) for v in array] == [
        "2026-01-02 08:00:00",
        "2026-01-02 10:00:00",
        "2026-01-02 10:00:00",
    ]
