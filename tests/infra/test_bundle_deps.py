"""Context ``bundle_deps=function`` (LocalStack's free edition has no Lambda layers): no
LayerVersion, and every function's own code asset holds the deps and the mlserve package."""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra import bundling
from infra.bundling import (
    BundledFunctionBundler,
    bundled_function_hash,
    deps_layer_hash,
    directory_size,
)
from tests.infra.conftest import Synth, synth
from tests.infra.test_layer_size import ELF_MACHINE, LAMBDA_UNZIPPED_LIMIT_BYTES, asset_dir, mb

REPO_ROOT = bundling.REPO_ROOT


@pytest.fixture(scope="module")
def function_synth() -> Synth:
    return synth(bundle_deps="function")


def python_functions(result: Synth) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource["Properties"]
        for logical_id, resource in result.of_type("AWS::Lambda::Function").items()
        # Ours; not CDK's own handlers (bucket notifications, auto-delete objects).
        if str(resource["Properties"].get("Handler", "")).startswith("lambda_")
    }


def test_no_layers_in_the_template(function_synth: Synth) -> None:
    assert function_synth.of_type("AWS::Lambda::LayerVersion") == {}
    functions = python_functions(function_synth)
    # api, batch, redeploy, webhook, drift job, and the fan-out's plan, range, merge and fail steps
    assert len(functions) == 9
    for properties in functions.values():
        assert "Layers" not in properties
    stack = function_synth.stack
    assert stack.deps_layer is None and stack.common_layer is None


def test_functions_are_otherwise_the_same_as_with_layers(default_synth: Synth, function_synth: Synth) -> None:
    def comparable(result: Synth) -> dict[str, dict[str, Any]]:
        return {
            logical_id: {k: v for k, v in properties.items() if k not in {"Code", "Layers"}}
            for logical_id, properties in python_functions(result).items()
        }

    assert comparable(function_synth) == comparable(default_synth)
    # a deps layer per distinct function set (api; batch + redeploy; webhook) + the mlserve layer
    assert len(default_synth.of_type("AWS::Lambda::LayerVersion")) == 4


def test_each_function_package_gets_its_own_asset(function_synth: Synth, default_synth: Synth) -> None:
    keys = {p["Code"]["S3Key"] for p in python_functions(function_synth).values()}
    assert len(keys) == 3  # lambda_api, lambda_batch, lambda_promote (redeploy + webhook share it)
    layer_mode_keys = {p["Code"]["S3Key"] for p in python_functions(default_synth).values()}
    assert keys.isdisjoint(layer_mode_keys)


def test_asset_hash_is_derived_from_the_inputs(tmp_path: Path) -> None:
    packages = [REPO_ROOT / "lambda_api"]
    base = bundled_function_hash(packages, architecture="arm64", python_version="3.14")
    assert base == bundled_function_hash(packages, architecture="arm64", python_version="3.14")
    assert base != bundled_function_hash(packages, architecture="x86_64", python_version="3.14")
    assert base != bundled_function_hash(packages, architecture="arm64", python_version="3.11")
    assert base != bundled_function_hash([REPO_ROOT / "lambda_batch"], architecture="arm64", python_version="3.14")
    # A change in the function's own code changes it too.
    copy = tmp_path / "lambda_api"  # the whole package (it has a routers/ subpackage)
    shutil.copytree(REPO_ROOT / "lambda_api", copy, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    assert bundled_function_hash([copy], architecture="arm64", python_version="3.14") == base
    (copy / "handler.py").write_text((copy / "handler.py").read_text() + "\n# changed\n")
    assert bundled_function_hash([copy], architecture="arm64", python_version="3.14") != base


def fake_cache(cache: Path, architecture: str, python_version: str, names: list[str]) -> None:
    site = cache / deps_layer_hash(bundling.DEPS_REQUIREMENTS, architecture, python_version) / "python"
    for name in names:
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_text("x")
    (site.parent / ".complete").write_text("0s\n")


def test_bundler_reuses_the_cached_deps_build_without_pip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_pip(*_: Any, **__: Any) -> None:
        raise AssertionError("pip must not run: the deps build is cached")

    monkeypatch.setattr(bundling.subprocess, "run", no_pip)
    cache = tmp_path / "cache"
    fake_cache(cache, "arm64", "3.14", ["numpy/__init__.py", "sklearn/__init__.py"])
    out = tmp_path / "asset"
    out.mkdir()
    bundler = BundledFunctionBundler(
        [REPO_ROOT / "lambda_api"], architecture="arm64", python_version="3.14", cache_root=cache
    )
    assert bundler.try_bundle(str(out)) is True
    assert sorted(p.name for p in out.iterdir()) == ["lambda_api", "mlserve", "numpy", "sklearn"]
    assert (out / "mlserve" / "__init__.py").is_file() and (out / "lambda_api" / "handler.py").is_file()
    assert not list(out.rglob("__pycache__"))


def test_bundler_refuses_a_package_that_shadows_a_dependency(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    fake_cache(cache, "arm64", "3.14", ["mlserve/__init__.py"])
    bundler = BundledFunctionBundler(
        [REPO_ROOT / "lambda_api"], architecture="arm64", python_version="3.14", cache_root=cache
    )
    (tmp_path / "asset").mkdir()
    with pytest.raises(RuntimeError, match="mlserve"):
        bundler.try_bundle(str(tmp_path / "asset"))


# --- real builds (reuse .cache/layers; the first run pays pip's download once) ----------------


@pytest.fixture(scope="module")
def bundled_function_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synth(bundle=True, bundle_deps="function", outdir=str(tmp_path_factory.mktemp("cdk.out")))


@pytest.mark.slow
def test_api_asset_holds_deps_mlserve_and_handler_at_its_root_under_the_limit(
    bundled_function_synth: Synth,
) -> None:
    result = bundled_function_synth
    outdir = Path(result.app.synth().directory)
    code = asset_dir(result, outdir, result.logical_id(result.stack.online_api.function))
    for package in ("numpy", "sklearn", "mlserve", "lambda_api", "pandas", "fastapi", "mangum"):
        assert (code / package / "__init__.py").is_file(), package
    assert (code / "lambda_api" / "handler.py").is_file()
    for runtime_provided in ("boto3", "botocore", "s3transfer"):
        assert not (code / runtime_provided).exists()
    assert not (code / "python").exists() and not (code / "infra").exists() and not (code / "layers").exists()
    assert not list(code.rglob("__pycache__"))
    # Binaries for the declared architecture, as in the deps layer.
    extension = next((code / "numpy").rglob("*.so"))
    header = extension.read_bytes()[:20]
    assert int.from_bytes(header[18:20], "little") == ELF_MACHINE[result.stack.config.architecture]
    size = directory_size(code)
    print(f"\nbundled api function asset: {mb(size)} of {mb(LAMBDA_UNZIPPED_LIMIT_BYTES)}")
    assert size < LAMBDA_UNZIPPED_LIMIT_BYTES


HOST_ARCHITECTURE = {"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine())


@pytest.mark.slow
@pytest.mark.skipif(HOST_ARCHITECTURE is None, reason=f"no Lambda architecture for {platform.machine()}")
def test_host_built_asset_imports_from_its_own_root(tmp_path: Path) -> None:
    """Built for this machine (as for an emulator), the asset alone is importable the way
    Lambda imports it: the code dir first on sys.path, then the runtime's (boto3) packages."""
    assert HOST_ARCHITECTURE is not None
    code = tmp_path / "asset"
    code.mkdir()
    python_version = f"{sys.version_info.major}.{sys.version_info.minor}"
    BundledFunctionBundler(
        [REPO_ROOT / "lambda_api"],
        architecture=HOST_ARCHITECTURE,
        python_version=python_version,
        cache_root=bundling.DEFAULT_CACHE_ROOT,
    ).try_bundle(str(code))
    import boto3

    runtime_site = Path(str(boto3.__file__)).parent.parent  # stands in for /var/runtime
    script = (
        "import sys; sys.path[:0] = [sys.argv[1]]; sys.path.append(sys.argv[2]);\n"
        "import numpy, sklearn, mlserve, lambda_api.handler\n"
        "for module in (numpy, sklearn, mlserve, lambda_api.handler):\n"
        "    assert module.__file__.startswith(sys.argv[1]), module.__file__\n"
    )
    result = subprocess.run(
        [sys.executable, "-S", "-c", script, str(code), str(runtime_site)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert result.returncode == 0, result.stderr
