"""First-hour CLI errors: one `mlserve <cmd>: error: ...` line with the fix, no traceback,
and nothing left behind in the working directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mlserve.cli import main
from mlserve.cli_errors import demo_tracking_uri, describe

ROOT = Path(__file__).resolve().parents[2]


def _env_without_registry() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MLSERVE_DEBUG")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "layers/common/python"), str(ROOT)])
    return env


def test_publish_registry_uri_without_tracking_uri_is_one_line_and_leaves_no_mlflow_db(tmp_path: Path) -> None:
    """The reported first-hour fault: a raw MLflow traceback and a stray ./mlflow.db."""
    store = (tmp_path / "store").as_uri()
    completed = subprocess.run(
        [sys.executable, "-m", "mlserve.cli", "publish", "models:/demo-classifier@champion", "--store", store],
        cwd=tmp_path,
        env=_env_without_registry(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 2
    lines = [line for line in completed.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, completed.stderr
    assert lines[0].startswith("mlserve publish: error: models:/demo-classifier@champion needs an MLflow registry")
    assert "set MLFLOW_TRACKING_URI" in lines[0]
    assert f"e.g. the demo's sqlite:///{tmp_path.resolve()}/.data/mlflow.db" in lines[0]
    assert "Traceback" not in completed.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "nothing may be created in the working directory"


def test_promote_store_without_registry_or_artifact_leaves_no_mlflow_db(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    store = (tmp_path / "store").as_uri()
    code = main(["promote", "demo-classifier", "1", "--no-registry", "--store", store])
    captured = capsys.readouterr()
    assert not (tmp_path / "mlflow.db").exists()
    assert code == 1
    assert "needs an MLflow registry: set MLFLOW_TRACKING_URI" in captured.out  # the redeploy's reason
    assert "Traceback" not in captured.err


def test_unexpected_registry_error_is_one_line_with_a_hint(
    tmp_path: Path, demo_registry: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A registry that lacks the model: MLflow's exception becomes one line naming the fix."""
    monkeypatch.delenv("MLSERVE_DEBUG", raising=False)
    store = (tmp_path / "store").as_uri()
    assert main(["publish", "models:/no-such-model@champion", "--store", store]) == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("mlserve ")]
    assert len(lines) == 1
    assert lines[0].startswith("mlserve publish: error: MLflow: ")
    assert "no-such-model" in lines[0] and "MLFLOW_TRACKING_URI" in lines[0] and "MLSERVE_DEBUG=1" in lines[0]


def test_debug_variable_brings_the_traceback_back(
    tmp_path: Path, demo_registry: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLSERVE_DEBUG", "1")
    with pytest.raises(Exception, match="no-such-model"):
        main(["publish", "models:/no-such-model@champion", "--store", (tmp_path / "store").as_uri()])


def test_describe_names_the_fix_for_common_failures(tmp_path: Path) -> None:
    from botocore.exceptions import NoCredentialsError, NoRegionError

    assert "configure AWS credentials" in describe(NoCredentialsError())
    assert "AWS_REGION" in describe(NoRegionError())
    missing = tmp_path / "absent.csv"
    with pytest.raises(FileNotFoundError) as info:
        missing.open()
    assert describe(info.value) == f"no such file: {missing}"
    assert describe(ValueError("bad\nsecond line")) == "ValueError: bad"
    assert demo_tracking_uri(tmp_path) == f"sqlite:///{tmp_path.resolve()}/.data/mlflow.db"
