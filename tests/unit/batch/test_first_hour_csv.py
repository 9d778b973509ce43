"""What a person who saved a CSV from a spreadsheet sees: a ';'-separated file is named as
such (not "missing 30 columns"), a rejected cell is echoed as typed (`1e400`, not `inf`),
and the local predictions file gets the same mode as the report beside it."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from mlserve.cli import main
from mlserve.csv_hints import separator_hint
from tests.unit.batch.test_batch_bad_input import KEY, run


def test_semicolon_separated_file_is_named_not_listed_as_missing_columns(
    batch_env: Any, breast_cancer: pd.DataFrame
) -> None:
    body = breast_cancer.head(5).to_csv(index=False, sep=";", decimal=",").encode()
    report = run(batch_env, body)
    assert report["status"] == "rejected"
    assert report["error"]["code"] == "wrong_separator"
    assert report["error"]["message"] == (
        "the file looks like ';'-separated; save it as comma-separated CSV (',' between fields)"
    )
    assert "mean radius" not in report["error"]["message"]
    assert not batch_env.has_predictions(KEY)


def test_a_really_missing_column_is_still_reported_as_missing(batch_env: Any, breast_cancer: pd.DataFrame) -> None:
    """A ';' inside a quoted comma-separated header cell is no reason to blame the separator."""
    frame = breast_cancer.drop(columns=["mean radius"]).head(3).rename(columns={"mean area": "mean area;x"})
    report = run(batch_env, frame.to_csv(index=False).encode())
    assert report["error"]["code"] == "missing_columns"
    assert "mean radius" in report["error"]["message"]


def test_rejected_number_is_echoed_as_typed(batch_env: Any, breast_cancer: pd.DataFrame) -> None:
    header, *lines = breast_cancer.head(4).to_csv(index=False).splitlines()
    lines[1] = "1e400," + lines[1].split(",", 1)[1]  # mean radius overflows to inf when parsed
    report = run(batch_env, ("\n".join([header, *lines]) + "\n").encode())
    assert report["rows_scored"] == 3 and report["rejected_by_reason"] == {"not_finite": 1}
    (rejected,) = report["rejected_rows"]
    assert rejected["errors"] == [
        {"column": "mean radius", "reason": "not_finite", "message": "must be a finite number", "value": "1e400"}
    ]


def test_invocations_csv_with_semicolons_gets_the_same_hint(breast_cancer: pd.DataFrame) -> None:
    from mlserve.errors import InputError
    from mlserve.protocol import rows_from_csv

    body = breast_cancer.head(2).to_csv(index=False, sep=";").encode()
    with pytest.raises(InputError) as caught:
        rows_from_csv(body, {name: "double" for name in breast_cancer.columns})
    assert caught.value.code == "wrong_separator" and "';'-separated" in caught.value.message
    assert caught.value.details[0].loc == ["body", 1]


def test_separator_hint_only_when_another_separator_explains_the_header() -> None:
    assert separator_hint(["a;b;c"], ["a", "b", "c"]) is not None
    assert "tab-separated" in (separator_hint(["a\tb"], ["a", "b"]) or "")
    assert separator_hint(["a", "b"], ["a", "b", "c"]) is None  # c is simply missing
    assert separator_hint(["a", "x;y"], ["a", "b"]) is None


def test_local_predictions_get_the_reports_mode(
    tmp_path: Path, batch_store: Any, breast_cancer: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "data.csv"
    breast_cancer.head(20).to_csv(source, index=False)
    previous = os.umask(0o022)
    try:
        code = main(["score", str(source), "--store", batch_store.uri, "--name", "demo-classifier", "--quiet"])
    finally:
        os.umask(previous)
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    predictions_mode = stat.S_IMODE(Path(summary["predictions"]).stat().st_mode)
    report_mode = stat.S_IMODE(Path(summary["report"]).stat().st_mode)
    assert predictions_mode == report_mode == 0o644


def test_progress_rate_leaves_out_model_loading(
    tmp_path: Path, batch_store: Any, breast_cancer: pd.DataFrame, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """A clock that only moves while the model loads (1000 s): the rows/s of the progress line
    must not be divided by that (it read "0 rows/s" for a small file before)."""
    import time

    from mlserve.live import LiveModel

    clock = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    real_get = LiveModel.get
    loaded: list[bool] = []

    def slow_first_load(self: LiveModel) -> Any:
        if not loaded:
            loaded.append(True)
            clock[0] += 1000.0
        return real_get(self)

    monkeypatch.setattr(LiveModel, "get", slow_first_load)
    source = tmp_path / "data.csv"
    breast_cancer.head(20).to_csv(source, index=False)
    assert main(["score", str(source), "--store", batch_store.uri, "--name", "demo-classifier"]) == 0
    progress = capsys.readouterr().err.strip().split("\r")[-1]
    assert progress.startswith("scoring data.csv: 100.0% 20 rows (")
    rate = float(progress.rsplit("(", 1)[1].split(" rows/s")[0].replace(",", ""))
    assert rate > 20  # 20 rows in (almost) no scoring time; 20 / 1000 s would print 0
