"""Docker-free asset bundling: the third-party deps layer (pip with Lambda platform tags)
and the function code packages.

The deps layer is built with ``pip install --platform ... --only-binary=:all:`` so a
laptop or CI runner without Docker produces wheels for Lambda's OS, CPU and Python. The
pruned result is cached under ``.cache/layers/<hash>`` so only the first synth pays for it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

REPO_ROOT = Path(__file__).resolve().parent.parent
DEPS_REQUIREMENTS = REPO_ROOT / "layers" / "deps" / "requirements.txt"
COMMON_LAYER_DIR = REPO_ROOT / "layers" / "common"
DEFAULT_CACHE_ROOT = REPO_ROOT / ".cache" / "layers"

# The Lambda runtime ships these; bundling our own copy only costs ~25 MB of the 250 MB.
RUNTIME_PROVIDED_PACKAGES = ("boto3", "botocore", "s3transfer")
PRUNED_DIR_NAMES = frozenset({"tests", "__pycache__"})
PRUNED_SUFFIXES = (".pyi", ".pyc")
# Bump when the pruning rules change so stale cache entries are not reused.
PRUNE_RULES_VERSION = "1"
_CACHE_COMPLETE_MARKER = ".complete"

# Local bundling always succeeds or raises, so this image is never pulled.
UNUSED_DOCKER_IMAGE = DockerImage.from_registry("unused-local-bundling-only")


def pip_platform_tags(architecture: str) -> list[str]:
    """Both tags: with only manylinux2014, pip silently falls back to old releases that
    still publish that tag; with only manylinux_2_28 it misses older-tagged wheels."""
    machine = {"arm64": "aarch64", "x86_64": "x86_64"}.get(architecture)
    if machine is None:
        raise ValueError(f"architecture must be arm64 or x86_64, got {architecture!r}")
    return [f"manylinux_2_28_{machine}", f"manylinux2014_{machine}"]


def deps_layer_hash(requirements: Path, architecture: str, python_version: str) -> str:
    """Identity of a built layer: same requirements + platform + Python -> same bytes."""
    digest = hashlib.sha256()
    digest.update(requirements.read_bytes())
    digest.update(f"\0{architecture}\0{python_version}\0{PRUNE_RULES_VERSION}".encode())
    return digest.hexdigest()


def pip_install_command(requirements: Path, target: Path, architecture: str, python_version: str) -> list[str]:
    platform_args: list[str] = []
    for tag in pip_platform_tags(architecture):
        platform_args += ["--platform", tag]
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-input",
        "--no-compile",
        "-r",
        str(requirements),
        "--target",
        str(target),
        *platform_args,
        "--python-version",
        python_version,
        "--implementation",
        "cp",
        "--only-binary=:all:",
    ]


def prune_layer(site_dir: Path) -> None:
    """Drop what Lambda never imports: test suites, bytecode, stubs, runtime-provided SDK."""
    for name in RUNTIME_PROVIDED_PACKAGES:
        shutil.rmtree(site_dir / name, ignore_errors=True)
        for dist_info in site_dir.glob(f"{name}-*.dist-info"):
            shutil.rmtree(dist_info, ignore_errors=True)
    # Walk bottom-up so removing a directory never disturbs the walk.
    for dirpath, dirnames, filenames in os.walk(site_dir, topdown=False):
        current = Path(dirpath)
        for filename in filenames:
            if filename.endswith(PRUNED_SUFFIXES):
                (current / filename).unlink()
        for dirname in dirnames:
            if dirname in PRUNED_DIR_NAMES:
                shutil.rmtree(current / dirname, ignore_errors=True)


def directory_size(path: Path) -> int:
    """Bytes on disk as Lambda counts them: the sum of regular file sizes, unzipped."""
    total = 0
    for dirpath, _dirnames, filenames in os.walk(path):
        for filename in filenames:
            file_path = Path(dirpath) / filename
            if not file_path.is_symlink():
                total += file_path.stat().st_size
    return total


def _copy_tree(source: Path, destination: Path) -> None:
    """Hard-link when possible: copying ~240 MB on every synth is the slow part."""

    def link_or_copy(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, destination, copy_function=link_or_copy, dirs_exist_ok=True)


def cached_deps_site(
    *,
    architecture: str,
    python_version: str,
    requirements: Path = DEPS_REQUIREMENTS,
    cache_root: Path = DEFAULT_CACHE_ROOT,
) -> Path:
    """The pruned deps (a site-packages dir) in the cache, built with pip at most once."""
    cached = cache_root / deps_layer_hash(requirements, architecture, python_version)
    if not (cached / _CACHE_COMPLETE_MARKER).exists():
        cache_root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="building-", dir=cache_root))
        try:
            site_dir = staging / "python"
            command = pip_install_command(requirements, site_dir, architecture, python_version)
            started = time.monotonic()
            print(
                f"mlserve: building deps layer for {architecture}/python{python_version} "
                f"(cached afterwards in {cached})",
                file=sys.stderr,
            )
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise RuntimeError(
                    "pip could not build the deps layer for "
                    f"{architecture}/python{python_version}:\n{result.stderr or result.stdout}"
                )
            prune_layer(site_dir)
            (staging / _CACHE_COMPLETE_MARKER).write_text(f"{time.monotonic() - started:.1f}s\n")
            # Another synth may have finished the same build meanwhile: keep the first one.
            if not (cached / _CACHE_COMPLETE_MARKER).exists():
                shutil.rmtree(cached, ignore_errors=True)  # a half-built leftover
                with contextlib.suppress(OSError):
                    staging.rename(cached)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return cached / "python"


def build_deps_layer(
    output_dir: Path,
    *,
    architecture: str,
    python_version: str,
    requirements: Path = DEPS_REQUIREMENTS,
    cache_root: Path = DEFAULT_CACHE_ROOT,
) -> Path:
    """Put the pruned deps layer (``python/...``) into output_dir, building it at most once."""
    site_dir = cached_deps_site(
        architecture=architecture, python_version=python_version, requirements=requirements, cache_root=cache_root
    )
    output_dir.mkdir(parents=True, exist_ok=True)
    _copy_tree(site_dir, output_dir / "python")
    return output_dir


@jsii.implements(ILocalBundling)
class PipLayerBundler:
    """CDK local bundler for the deps layer; never falls back to Docker."""

    def __init__(self, *, architecture: str, python_version: str, cache_root: Path) -> None:
        self.architecture = architecture
        self.python_version = python_version
        self.cache_root = cache_root

    # jsii passes the BundlingOptions struct positionally; we need none of it.
    def try_bundle(self, output_dir: str, options: Any = None) -> bool:
        build_deps_layer(
            Path(output_dir),
            architecture=self.architecture,
            python_version=self.python_version,
            cache_root=self.cache_root,
        )
        return True


def _ignore_bytecode(_directory: str, names: list[str]) -> set[str]:
    return {name for name in names if name == "__pycache__" or name.endswith(".pyc")}


@jsii.implements(ILocalBundling)
class CopyPackagesBundler:
    """Copies whole Python packages (e.g. ``lambda_api/``) so the handler string
    ``lambda_api.handler.handler`` imports them as packages, without the repo root."""

    def __init__(self, packages: Iterable[Path]) -> None:
        self.packages = tuple(packages)

    def try_bundle(self, output_dir: str, options: Any = None) -> bool:
        for package in self.packages:
            shutil.copytree(
                package,
                Path(output_dir) / package.name,
                ignore=_ignore_bytecode,
                dirs_exist_ok=True,
            )
        return True


def _source_hash(paths: Iterable[Path]) -> str:
    digest = hashlib.sha256()
    # By package name, not absolute path: the hash must not depend on where the checkout is.
    for root in sorted(paths, key=lambda path: path.name):
        for file_path in sorted(root.rglob("*")):
            if (
                file_path.is_file()
                and not _ignore_bytecode("", [file_path.name])
                and ("__pycache__" not in file_path.parts)
            ):
                digest.update(str(file_path.relative_to(root.parent)).encode())
                digest.update(b"\0")
                digest.update(file_path.read_bytes())
    return digest.hexdigest()


def deps_layer_code(*, architecture: str, python_version: str, cache_root: Path = DEFAULT_CACHE_ROOT) -> lambda_.Code:
    return lambda_.Code.from_asset(
        str(DEPS_REQUIREMENTS.parent),
        # Hashing the inputs (not the 240 MB output) keeps the asset id stable and cheap.
        asset_hash=deps_layer_hash(DEPS_REQUIREMENTS, architecture, python_version),
        asset_hash_type=AssetHashType.CUSTOM,
        bundling=BundlingOptions(
            image=UNUSED_DOCKER_IMAGE,
            # jsii protocols spell the options as keywords, but jsii's callback dispatch passes
            # them positionally to our signature; the cast tells mypy it conforms.
            local=cast(
                ILocalBundling,
                PipLayerBundler(architecture=architecture, python_version=python_version, cache_root=cache_root),
            ),
        ),
    )


def common_layer_code() -> lambda_.Code:
    # layers/common already has the python/mlserve layout Lambda expects for layers.
    return lambda_.Code.from_asset(
        str(COMMON_LAYER_DIR), exclude=["**/__pycache__", "**/__pycache__/**", "*.pyc", "*.egg-info", "*.egg-info/**"]
    )


def _function_packages(package_names: Iterable[str]) -> list[Path]:
    packages = [REPO_ROOT / name for name in package_names]
    missing = [str(path) for path in packages if not (path / "__init__.py").is_file()]
    if missing:
        raise FileNotFoundError(f"function packages not found (need __init__.py): {missing}")
    return packages


def function_code(*package_names: str) -> lambda_.Code:
    """Code asset holding only the named top-level packages of the repo."""
    packages = _function_packages(package_names)
    return lambda_.Code.from_asset(
        str(REPO_ROOT),
        asset_hash=_source_hash(packages),
        asset_hash_type=AssetHashType.CUSTOM,
        bundling=BundlingOptions(image=UNUSED_DOCKER_IMAGE, local=cast(ILocalBundling, CopyPackagesBundler(packages))),
    )


# bundle_deps=function: what the two layers hold goes into each function's own code asset.
COMMON_PACKAGE_DIR = COMMON_LAYER_DIR / "python" / "mlserve"


@jsii.implements(ILocalBundling)
class BundledFunctionBundler:
    """A function asset that needs no layers: the pruned third-party deps (hard-linked from
    the same cache the deps layer uses, so no second pip run), the ``mlserve`` package and
    the function's own packages, all at the asset root. Lambda puts the code directory
    (/var/task) on ``sys.path``, so ``import numpy`` and ``import mlserve`` work as with
    layers (whose ``python/`` dir lands on ``sys.path`` the same way)."""

    def __init__(self, packages: Iterable[Path], *, architecture: str, python_version: str, cache_root: Path) -> None:
        self.packages = tuple(packages)
        self.architecture = architecture
        self.python_version = python_version
        self.cache_root = cache_root

    def try_bundle(self, output_dir: str, options: Any = None) -> bool:
        output = Path(output_dir)
        site_dir = cached_deps_site(
            architecture=self.architecture, python_version=self.python_version, cache_root=self.cache_root
        )
        clashes = sorted({p.name for p in (COMMON_PACKAGE_DIR, *self.packages)} & {p.name for p in site_dir.iterdir()})
        if clashes:
            raise RuntimeError(f"packages {clashes} exist both in the deps and in mlserve's own code")
        _copy_tree(site_dir, output)
        CopyPackagesBundler([COMMON_PACKAGE_DIR, *self.packages]).try_bundle(output_dir)
        return True


def bundled_function_hash(packages: Iterable[Path], *, architecture: str, python_version: str) -> str:
    """Identity of a self-contained function asset, from its inputs only (never the ~240 MB
    output): the function's packages, the mlserve package and the deps build's own hash."""
    digest = hashlib.sha256(b"bundle_deps=function\0")
    digest.update(_source_hash([*packages, COMMON_PACKAGE_DIR]).encode())
    digest.update(b"\0")
    digest.update(deps_layer_hash(DEPS_REQUIREMENTS, architecture, python_version).encode())
    return digest.hexdigest()


def bundled_function_code(
    *package_names: str, architecture: str, python_version: str, cache_root: Path = DEFAULT_CACHE_ROOT
) -> lambda_.Code:
    """Code asset with the named top-level packages plus everything the layers would add."""
    packages = _function_packages(package_names)
    return lambda_.Code.from_asset(
        str(REPO_ROOT),
        asset_hash=bundled_function_hash(packages, architecture=architecture, python_version=python_version),
        asset_hash_type=AssetHashType.CUSTOM,
        bundling=BundlingOptions(
            image=UNUSED_DOCKER_IMAGE,
            local=cast(
                ILocalBundling,
                BundledFunctionBundler(
                    packages, architecture=architecture, python_version=python_version, cache_root=cache_root
                ),
            ),
        ),
    )
