"""docs/deploy.md tells a first-time deployer, before the settings table and the first
`cdk deploy`: the new-account concurrency limit, the AWS CLI and credentials, the region,
and what the stack costs idle and per million predictions, with the arithmetic."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = (ROOT / "docs/deploy.md").read_text()


def _before_settings() -> str:
    return DEPLOY.split("\n## Settings\n", 1)[0]


def test_first_things_come_before_the_settings_and_the_first_deploy() -> None:
    head = _before_settings()
    assert "npx cdk deploy" not in head
    for needed in ("concurrency quota", "L-B99A9384", "AWS CLI v2", "aws sts get-caller-identity", "**Region.**"):
        assert needed in head, needed


def test_cost_estimate_matches_the_configured_memory() -> None:
    """The idle SnapStart line is computed from cdk.json's memory sizes: keep them in step."""
    functions = json.loads((ROOT / "cdk.json").read_text())["context"]["functions"]
    cached_gb = sum(functions[kind]["memory_mb"] for kind in ("api", "batch", "promote")) / 1024
    assert cached_gb == 2 + 2.9375 + 2
    head = _before_settings()
    assert "(2 + 2.9375 + 2) GB \u00d7 2,592,000 s \u00d7 $0.0000015046" in head
    assert f"**${cached_gb * 2_592_000 * 0.0000015046:.2f}**" in head
    assert "Per million `/predict` requests" in head and "$3.50 per million" in head
