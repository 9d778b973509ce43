"""The request body limit has one default: the runtime's, the deployed stack's (cdk.json)
and the one the docs state were 5 MiB in some places and 6 MiB in others."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mlserve.config import Settings
from mlserve.http import DEFAULT_BODY_LIMIT

ROOT = Path(__file__).resolve().parents[2]
# "MLSERVE_MAX_BODY_BYTES` (5 MiB ...", "MLSERVE_MAX_BODY_BYTES` (context ..., default 5 MiB"
STATED_DEFAULT = re.compile(r"MLSERVE_MAX_BODY_BYTES`[^.;]{0,80}?(\d+) MiB")


def test_runtime_and_stack_share_one_body_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    assert DEFAULT_BODY_LIMIT == 5 * 1024 * 1024
    assert Settings(store_uri="file:///x", model_name="m").max_body_bytes == DEFAULT_BODY_LIMIT
    monkeypatch.delenv("MLSERVE_MAX_BODY_BYTES", raising=False)
    monkeypatch.setenv("MLSERVE_STORE", "file:///x")
    monkeypatch.setenv("MLSERVE_MODEL_NAME", "m")
    assert Settings.from_env().max_body_bytes == DEFAULT_BODY_LIMIT
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    assert context["max_body_bytes"] == DEFAULT_BODY_LIMIT


def test_docs_state_the_same_body_limit() -> None:
    stated = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for match in STATED_DEFAULT.finditer(doc.read_text()):
            stated.append((doc.name, int(match.group(1))))
    assert stated, "the README states MLSERVE_MAX_BODY_BYTES' default"
    assert {mib for _, mib in stated} == {DEFAULT_BODY_LIMIT // 2**20}, stated
