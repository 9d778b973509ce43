"""A dependency set per function (issue 12): derived from the import trace, pinned by
requirements.txt, locked with hashes, and enforced at synth."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from types import ModuleType

import pytest

from infra import bundling
from infra.bundling import DEPS_REQUIREMENTS, FUNCTION_SETS, function_lock, lock_pins
from infra.dependency_check import HANDLER_MODULES, MissingDependencyError, check_function_imports, reachable_imports

HEAVY = {"numpy", "scipy", "pandas", "scikit-learn"}


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"deps_{name}", DEPS_REQUIREMENTS.parent / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sets() -> dict[str, list[str]]:
    return dict(json.loads(FUNCTION_SETS.read_text()))


def test_every_function_has_a_traced_set_and_the_webhook_carries_no_numpy_stack() -> None:
    assert set(sets()) == set(HANDLER_MODULES)
    assert not HEAVY & set(sets()["webhook"])
    for kind in ("api", "batch", "promote"):
        assert set(sets()[kind]) >= HEAVY, kind
    # never-imported distributions the full pin list drags in are gone from every set
    for kind, dists in sets().items():
        assert not {"wcwidth", "prettytable", "tzdata", "opentelemetry-sdk", "uvicorn", "boto3"} & set(dists), kind
    # fastapi itself imports opentelemetry-api (a requirement of it): only the API keeps it
    assert "opentelemetry-api" in sets()["api"] and "opentelemetry-api" not in sets()["batch"]
    assert "fastapi" in sets()["api"] and "fastapi" not in sets()["batch"]


def test_the_trace_script_and_the_build_check_agree_on_the_handlers() -> None:
    trace = load_script("trace_imports")
    assert {kind: handler for kind, (handler, _tests) in trace.FUNCTIONS.items()} == HANDLER_MODULES


def test_locks_match_the_pins_and_the_sets_and_carry_hashes() -> None:
    lock = load_script("lock")
    for kind in HANDLER_MODULES:
        path = function_lock(kind)  # raises when stale
        assert lock.out_of_date(kind) is None
        text = path.read_text()
        for pin in lock_pins(path):
            block = text.split(pin, 1)[1].split("==", 1)[0]
            assert "--hash=sha256:" in block, f"{kind}: {pin} has no hash"


def test_a_stale_lock_fails_the_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(DEPS_REQUIREMENTS.read_text().replace("orjson==3.13.0", "orjson==3.13.1"))
    shutil.copy(DEPS_REQUIREMENTS.parent / "lock.py", tmp_path / "lock.py")
    monkeypatch.setattr(bundling, "DEPS_REQUIREMENTS", requirements)
    with pytest.raises(RuntimeError, match=r"locks/api.txt is out of date .*orjson==3.13.1.*lock.py"):
        function_lock("api")


def test_a_function_importing_outside_its_set_fails_the_build(tmp_path: Path) -> None:
    narrowed = {**sets(), "webhook": [d for d in sets()["webhook"] if d != "aws-lambda-powertools"]}
    path = tmp_path / "functions.json"
    path.write_text(json.dumps(narrowed))
    with pytest.raises(MissingDependencyError) as error:
        check_function_imports("webhook", path)
    assert "mlserve.observability imports 'aws_lambda_powertools'" in str(error.value)
    assert "'webhook'" in str(error.value)


def test_the_static_scan_follows_lazy_imports_and_skips_type_checking_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from infra import dependency_check

    imports = reachable_imports("lambda_api.handler")
    assert imports["cloudpickle"] == "mlserve.loader"  # imported inside a function (opt-in pickle)
    package = tmp_path / "probe_fn"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "handler.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import numpy\n"
        "from . import helper\n"
        "def handle():\n    import yaml\n"
    )
    (package / "helper.py").write_text("import json\nimport orjson\n")
    monkeypatch.setitem(dependency_check.OWN_ROOTS, "probe_fn", tmp_path)
    assert reachable_imports("probe_fn.handler") == {"yaml": "probe_fn.handler", "orjson": "probe_fn.helper"}
