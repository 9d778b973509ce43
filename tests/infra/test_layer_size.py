"""Builds the real deps layer (pip for Lambda's platform, no Docker) through a full synth
and checks every function's code + layers fit Lambda's 250 MB unzipped limit.

The first run downloads ~70 MB of wheels (1-3 min); later runs copy from .cache/layers.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from infra.bundling import DEPS_REQUIREMENTS, directory_size
from tests.infra.conftest import Synth, synth

# Lambda's limit for a function's deployment package plus all its layers, unzipped.
LAMBDA_UNZIPPED_LIMIT_BYTES = 262_144_000  # "250 MB" = 250 MiB
ELF_MACHINE = {"arm64": 183, "x86_64": 62}  # e_machine: EM_AARCH64, EM_X86_64


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synth(bundle=True, outdir=str(tmp_path_factory.mktemp("cdk.out")))


def asset_dir(result: Synth, outdir: Path, logical_id: str) -> Path:
    metadata: dict[str, Any] = result.resources[logical_id].get("Metadata", {})
    return outdir / metadata["aws:asset:path"]


def mb(size: int) -> str:
    return f"{size:,} bytes = {size / 1_000_000:.1f} MB ({size / 1024 / 1024:.1f} MiB)"


@pytest.mark.slow
def test_each_function_with_its_layers_fits_lambdas_unzipped_limit(bundled: Synth) -> None:
    outdir = Path(bundled.app.synth().directory)
    python_functions = {
        logical_id: resource
        for logical_id, resource in bundled.of_type("AWS::Lambda::Function").items()
        if str(resource["Properties"].get("Runtime", "")).startswith("python")
        # CDK's BucketNotificationsHandler: a few KB of inline code, no asset, no layers.
        and "ZipFile" not in resource["Properties"]["Code"]
    }
    stack = bundled.stack
    assert set(python_functions) == {
        bundled.logical_id(stack.online_api.function),
        bundled.logical_id(stack.batch.function),
        bundled.logical_id(stack.promotion.redeploy_function),
        bundled.logical_id(stack.promotion.webhook_function),
        *([bundled.logical_id(stack.drift.function)] if stack.drift is not None else []),
        *(
            bundled.logical_id(step.function)
            for step in (stack.fanout.plan, stack.fanout.range, stack.fanout.merge, stack.fanout.fail)
        ),
    }
    for logical_id, function in python_functions.items():
        parts = {"code": directory_size(asset_dir(bundled, outdir, logical_id))}
        for layer_ref in function["Properties"].get("Layers", []):
            layer_id = layer_ref["Ref"]
            parts[layer_id] = directory_size(asset_dir(bundled, outdir, layer_id))
        total = sum(parts.values())
        headroom = LAMBDA_UNZIPPED_LIMIT_BYTES - total
        print(f"\n{logical_id}: " + ", ".join(f"{name} {mb(size)}" for name, size in parts.items()))
        print(f"{logical_id}: total {mb(total)} of {mb(LAMBDA_UNZIPPED_LIMIT_BYTES)}; headroom {mb(headroom)}")
        assert total < LAMBDA_UNZIPPED_LIMIT_BYTES, f"{logical_id} is {mb(total)} unzipped"


@pytest.mark.slow
def test_assets_hold_what_the_handlers_import(bundled: Synth) -> None:
    outdir = Path(bundled.app.synth().directory)
    stack = bundled.stack
    code = asset_dir(bundled, outdir, bundled.logical_id(stack.online_api.function))
    assert (code / "lambda_api" / "__init__.py").is_file()
    assert (code / "lambda_api" / "handler.py").is_file()
    assert not (code / "layers").exists() and not (code / "infra").exists()  # not the repo root
    batch_code = asset_dir(bundled, outdir, bundled.logical_id(stack.batch.function))
    assert (batch_code / "lambda_batch" / "handler.py").is_file()
    assert not (batch_code / "lambda_api").exists() and not (batch_code / "infra").exists()
    for function in (stack.promotion.redeploy_function, stack.promotion.webhook_function):
        promote_code = asset_dir(bundled, outdir, bundled.logical_id(function))
        assert (promote_code / "lambda_promote" / "redeploy.py").is_file()
        assert (promote_code / "lambda_promote" / "webhook.py").is_file()
        assert not (promote_code / "lambda_api").exists() and not (promote_code / "infra").exists()
    common = asset_dir(bundled, outdir, bundled.logical_id(stack.common_layer))
    assert (common / "python" / "mlserve" / "__init__.py").is_file()
    assert not list(common.rglob("__pycache__"))

    deps = asset_dir(bundled, outdir, bundled.logical_id(stack.deps_layer)) / "python"
    for runtime_provided in ("boto3", "botocore", "s3transfer"):
        assert not (deps / runtime_provided).exists()
    assert not list(deps.rglob("tests")) and not list(deps.rglob("__pycache__"))
    assert not list(deps.rglob("*.pyi"))

    # One pin, one place: the layer's scikit-learn is the version the demo model trains with.
    import sklearn

    pinned = re.search(r"^scikit-learn==(\S+)$", DEPS_REQUIREMENTS.read_text(), re.MULTILINE)
    assert pinned is not None
    assert [p.name for p in deps.glob("scikit_learn-*.dist-info")] == [f"scikit_learn-{pinned.group(1)}.dist-info"]
    assert sklearn.__version__ == pinned.group(1)

    # Binaries are for Lambda's CPU and Python, not this machine's.
    config = stack.config
    abi = "cpython-" + config.python_version.replace(".", "")
    extensions = list((deps / "numpy").rglob("*.so"))
    assert extensions and all(abi in so.name for so in extensions if "cpython" in so.name)
    header = extensions[0].read_bytes()[:20]
    assert header[:4] == b"\x7fELF"
    assert int.from_bytes(header[18:20], "little") == ELF_MACHINE[config.architecture]
