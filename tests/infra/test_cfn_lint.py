"""cfn-lint on the synthesized template (the one `cdk deploy` would send)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.infra.conftest import Synth, synth

# Ignored, with the reason:
# W3005: CDK adds DependsOn on the execution role to every Lambda function (so the role's
#        policy exists before the first invoke) even where Fn::GetAtt already implies it;
#        the redundancy is harmless and not ours to remove.
IGNORED_CHECKS = ["W3005"]


def cfn_lint(result: Synth, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    template_path = tmp_path / "Mlserve.template.json"
    template_path.write_text(json.dumps(result.template.to_json(), indent=1))
    cfn_lint_bin = Path(sys.executable).with_name("cfn-lint")
    command = [str(cfn_lint_bin), "--ignore-checks", *IGNORED_CHECKS, "--", str(template_path)]
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)


def test_default_template_is_cfn_lint_clean(default_synth: Synth, tmp_path: Path) -> None:
    result = cfn_lint(default_synth, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "context",
    [
        {"auth": "iam", "environment": "prod", "upload_cors_origins": ["https://app.example.com"]},
        {"architecture": "x86_64"},
        {"bundle_deps": "function"},
    ],
)
def test_variants_are_cfn_lint_clean(context: dict[str, Any], tmp_path: Path) -> None:
    result = cfn_lint(synth(**context), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
