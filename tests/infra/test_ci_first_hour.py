"""CI runs what a fresh clone cannot: the suites on the functions' own Python (cdk.json's
python_runtime) and the browser suite through `make browser` (Chromium via apt), while
`make test` itself needs no root."""

from __future__ import annotations

import json
import re

import yaml

from tests.infra.conftest import REPO_ROOT


def test_a_ci_job_runs_the_suites_on_the_functions_python() -> None:
    runtime = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]["python_runtime"]
    version = runtime.removeprefix("python")
    jobs = yaml.safe_load((REPO_ROOT / ".github/workflows/ci.yml").read_text())["jobs"]
    on_runtime = [
        job
        for job in jobs.values()
        if any(step.get("with", {}).get("python-version") == version for step in job["steps"])
    ]
    assert on_runtime, f"no CI job sets up Python {version} (the functions' {runtime})"
    commands = " ".join(step.get("run", "") for step in on_runtime[0]["steps"])
    assert f"PYTHON={runtime}" in commands and "pytest" in commands and "tests/unit" in commands


def test_ci_entry_point_runs_the_browser_suite_and_make_test_installs_no_browser() -> None:
    ci_run = (REPO_ROOT / ".ci/run").read_text()
    assert re.search(r"^make browser$", ci_run, re.MULTILINE)
    makefile = (REPO_ROOT / "Makefile").read_text()
    test_rule = re.search(r"^test:(.*)$", makefile, re.MULTILINE)
    assert test_rule and "browser-deps" not in test_rule.group(1)
    assert "skipping the browser suite" in makefile


def test_docs_ask_for_node_22_or_newer() -> None:
    """Node 20 is end-of-life and the pinned CDK CLI warns on it: an older Node may only be
    named on a line that also says "Node 22+" or why it is not enough."""
    for path in [REPO_ROOT / "README.md", REPO_ROOT / ".ci/run", *sorted((REPO_ROOT / "docs").glob("*.md"))]:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            for match in re.finditer(r"Node(?:\.js)? (\d+)", line):
                if int(match.group(1)) < 22:
                    assert "Node 22+" in line or "end-of-life" in line, f"{path.name}:{number}: {line.strip()}"
