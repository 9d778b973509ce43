"""Deployment size: each function's code + its layers, unzipped, vs Lambda's 250 MB limit.

The deps layer is built as the CDK app builds it (infra/bundling.py when present):
`pip install -r layers/deps/requirements.txt --target DIR` for manylinux aarch64 and the
Lambda Python, `--only-binary=:all:`, then pruned (tests, __pycache__, *.pyc, *.pyi, and
boto3/botocore/s3transfer, which the runtime provides). Every function gets the deps
layer and the mlserve layer (layers/common); its code is its own package directory.

    python -m benchmarks.deploy_size [--python-version 3.14] [--architecture arm64]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from benchmarks.cold_start import CACHE, pip_target
from benchmarks.common import ROOT, write_results

LIMIT_BYTES = 250 * 1024 * 1024
TARGET_BYTES = 225 * 1024 * 1024
FUNCTIONS = ("lambda_api", "lambda_batch", "lambda_promote")
MB = 1024 * 1024


def directory_size(path: Path) -> int:
    """Bytes on disk as Lambda counts them: the sum of regular file sizes, unzipped."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for filename in filenames:
            file_path = Path(dirpath) / filename
            if not file_path.is_symlink() and not filename.endswith(".pyc"):
                total += file_path.stat().st_size
    return total


def deps_layer(architecture: str, python_version: str) -> Path:
    machine = {"arm64": "aarch64", "x86_64": "x86_64"}[architecture]
    platform_args = ["--platform", f"manylinux_2_28_{machine}", "--platform", f"manylinux2014_{machine}"]
    extra = [*platform_args, "--python-version", python_version, "--implementation", "cp"]
    return pip_target(CACHE / f"deps-{architecture}-py{python_version}", extra)


def largest(path: Path, count: int = 8) -> list[dict[str, Any]]:
    sizes = [
        (directory_size(child) if child.is_dir() else child.stat().st_size, child.name) for child in path.iterdir()
    ]
    return [{"name": name, "mb": round(size / MB, 1)} for size, name in sorted(sizes, reverse=True)[:count]]


def measure(architecture: str = "arm64", python_version: str = "3.14") -> dict[str, Any]:
    deps = deps_layer(architecture, python_version)
    deps_bytes = directory_size(deps)
    common_bytes = directory_size(ROOT / "layers" / "common")
    functions = {}
    for name in FUNCTIONS:
        code = directory_size(ROOT / name)
        total = code + deps_bytes + common_bytes
        functions[name] = {
            "code_bytes": code,
            "total_bytes": total,
            "total_mb": round(total / MB, 2),
            "headroom_to_250_mb": round((LIMIT_BYTES - total) / MB, 2),
            "meets_225_mb": total <= TARGET_BYTES,
        }
    return {
        "architecture": architecture,
        "python_version": python_version,
        "deps_layer_bytes": deps_bytes,
        "deps_layer_mb": round(deps_bytes / MB, 2),
        "deps_layer_largest": largest(deps),
        "mlserve_layer_bytes": common_bytes,
        "functions": functions,
        "limit_mb": 250,
        "target_mb": 225,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--architecture", default="arm64")
    parser.add_argument("--python-version", default="3.14")
    args = parser.parse_args()
    result = measure(args.architecture, args.python_version)
    print(json.dumps(result, indent=2))
    print(write_results("deploy-size", result))


if __name__ == "__main__":
    main()
