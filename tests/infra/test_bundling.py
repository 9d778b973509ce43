"""The Docker-free bundlers, without building the real layer (see test_layer_size.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra import bundling
from infra.bundling import (
    CopyPackagesBundler,
    build_deps_layer,
    deps_layer_hash,
    function_code,
    pip_install_command,
    pip_platform_tags,
    prune_layer,
)

REQUIREMENTS = bundling.DEPS_REQUIREMENTS


def test_platform_tags_name_both_manylinux_generations() -> None:
    assert pip_platform_tags("arm64") == ["manylinux_2_28_aarch64", "manylinux2014_aarch64"]
    assert pip_platform_tags("x86_64") == ["manylinux_2_28_x86_64", "manylinux2014_x86_64"]
    with pytest.raises(ValueError, match="arm64 or x86_64"):
        pip_platform_tags("riscv")


def test_pip_command_targets_lambda_and_never_builds_from_source(tmp_path: Path) -> None:
    command = pip_install_command(REQUIREMENTS, tmp_path / "python", "arm64", "3.14")
    assert command[:4] == [sys.executable, "-m", "pip", "install"]
    joined = " ".join(command)
    assert f"-r {REQUIREMENTS}" in joined
    assert f"--target {tmp_path / 'python'}" in joined
    assert "--platform manylinux_2_28_aarch64 --platform manylinux2014_aarch64" in joined
    assert "--python-version 3.14" in joined
    assert "--implementation cp" in joined
    assert "--only-binary=:all:" in command


def test_layer_hash_covers_requirements_platform_and_python(tmp_path: Path) -> None:
    base = deps_layer_hash(REQUIREMENTS, "arm64", "3.14")
    assert base == deps_layer_hash(REQUIREMENTS, "arm64", "3.14")
    assert base != deps_layer_hash(REQUIREMENTS, "x86_64", "3.14")
    assert base != deps_layer_hash(REQUIREMENTS, "arm64", "3.13")
    changed = tmp_path / "requirements.txt"
    changed.write_text(REQUIREMENTS.read_text() + "tqdm==4.0.0\n")
    assert base != deps_layer_hash(changed, "arm64", "3.14")


def make_tree(root: Path, files: list[str]) -> None:
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")


def test_prune_removes_tests_bytecode_stubs_and_the_runtime_sdk(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        [
            "numpy/__init__.py",
            "numpy/_core/tests/test_a.py",
            "numpy/__init__.pyi",
            "numpy/__pycache__/x.cpython-314.pyc",
            "pandas/tests/frame/test_b.py",
            "pandas/_testing/__init__.py",
            "boto3/__init__.py",
            "boto3-1.40.0.dist-info/METADATA",
            "botocore/data/s3.json",
            "botocore-1.40.0.dist-info/METADATA",
            "s3transfer/__init__.py",
            "s3transfer-0.14.0.dist-info/METADATA",
            "sklearn/__init__.py",
            "scikit_learn-1.9.1.dist-info/METADATA",
        ],
    )
    prune_layer(tmp_path)
    remaining = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert remaining == [
        "numpy/__init__.py",
        "pandas/_testing/__init__.py",
        "scikit_learn-1.9.1.dist-info/METADATA",
        "sklearn/__init__.py",
    ]


def test_layer_is_built_once_then_copied_from_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []

    def fake_pip(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        calls.append(command)
        target = Path(command[command.index("--target") + 1])
        make_tree(target, ["sklearn/__init__.py", "sklearn/tests/test_x.py", "botocore/__init__.py"])
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(bundling.subprocess, "run", fake_pip)
    cache = tmp_path / "cache"
    for attempt in ("first", "second"):
        out = build_deps_layer(tmp_path / attempt, architecture="arm64", python_version="3.14", cache_root=cache)
        files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
        assert files == ["python/sklearn/__init__.py"]
    assert len(calls) == 1
    key = deps_layer_hash(REQUIREMENTS, "arm64", "3.14")
    assert (cache / key / "python" / "sklearn" / "__init__.py").is_file()
    assert [p.name for p in cache.iterdir()] == [key]  # no half-built staging dirs left


def test_failed_pip_is_reported_and_not_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_pip(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(command, 1, "", "No matching distribution found for numpy==9")

    monkeypatch.setattr(bundling.subprocess, "run", failing_pip)
    cache = tmp_path / "cache"
    with pytest.raises(RuntimeError, match="No matching distribution found"):
        build_deps_layer(tmp_path / "out", architecture="x86_64", python_version="3.14", cache_root=cache)
    assert list(cache.iterdir()) == []


def test_function_bundler_copies_the_package_without_bytecode(tmp_path: Path) -> None:
    source = tmp_path / "src" / "lambda_demo"
    make_tree(source, ["__init__.py", "handler.py", "__pycache__/handler.cpython-311.pyc"])
    out = tmp_path / "asset"
    out.mkdir()
    assert CopyPackagesBundler([source]).try_bundle(str(out), None) is True
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == ["lambda_demo/__init__.py", "lambda_demo/handler.py"]


def test_function_code_refuses_a_missing_package() -> None:
    with pytest.raises(FileNotFoundError, match="lambda_nothing"):
        function_code("lambda_nothing")
