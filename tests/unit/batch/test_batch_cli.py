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
