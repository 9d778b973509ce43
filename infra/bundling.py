"""Docker-free asset bundling: the third-party deps layer (pip with Lambda platform tags)
and the function code packages.

The deps layer is built with ``pip install --platform ... --only-binary=:all:`` so a
laptop or CI runner without Docker produces wheels for Lambda's OS, CPU and Python. The
pruned result is cached under ``.cache/layers/<hash>`` so only the first synth pays for it.
"""

from __future__ import annotations

import contextlib
import functools
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

from infra.layer_prune import PRUNE_RULES, load_rules, prune_tree

REPO_ROOT = Path(__file__).resolve().parent.parent
DEPS_REQUIREMENTS = REPO_ROOT / "layers" / "deps" / "requirements.txt"
COMMON_LAYER_DIR = REPO_ROOT / "layers" / "common"
# Per-function dependency sets (from layers/deps/trace_imports.py) and their hashed lock
# files (from layers/deps/lock.py): what each function's deps layer installs.
FUNCTION_SETS = DEPS_REQUIREMENTS.parent / "functions.json"
LOCKS_DIR = DEPS_REQUIREMENTS.parent / "locks"
DEFAULT_CACHE_ROOT = REPO_ROOT / ".cache" / "layers"

# What the layer build removes (and strips) lives in layers/deps/prune.toml, one reason per
# rule; infra/layer_prune.py applies it.
# Bump when the pruning rules change so stale cache entries are not reused.
PRUNE_RULES_VERSION = "5"
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
    """Identity of a built layer: same requirements + platform + Python (+ whether this
    machine can add bytecode for it) -> same bytes."""
    digest = hashlib.sha256()
    digest.update(requirements.read_bytes())
    digest.update(f"\0{architecture}\0{python_version}\0{PRUNE_RULES_VERSION}".encode())
    digest.update(PRUNE_RULES.read_bytes())
    if shutil.which(load_rules().strip_command[0] if load_rules().strip_command else "") is None:
        digest.update(b"\0unstripped")  # a machine without the strip tool builds other bytes
    if bytecode_interpreter(python_version) is not None:
        digest.update(b"\0bytecode")
    return digest.hexdigest()


# A layer's share of the 200 MB per-function target (code and the mlserve layer take the
# rest, < 2 MB): bytecode that would push a layer past it is not shipped.
BYTECODE_LAYER_BUDGET_BYTES = 195 * 1024 * 1024


@functools.cache
def bytecode_interpreter(python_version: str) -> str | None:
    """An interpreter of exactly the runtime's X.Y on this machine (PATH or pyenv), or None.
    Bytecode is only valid for the minor version that wrote it."""
    name = f"python{python_version}"
    candidates = [shutil.which(name)]
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += [str(path) for path in sorted(pyenv_root.glob(f"versions/{python_version}.*/bin/{name}"))]
    for candidate in candidates:
        if not candidate:
            continue
        result = subprocess.run(
            [candidate, "-c", "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode == 0 and result.stdout.strip() == python_version:
            return candidate
    return None


def compile_layer(site_dir: Path, python_version: str) -> str:
    """Add bytecode to a built layer when it pays and fits. /opt is read-only in Lambda, so
    without it every new sandbox compiles numpy, pandas, scikit-learn... on import. Written
    with ``unchecked-hash`` invalidation: Lambda never re-validates it against the sources
    (they cannot change), and the files do not depend on the build's timestamps. Returns the
    one line that says what happened."""
    interpreter = bytecode_interpreter(python_version)
    if interpreter is None:
        return (
            f"mlserve: no python{python_version} interpreter on this machine: the deps layer ships "
            "without bytecode (Lambda compiles on first import)"
        )
    before = directory_size(site_dir)
    if before >= BYTECODE_LAYER_BUDGET_BYTES:
        return (
            f"mlserve: deps layer ships without bytecode: it is already {before / 2**20:.0f} MiB, over its "
            f"{BYTECODE_LAYER_BUDGET_BYTES / 2**20:.0f} MiB share of the 200 MiB target"
        )
    command = [interpreter, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", str(site_dir)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    after = directory_size(site_dir)
    if result.returncode != 0 or after > BYTECODE_LAYER_BUDGET_BYTES:
        for pycache in list(site_dir.rglob("__pycache__")):
            shutil.rmtree(pycache, ignore_errors=True)
        reason = "compileall failed" if result.returncode != 0 else f"{after / 2**20:.0f} MiB is over the budget"
        return f"mlserve: deps layer ships without bytecode ({reason})"
    return (
        f"mlserve: deps layer bytecode for python{python_version} added "
        f"({(after - before) / 2**20:.1f} MiB, layer {after / 2**20:.1f} MiB)"
    )


def pip_install_command(
    requirements: Path, target: Path, architecture: str, python_version: str, *, exact_set: bool = False
) -> list[str]:
    """``exact_set``: the requirements are a function's complete, traced set (a lock file):
    install exactly those (``--no-deps``), each checked against its pinned hashes."""
    exact_args = ["--no-deps", "--require-hashes"] if exact_set else []
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
        *exact_args,
    ]


def prune_layer(site_dir: Path) -> None:
    """Apply layers/deps/prune.toml: drop what Lambda never imports (tests, stubs, sources,
    the runtime-provided SDK, unused subpackages) and strip the libraries where that provably
    leaves them loadable."""
    report = prune_tree(site_dir, load_rules())
    print(report.line(), file=sys.stderr)


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
    """The pruned deps (a site-packages dir) in the cache, built with pip at most once.
    A function's lock file (``layers/deps/locks/<kind>.txt``) is installed as an exact,
    hash-checked set."""
    exact_set = requirements.parent == LOCKS_DIR
    cached = cache_root / deps_layer_hash(requirements, architecture, python_version)
    if not (cached / _CACHE_COMPLETE_MARKER).exists():
        cache_root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="building-", dir=cache_root))
        try:
            site_dir = staging / "python"
            command = pip_install_command(requirements, site_dir, architecture, python_version, exact_set=exact_set)
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
            print(compile_layer(site_dir, python_version), file=sys.stderr)
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

    def __init__(
        self, *, architecture: str, python_version: str, cache_root: Path, requirements: Path = DEPS_REQUIREMENTS
    ) -> None:
        self.architecture = architecture
        self.python_version = python_version
        self.cache_root = cache_root
        self.requirements = requirements

    # jsii passes the BundlingOptions struct positionally; we need none of it.
    def try_bundle(self, output_dir: str, options: Any = None) -> bool:
        build_deps_layer(
            Path(output_dir),
            architecture=self.architecture,
            python_version=self.python_version,
            cache_root=self.cache_root,
            requirements=self.requirements,
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


def deps_layer_code(
    *,
    architecture: str,
    python_version: str,
    cache_root: Path = DEFAULT_CACHE_ROOT,
    requirements: Path = DEPS_REQUIREMENTS,
) -> lambda_.Code:
    """The deps layer for ``requirements``: the full pin list, or a function's lock file."""
    return lambda_.Code.from_asset(
        str(DEPS_REQUIREMENTS.parent),
        # Hashing the inputs (not the 240 MB output) keeps the asset id stable and cheap.
        asset_hash=deps_layer_hash(requirements, architecture, python_version),
        asset_hash_type=AssetHashType.CUSTOM,
        bundling=BundlingOptions(
            image=UNUSED_DOCKER_IMAGE,
            # jsii protocols spell the options as keywords, but jsii's callback dispatch passes
            # them positionally to our signature; the cast tells mypy it conforms.
            local=cast(
                ILocalBundling,
                PipLayerBundler(
                    architecture=architecture,
                    python_version=python_version,
                    cache_root=cache_root,
                    requirements=requirements,
                ),
            ),
        ),
    )


def lock_pins(lock: Path) -> list[str]:
    """The ``name==version`` lines of a lock file (its hash lines dropped)."""
    return [line.split()[0] for line in lock.read_text().splitlines() if "==" in line and not line.startswith("#")]


def function_lock(kind: str) -> Path:
    """``layers/deps/locks/<kind>.txt``, after checking it still matches requirements.txt and
    the traced set, and that the function's code imports nothing outside that set: a stale
    lock or a new import fails the synth (the build) with the fix in the message."""
    from infra.dependency_check import check_function_imports

    check_function_imports(kind, FUNCTION_SETS)
    lock = LOCKS_DIR / f"{kind}.txt"
    expected = _expected_pins(kind)
    if not lock.is_file() or lock_pins(lock) != expected:
        found = lock_pins(lock) if lock.is_file() else "no file"
        raise RuntimeError(
            f"{lock} is out of date (has {found}, requirements.txt + functions.json give {expected}): "
            "run `python layers/deps/lock.py`"
        )
    return lock


def _expected_pins(kind: str) -> list[str]:
    """What ``layers/deps/lock.py`` would pin for the function (the script is the one
    implementation: requirements.txt filtered to the function's traced set)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("mlserve_deps_lock", DEPS_REQUIREMENTS.parent / "lock.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        lines: list[str] = module.pinned_lines(kind, requirements=DEPS_REQUIREMENTS, sets=FUNCTION_SETS)
    except SystemExit as exc:  # the script's way of saying "not pinned"
        raise RuntimeError(str(exc)) from None
    return lines


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
