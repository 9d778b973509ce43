"""`pip install .` builds a wheel with the whole runtime: every subpackage of mlserve and the
functions, the page and the vendored Swagger UI (so /docs works offline), and setuptools
has nothing to warn about. The old explicit `packages` list shipped mlserve without
mlserve.batch, mlserve.monitoring and mlserve.promotion and printed a BuildBackendWarning
about mlserve.static on every install."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.infra.conftest import REPO_ROOT

PACKAGE_ROOTS = {
    "mlserve": REPO_ROOT / "layers/common/python/mlserve",
    "lambda_api": REPO_ROOT / "lambda_api",
    "lambda_batch": REPO_ROOT / "lambda_batch",
    "lambda_promote": REPO_ROOT / "lambda_promote",
}


def _source_files() -> set[str]:
    """Every file a wheel must hold: modules, py.typed and the static assets, as wheel paths."""
    files = set()
    for package, root in PACKAGE_ROOTS.items():
        for path in root.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                files.add(f"{package}/{path.relative_to(root).as_posix()}")
    return files


@pytest.mark.slow
def test_wheel_holds_every_subpackage_and_the_static_assets_without_warnings(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for root in PACKAGE_ROOTS.values():
        shutil.copytree(root, source / root.relative_to(REPO_ROOT), ignore=ignore)
    # Build isolation installs the setuptools pyproject.toml asks for, as `pip install` does.
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path / "dist"), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout + result.stderr
    if result.returncode != 0 and ("Could not find a version" in output or "NewConnectionError" in output):
        pytest.skip(f"no package index to fetch the build backend from: {output.strip().splitlines()[-1]}")
    assert result.returncode == 0, output
    assert "BuildBackendWarning" not in output and "is absent from the `packages` configuration" not in output, output
    (wheel,) = (tmp_path / "dist").glob("mlserve-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = {name for name in archive.namelist() if not name.startswith("mlserve-")}
    missing = _source_files() - shipped
    assert not missing, f"not in the wheel: {sorted(missing)}"
    assert {"mlserve/static/swagger-ui-bundle.js", "mlserve/static/swagger-ui.css", "mlserve/py.typed"} <= shipped
