"""Every bad file gets a report that says what is wrong; good rows are still scored."""

from __future__ import annotations

import gzip
import io
from typing import Any

import numpy as np
import pandas as pd
import pytest

KEY = "incoming/bad.csv"


@pytest.fixture
def rows(breast_cancer: pd.DataFrame) -> tuple[str, list[str]]:
    header, *lines = breast_cancer.head(6).to_csv(index=False).splitlines()
    return header, lines


def run(batch_env: Any, body: bytes, key: str = KEY) -> dict[str, Any]:
    batch_env.run(batch_env.upload(key, body))
    report = batch_env.report(key)
    # Whatever happened, the input object is never modified or deleted.
    assert batch_env.s3.get_object(Bucket=batch_env.bucket, Key=key)["Body"].read() == body
    return report


def scored(batch_env: Any, key: str = KEY) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(batch_env.predictions(key)))


@pytest.mark.parametrize(
    ("body", "code"),
    [(b"", "empty_file"), (b"\n\n", "empty_file"), (None, "no_rows"), (b"\xef\xbb\xbf", "empty_file")],
    ids=["zero-bytes", "blank-lines", "header-only", "bom-only"],
)
def test_file_level_rejections(batch_env: Any, rows: tuple[str, list[str]], body: bytes | None, code: str) -> None:
    body = body if body is not None else (rows[0] + "\n").encode()
    report = run(batch_env, body)
    assert report["status"] == "rejected"
    assert report["error"]["code"] == code and report["error"]["message"]
    assert not batch_env.has_predictions(KEY)


def test_missing_required_column_rejects_file(batch_env: Any, breast_cancer: pd.DataFrame) -> None:
    body = breast_cancer.drop(columns=["mean radius", "worst area"]).head(5).to_csv(index=False).encode()
    report = run(batch_env, body)
    assert report["status"] == "rejected" and report["error"]["code"] == "missing_columns"
    assert "mean radius" in report["error"]["message"] and "worst area" in report["error"]["message"]
    assert not batch_env.has_predictions(KEY)


def test_wrong_types_in_some_rows(
    batch_env: Any, rows: tuple[str, list[str]], breast_cancer: pd.DataFrame, classifier: Any
) -> None:
    header, lines = rows
    bad = list(lines)
    bad[1] = "abc," + bad[1].split(",", 1)[1]  # line 3: mean radius not a number
    bad[3] = ",".join([*bad[3].split(",")[:-1], "inf"])  # line 5: worst fractal dimension infinite
    bad[4] = "," + bad[4].split(",", 1)[1]  # line 6: required value missing
    report = run(batch_env, (header + "\n" + "\n".join(bad) + "\n").encode())
    assert report["status"] == "succeeded"
    assert (report["rows_read"], report["rows_scored"], report["rows_rejected"]) == (6, 3, 3)
    assert report["rejected_by_reason"] == {"invalid_number": 1, "not_finite": 1, "missing_value": 1}
    listed = {r["line"]: r["errors"][0] for r in report["rejected_rows"]}
    assert listed[3] == {"column": "mean radius", "reason": "invalid_number", "message": "not a number", "value": "abc"}
    assert listed[5]["column"] == "worst fractal dimension" and listed[5]["reason"] == "not_finite"
    assert listed[6]["column"] == "mean radius" and listed[6]["reason"] == "missing_value"
    assert report["rejected_rows"][0]["raw"].startswith("abc,")
    good = breast_cancer.head(6).iloc[[0, 2, 5]]
    np.testing.assert_array_equal(scored(batch_env)["prediction"].to_numpy(), classifier.estimator.predict(good))


def test_quoted_commas_and_newlines_keep_line_numbers(batch_env: Any, rows: tuple[str, list[str]]) -> None:
    header, lines = rows
    body = (
        f"comment,{header}\n"
        f'"multi\nline, with comma",{lines[0]}\n'  # lines 2-3
        f'"ok",{lines[1]}\n'  # line 4
        f'"x","1,5",{lines[2].split(",", 1)[1]}\n'  # line 5: a quoted comma inside a number
    ).encode()
    report = run(batch_env, body)
    assert (report["rows_read"], report["rows_scored"], report["rows_rejected"]) == (3, 2, 1)
    assert report["rejected_rows"][0]["line"] == 5 and report["rejected_rows"][0]["record"] == 3
    assert report["rejected_rows"][0]["errors"][0]["value"] == "1,5"
    assert scored(batch_env)["comment"].tolist() == ["multi\nline, with comma", "ok"]


def test_non_utf8_bytes_reject_only_that_row(batch_env: Any, rows: tuple[str, list[str]]) -> None:
    header, lines = rows
    body = (
        (f"name,{header}\n").encode() + b"caf\xe9," + lines[0].encode() + b"\n" + ("café," + lines[1] + "\n").encode()
    )
    report = run(batch_env, body)
    assert (report["rows_scored"], report["rows_rejected"]) == (1, 1)
    assert report["rejected_rows"][0]["line"] == 2
    assert report["rejected_rows"][0]["errors"][0]["reason"] == "invalid_utf8"
    assert scored(batch_env)["name"].tolist() == ["café"]


def test_bom_and_crlf(
    batch_env: Any, rows: tuple[str, list[str]], breast_cancer: pd.DataFrame, classifier: Any
) -> None:
    header, lines = rows
    body = b"\xef\xbb\xbf" + ("\r\n".join([header, *lines]) + "\r\n").encode()
    report = run(batch_env, body)
    assert report["status"] == "succeeded" and report["rows_scored"] == 6
    out = batch_env.predictions(KEY)
    assert not out.startswith(b"\xef\xbb\xbf") and b"\r" not in out
    np.testing.assert_array_equal(
        scored(batch_env)["prediction"].to_numpy(), classifier.estimator.predict(breast_cancer.head(6))
    )


def test_ragged_rows_and_blank_lines(batch_env: Any, rows: tuple[str, list[str]]) -> None:
    header, lines = rows
    body = "\n".join([header, lines[0], lines[1] + ",extra", "", lines[2].rsplit(",", 1)[0], lines[3]]) + "\n"
    report = run(batch_env, body.encode())
    assert (report["rows_read"], report["rows_scored"], report["rows_rejected"]) == (4, 2, 2)
    assert report["rejected_by_reason"] == {"wrong_field_count": 2}
    assert [r["line"] for r in report["rejected_rows"]] == [3, 5]
    assert "31 fields" in report["rejected_rows"][0]["errors"][0]["message"]


def test_unterminated_quote_at_end(batch_env: Any, rows: tuple[str, list[str]]) -> None:
    header, lines = rows
    body = f'note,{header}\n"a",{lines[0]}\n"never closed,{lines[1]}\n'.encode()
    report = run(batch_env, body)
    assert report["rows_scored"] == 1
    assert report["rejected_by_reason"] == {"unterminated_quote": 1}


def test_gzip_with_bad_rows_and_listing_limit(
    batch_env: Any, rows: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLSERVE_BATCH_MAX_LISTED", "5")
    header, lines = rows
    bad = "oops," + lines[0].split(",", 1)[1]
    body = "\n".join([header] + [bad] * 40 + lines) + "\n"
    report = run(batch_env, gzip.compress(body.encode()), key="incoming/bad.csv.gz")
    assert (report["rows_rejected"], report["rows_scored"]) == (40, 6)
    assert report["rejected_by_reason"] == {"invalid_number": 40}
    assert len(report["rejected_rows"]) == 5 and report["rejected_rows"][-1]["line"] == 6


def test_corrupt_gzip_is_reported(batch_env: Any, rows: tuple[str, list[str]]) -> None:
    body = gzip.compress(("\n".join([rows[0], *rows[1]]) + "\n").encode())[:-30]
    with pytest.raises(Exception):  # noqa: B017 - a broken stream is a failure; Lambda retries then DLQ
        batch_env.run(batch_env.upload("incoming/broken.csv.gz", body))
    report = batch_env.report("incoming/broken.csv.gz")
    assert report["status"] == "failed" and report["error"]["message"]
    assert not batch_env.has_predictions("incoming/broken.csv.gz")
