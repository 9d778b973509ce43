"""The GitHub workflows, validated here rather than on first push:

- ``@action-validator/cli`` (pinned in package.json, installed by ``make node``) checks every
  workflow against GitHub's schema (unknown keys, bad ``on``, unresolved ``needs``, ...);
- our policy: every action pinned to a major version (``@vN``), minimal ``permissions`` per
  job (``id-token: write`` only where a job assumes an AWS role, nothing else writable), a
  ``timeout-minutes`` on every job, AWS credentials only through OIDC ``role-to-assume``;
- the delivery workflow's shape: diff on pull requests, dev → smoke → prod on main.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.conftest import REPO_ROOT

WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.y*ml"))
VALIDATOR = REPO_ROOT / "node_modules" / ".bin" / "action-validator"
AWS_CREDENTIALS_ACTION = "aws-actions/configure-aws-credentials"
_PINNED = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@v\d+$")


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def validator_or_skip() -> Path:
    if not VALIDATOR.exists():
        message = f"{VALIDATOR.relative_to(REPO_ROOT)} is missing: run `make node` (npm install) to validate workflows"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI installs it from package.json, so it must run there")
        pytest.skip(message)
    return VALIDATOR


def test_there_are_workflows_to_check() -> None:
    assert {path.name for path in WORKFLOWS} >= {"ci.yml", "deploy.yml"}


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda path: path.name)
def test_action_validator_accepts_the_workflow(workflow: Path) -> None:
    validator = validator_or_skip()
    result = subprocess.run(
        [str(validator), str(workflow)], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT, check=False
    )
    assert result.returncode == 0, f"{workflow.name}:\n{result.stdout}\n{result.stderr}"


def test_action_validator_rejects_a_broken_workflow(tmp_path: Path) -> None:
    """The validator really validates: an unknown step key and an unresolved `needs` fail it."""
    validator = validator_or_skip()
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "name: broken\non: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    needs: [missing]\n"
        "    steps:\n      - uses: actions/checkout@v4\n        wiht: {fetch-depth: 0}\n"
    )
    result = subprocess.run([str(validator), str(broken)], capture_output=True, text=True, timeout=120, check=False)
    report = result.stdout + result.stderr
    assert result.returncode != 0
    assert "unresolved job missing" in report
    assert "Additional property 'wiht' is not allowed" in report


# --- policy ---


def uses_of(job: dict[str, Any]) -> list[str]:
    return [step["uses"] for step in job.get("steps", []) if "uses" in step]


def policy_violations(workflow: dict[str, Any]) -> list[str]:
    """Everything in the workflow that breaks our policy, one line each (empty = fine)."""
    problems: list[str] = []
    default_permissions = workflow.get("permissions")
    for name, job in workflow.get("jobs", {}).items():
        for uses in uses_of(job):
            if not uses.startswith("./") and not _PINNED.match(uses):
                problems.append(f"{name}: {uses} is not pinned to a major version (@vN)")
        if not isinstance(job.get("timeout-minutes"), int) or job["timeout-minutes"] <= 0:
            problems.append(f"{name}: no timeout-minutes")
        permissions = job.get("permissions", default_permissions)
        assumes_role = any(uses.startswith(AWS_CREDENTIALS_ACTION + "@") for uses in uses_of(job))
        if not isinstance(permissions, dict):
            problems.append(f"{name}: permissions must be an explicit map, got {permissions!r}")
            continue
        for scope, level in permissions.items():
            if scope == "id-token" and level == "write":
                if not assumes_role:
                    problems.append(f"{name}: id-token: write but the job assumes no AWS role")
            elif level not in ("read", "none"):
                problems.append(f"{name}: {scope}: {level} (only id-token may be write)")
        if assumes_role and permissions.get("id-token") != "write":
            problems.append(f"{name}: assumes an AWS role without id-token: write (OIDC)")
        for step in job.get("steps", []):
            if str(step.get("uses", "")).startswith(AWS_CREDENTIALS_ACTION + "@"):
                given = step.get("with", {})
                if "role-to-assume" not in given:
                    problems.append(f"{name}: {AWS_CREDENTIALS_ACTION} without role-to-assume")
                if {"aws-access-key-id", "aws-secret-access-key"} & set(given):
                    problems.append(f"{name}: long-lived AWS keys passed to {AWS_CREDENTIALS_ACTION}")
    return problems


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda path: path.name)
def test_workflow_follows_the_policy(workflow: Path) -> None:
    assert policy_violations(load(workflow)) == []


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda path: path.name)
def test_no_stored_aws_keys(workflow: Path) -> None:
    text = workflow.read_text()
    assert "AWS_ACCESS_KEY_ID" not in text and "AWS_SECRET_ACCESS_KEY" not in text
    assert "secrets.AWS" not in text


def test_policy_check_catches_each_violation() -> None:
    bad = {
        "permissions": "write-all",
        "jobs": {
            "unpinned": {
                "runs-on": "ubuntu-latest",
                "timeout-minutes": 5,
                "permissions": {"contents": "read"},
                "steps": [{"uses": "actions/checkout@main"}, {"uses": "actions/setup-node@v4.1.0"}],
            },
            "no_timeout_inherits_write_all": {"runs-on": "ubuntu-latest", "steps": [{"run": "true"}]},
            "token_without_role": {
                "runs-on": "ubuntu-latest",
                "timeout-minutes": 5,
                "permissions": {"contents": "write", "id-token": "write"},
                "steps": [{"run": "true"}],
            },
            "keys": {
                "runs-on": "ubuntu-latest",
                "timeout-minutes": 5,
                "permissions": {"contents": "read"},
                "steps": [
                    {
                        "uses": "aws-actions/configure-aws-credentials@v4",
                        "with": {"aws-access-key-id": "x", "aws-secret-access-key": "y", "aws-region": "eu-west-1"},
                    }
                ],
            },
        },
    }
    assert policy_violations(bad) == [
        "unpinned: actions/checkout@main is not pinned to a major version (@vN)",
        "unpinned: actions/setup-node@v4.1.0 is not pinned to a major version (@vN)",
        "no_timeout_inherits_write_all: no timeout-minutes",
        "no_timeout_inherits_write_all: permissions must be an explicit map, got 'write-all'",
        "token_without_role: contents: write (only id-token may be write)",
        "token_without_role: id-token: write but the job assumes no AWS role",
        "keys: assumes an AWS role without id-token: write (OIDC)",
        "keys: aws-actions/configure-aws-credentials without role-to-assume",
        "keys: long-lived AWS keys passed to aws-actions/configure-aws-credentials",
    ]


# --- the delivery workflow ---


@pytest.fixture(scope="module")
def deploy() -> dict[str, Any]:
    return load(REPO_ROOT / ".github" / "workflows" / "deploy.yml")


def triggers(workflow: dict[str, Any]) -> dict[str, Any]:
    # PyYAML reads the bare key `on` as the boolean True (YAML 1.1).
    found = workflow["on"] if "on" in workflow else workflow[True]  # type: ignore[index]
    assert isinstance(found, dict)
    return found


def run_lines(job: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def test_deploy_runs_on_pull_requests_and_main(deploy: dict[str, Any]) -> None:
    on = triggers(deploy)
    assert "pull_request" in on and on["push"]["branches"] == ["main"]
    assert deploy["permissions"] == {}
    assert deploy["concurrency"]["cancel-in-progress"] is False


def test_pull_requests_get_a_diff_per_environment_in_the_summary(deploy: dict[str, Any]) -> None:
    diff = deploy["jobs"]["diff"]
    assert "github.event_name == 'pull_request'" in diff["if"]
    assert [entry["environment"] for entry in diff["strategy"]["matrix"]["include"]] == ["dev", "prod"]
    assert "environment" not in diff  # no GitHub environment: PR code never gets the deploy role
    script = run_lines(diff)
    assert 'make diff ENV="$TARGET"' in script and "--method=template" in script
    assert "$GITHUB_STEP_SUMMARY" in script


def test_main_deploys_dev_smoke_tests_then_prod_behind_its_environment(deploy: dict[str, Any]) -> None:
    jobs = deploy["jobs"]
    dev, prod = jobs["deploy-dev"], jobs["deploy-prod"]
    assert "refs/heads/main" in dev["if"] and dev["environment"]["name"] == "dev"
    assert prod["needs"] == ["deploy-dev"] and prod["environment"]["name"] == "prod"
    for name, job in (("dev", dev), ("prod", prod)):
        script = run_lines(job)
        assert f"make deploy ENV={name}" in script
        smoke = next(step for step in job["steps"] if "tests/smoke" in step.get("run", ""))
        assert smoke["env"] == {"MLSERVE_SMOKE_STACK": f"Mlserve-{name}", "MLSERVE_SMOKE_REQUIRED": "1"}
        # Deploy first, then the smoke tests with read-only (lookup role) credentials.
        order = [step.get("name", step.get("id", step.get("uses", ""))) for step in job["steps"]]
        assert order.index(f"cdk deploy Mlserve-{name}") < order.index(smoke["name"])
        role_steps = [step for step in job["steps"] if str(step.get("uses", "")).startswith(AWS_CREDENTIALS_ACTION)]
        assert role_steps[0]["with"]["role-to-assume"] == "${{ vars.AWS_ROLE_ARN }}"
        assert "-lookup-role-" in role_steps[1]["with"]["role-to-assume"]
        assert role_steps[1]["with"]["role-chaining"] is True
