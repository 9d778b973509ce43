"""`mlserve score` runs the batch scorer on local files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlserve.cli import main


def test_score_cli(
    batch_store: Any, breast_cancer: pd.DataFrame, classifier: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in put.csv"
    breast_cancer.head(100).to_csv(src, index=False)
    out = tmp_path / "out" / "preds.csv"
    code = main(
        [
            "score",
            str(src),
            "--out",
            str(out),
            "--store",
            batch_store.uri,
            "--name",
            "demo-classifier",
            "--probabilities",
        ]
    )
    assert code == 0
    captured = capsys.readouterr()
    assert "100 rows" in captured.err  # the progress line
    summary = json.loads(captured.out)
    assert summary["status"] == "succeeded" and summary["rows_scored"] == 100
    got = pd.read_csv(out)
    np.testing.assert_array_equal(got["prediction"].to_numpy(), classifier.estimator.predict(breast_cancer.head(100)))
    assert "probability_1" in got.columns
    report = json.loads((tmp_path / "out" / "preds.report.json").read_text())
    assert report["model"]["version"] == "1"
    assert [p.name for p in out.parent.iterdir()] != [] and not list(out.parent.glob(".*.part"))


def test_score_cli_rejected_file_leaves_no_output(
    batch_store: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "empty.csv"
    src.write_bytes(b"")
    code = main(["score", str(src), "--store", batch_store.uri, "--name", "demo-classifier", "--quiet"])
    assert code == 1
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "empty_file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.csv", "empty.report.json"]


@pytest.mark.parametrize("crlf", [False, True])
def test_score_cli_workers_output_is_byte_identical(
    batch_store: Any, breast_cancer: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str], crlf: bool
) -> None:
    """`--workers 3` splits the file into record-aligned ranges scored in processes; the output
    and the report's counts and rejected rows (line numbers of the whole file) equal 1 worker."""
    data = pd.concat([breast_cancer] * 12, ignore_index=True)
    data.insert(0, "note", ["two\nlines" if i % 3 == 0 else "plain" for i in range(len(data))])
    text = data.to_csv(index=False, lineterminator="\r\n" if crlf else "\n")
    lines = text.split("\r\n" if crlf else "\n")
    for n in range(50, len(lines) - 1, 701):  # bad cells spread over the file
        if lines[n].startswith("plain,"):
            cells = lines[n].split(",")
            cells[2] = "oops"
            lines[n] = ",".join(cells)
    src = tmp_path / "big.csv"
    src.write_bytes(b"\xef\xbb\xbf" + ("\r\n" if crlf else "\n").join(lines).encode())
    outputs = {}
    reports = {}
    for workers in (1, 3):
        out = tmp_path / f"w{workers}.predictions.csv"
        args = ["score", str(src), "--out", str(out), "--store", batch_store.uri, "--name", "demo-classifier"]
        args += ["--quiet", "--max-listed", "1000", "--workers", str(workers)]
        # Range size is the file split in `workers` parts, at least 1 MiB: force small ranges.
        assert main(args) == 0, capsys.readouterr()
        capsys.readouterr()
        outputs[workers] = out.read_bytes()
        reports[workers] = json.loads((tmp_path / f"w{workers}.report.json").read_text())
    assert outputs[3] == outputs[1]
    for field in ("rows_read", "rows_scored", "rows_rejected", "rejected_by_reason", "rejected_rows", "model"):
        assert reports[3][field] == reports[1][field], field
    assert reports[1]["rows_rejected"] > 3
    assert reports[3]["workers"]["ranges"] >= 2


def test_score_cli_workers_refuses_zero(batch_store: Any, tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["score", str(tmp_path / "x.csv"), "--store", batch_store.uri, "--name", "m", "--workers", "0"])
