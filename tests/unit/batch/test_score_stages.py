"""The stages `score_stream` runs, one at a time: the header plan, chunk screening,
conversion and the output lines, on the real demo classifier."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlserve.batch.conversion import convert_rows
from mlserve.batch.header_plan import plan_header
from mlserve.batch.lines import interleave, suffix_bytes
from mlserve.batch.reader import Chunk, iter_chunks
from mlserve.batch.screening import screen_chunk
from mlserve.errors import InputError


def _chunks(body: bytes) -> tuple[list[str], bytes, list[Chunk]]:
    header, raw, chunks = iter_chunks(io.BytesIO(body))
    return header, raw, list(chunks)


def _body(frame: pd.DataFrame, rows: list[str]) -> bytes:
    return (",".join(frame.columns) + ",note\n" + "".join(r + "\n" for r in rows)).encode()


def _row(frame: pd.DataFrame, i: int, note: str = "x") -> str:
    return ",".join(repr(float(v)) for v in frame.iloc[i]) + "," + note


def test_header_plan_places_model_columns_and_builds_the_output_header(
    classifier: Any, breast_cancer: pd.DataFrame
) -> None:
    features = breast_cancer.drop(columns=["target"], errors="ignore")
    header = ["note", *reversed(list(features.columns))]
    raw = ",".join(header).encode() + b"\n"
    plan = plan_header(header, raw, classifier, probabilities=True, escape_formulas=True)
    assert [c.name for c in plan.present] == [c.name for c in classifier.spec.inputs]
    assert [header[p] for p in plan.positions] == [c.name for c in plan.present]
    assert plan.absent == () and plan.passthrough == [0] and plan.field_count == len(header)
    classes = classifier.classes
    added = ["prediction", *(f"probability_{c}" for c in classes), "model_version"]
    assert plan.output_columns == [*header, *added]
    assert plan.header_line == raw + ("," + ",".join(added) + "\n").encode()
    assert plan.tail == f",{classifier.identity.version}\n".encode()


def test_header_plan_rejects_missing_before_repeated_columns(classifier: Any) -> None:
    names = [c.name for c in classifier.spec.inputs]
    with pytest.raises(InputError) as missing:
        plan_header([*names[1:], names[2]], b"", classifier, probabilities=False, escape_formulas=False)
    assert missing.value.code == "missing_columns" and names[0] in missing.value.message
    with pytest.raises(InputError) as repeated:
        plan_header([*names, names[3]], b"", classifier, probabilities=False, escape_formulas=False)
    assert repeated.value.code == "duplicate_columns" and repeated.value.message.endswith(names[3])


def test_screening_numbers_rows_past_blanks_and_rejects_whole_records(breast_cancer: pd.DataFrame) -> None:
    features = breast_cancer.drop(columns=["target"], errors="ignore")
    rows = [_row(features, 0), "", _row(features, 1) + ",extra", "\xff".join([_row(features, 2), ""])]
    header, _, (chunk,) = _chunks(_body(features, rows).replace("\xff".encode(), b"\xff"))
    screened = screen_chunk(chunk, len(header), rows_before=10)
    assert screened.nonblank.tolist() == [0, 2, 3]
    assert [int(screened.record_numbers[i]) for i in (0, 2, 3)] == [11, 12, 13]
    assert screened.problems[2][0]["reason"] == "wrong_field_count"
    assert screened.problems[3] == [{"column": None, "reason": "invalid_utf8", "message": "not valid UTF-8"}]
    assert screened.parse_rows().tolist() == [0]


def test_an_unclosed_quote_replaces_the_field_count_complaint(breast_cancer: pd.DataFrame) -> None:
    features = breast_cancer.drop(columns=["target"], errors="ignore")
    body = _body(features, [_row(features, 0)]) + b'1,"open'
    header, _, chunks = _chunks(body)
    last = chunks[-1]
    screened = screen_chunk(last, len(header), rows_before=0)
    assert [p["reason"] for p in screened.problems[len(last) - 1]] == ["unterminated_quote"]


def test_conversion_rejects_bad_cells_with_the_value_as_typed(classifier: Any, breast_cancer: pd.DataFrame) -> None:
    features = breast_cancer.drop(columns=["target"], errors="ignore")
    bad = "1e400," + _row(features, 1).split(",", 1)[1]
    header, raw, (chunk,) = _chunks(_body(features, [_row(features, 0), bad, _row(features, 2)]))
    plan = plan_header(header, raw, classifier, probabilities=False, escape_formulas=False)
    screened = screen_chunk(chunk, plan.field_count, rows_before=0)
    converted = convert_rows(chunk, plan, screened)
    assert converted.rows.tolist() == [0, 2]
    assert all(len(a) == 2 for a in converted.columns.values())
    (error,) = screened.problems[1]
    assert error["reason"] == "not_finite" and error["value"] == "1e400"
    assert error["column"] == features.columns[0]


def test_output_lines_are_the_records_bytes_then_the_suffix(breast_cancer: pd.DataFrame) -> None:
    features = breast_cancer.drop(columns=["target"], errors="ignore")
    rows = [_row(features, 0, '"a, b"'), _row(features, 1)]  # record order, as scored
    _, _, (chunk,) = _chunks(_body(features, rows))
    suffixes = suffix_bytes(["benign", "malignant"], None, b",7\n")
    assert suffixes == [b",benign,7\n", b",malignant,7\n"]
    every = interleave(chunk, np.asarray([0, 1]), suffixes)
    assert every == (rows[0] + ",benign,7\n" + rows[1] + ",malignant,7\n").encode()
    # Some rows rejected: the scored records are sliced out, quoted comma and all.
    assert interleave(chunk, np.asarray([0]), suffixes[:1]) == (rows[0] + ",benign,7\n").encode()
