"""`app.py` as the CDK CLI runs it: context from cdk.json (+ -c) arrives via CDK_CONTEXT_JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.infra.conftest import CDK_JSON_CONTEXT, REPO_ROOT


def run_app(tmp_path: Path, **overrides: Any) -> subprocess.CompletedProcess[str]:
    context = {**CDK_JSON_CONTEXT, **overrides, "aws:cdk:bundling-stacks": []}
    env = {
        **os.environ,
        "CDK_CONTEXT_JSON": json.dumps(context),
        "CDK_OUTDIR": str(tmp_path),
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
    }
    return subprocess.run(
        [sys.executable, "app.py"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_cdk_json_runs_app_py_with_the_venv_python() -> None:
    assert json.loads((REPO_ROOT / "cdk.json").read_text())["app"] == ".venv/bin/python app.py"


def test_app_synthesizes_the_stack(tmp_path: Path) -> None:
    result = run_app(tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    template = json.loads((tmp_path / "Mlserve.template.json").read_text())
    assert {
        "ApiUrl",
        "ApiKeyId",
        "ModelBucketName",
        "BatchBucketName",
        "EventBusName",
        "WebhookUrl",
        "WebhookSecretArn",
    } <= set(template["Outputs"])
    report = json.loads((tmp_path / "validation-report.json").read_text())
    assert all(plugin["violations"] == [] for plugin in report["pluginReports"])


def test_bad_context_is_one_clear_line_not_a_traceback(tmp_path: Path) -> None:
    result = run_app(tmp_path, architecture="foo")
    assert result.returncode == 1
    assert "mlserve: context 'architecture' must be arm64 or x86_64, got 'foo'" in result.stderr
    assert "Traceback" not in result.stderr
