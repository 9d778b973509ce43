"""`make venv` takes the first Python >= 3.11 it finds (python3.13, python3.12, python3.11,
python3), not only `python3.11`, and checks the version of whatever it takes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAKE = shutil.which("make")
pytestmark = pytest.mark.skipif(MAKE is None, reason="make is not installed")


def _fake_bin(tmp_path: Path, interpreters: dict[str, str]) -> Path:
    """A directory of interpreters: name -> "real" (this Python) or "old" (fails the 3.11 check)."""
    directory = tmp_path / "bin"
    directory.mkdir()
    for name, kind in interpreters.items():
        path = directory / name
        if kind == "real":
            path.symlink_to(sys.executable)
        else:  # an interpreter too old for the code: exits non-zero on the version check
            path.write_text('#!/bin/sh\n[ "$1" = "-V" ] && echo "Python 3.10.13" && exit 0\nexit 1\n')
            path.chmod(0o755)
    return directory


def _make_python(tmp_path: Path, path_dirs: list[Path], *args: str) -> subprocess.CompletedProcess[str]:
    # The system directories stay on PATH (make and sh live there) after the fake ones.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHON", "MAKEFLAGS", "MAKELEVEL")}
    env["PATH"] = os.pathsep.join([*map(str, path_dirs), env.get("PATH", "")])
    return subprocess.run(
        [str(MAKE), "-s", "--no-print-directory", "python", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_takes_the_first_python_that_is_new_enough(tmp_path: Path) -> None:
    fake = _fake_bin(tmp_path, {"python3.13": "old", "python3.12": "real"})
    result = _make_python(tmp_path, [fake])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("python: python3.12 ("), result.stdout


def test_an_explicit_python_that_is_too_old_is_refused_with_its_version(tmp_path: Path) -> None:
    fake = _fake_bin(tmp_path, {"python3.10": "old"})
    result = _make_python(tmp_path, [fake], "PYTHON=python3.10")
    assert result.returncode != 0
    assert "make: PYTHON=python3.10 is Python 3.10.13; need Python 3.11+" in result.stdout + result.stderr
