"""Builds the real per-function layers (pip for Lambda's platform, no Docker) through a full
synth and checks each function's footprint: code + its layers under Lambda's 250 MB and
under issue 12's 200 MB target (reached by the pruning of layers/deps/prune.toml: see
docs/performance.md), the webhook under 15 MB and without numpy, and
nothing the trace showed is never imported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.bundling import directory_size
from tests.infra.conftest import Synth, synth

MIB = 1024 * 1024
LIMIT_BYTES = 250 * MIB  # Lambda's "250 MB" is 250 MiB
# Issue 12's target: 200 MiB, so a user's model can bring 50 MiB. Measured (arm64, python3.14,
# python -m pytest -s tests/infra/test_function_footprint.py): api 199.2 MiB (deps 196.9 +
# mlserve layer 2.3, with the packaged Swagger UI), batch/redeploy 197.3, webhook 2.9.
BUDGET_BYTES = 200 * MIB
WEBHOOK_TARGET_BYTES = 15 * MIB
NEVER_IMPORTED = ("wcwidth", "prettytable", "tzdata", "opentelemetry/sdk", "boto3", "botocore", "uvicorn")
# Removed by layers/deps/prune.toml (tests/infra/test_pruned_layer.py proves nothing needs them).
PRUNED = ("scipy/io", "scipy/signal", "sklearn/datasets")


@pytest.fixture(scope="module")
def bundled(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synth(bundle=True, outdir=str(tmp_path_factory.mktemp("cdk.out")))


def parts(result: Synth, function: Any) -> dict[str, Path]:
    outdir = Path(result.app.synth().directory)
    properties = result.resources[result.logical_id(function)]
    found = {"code": outdir / properties["Metadata"]["aws:asset:path"]}
    for layer_ref in properties["Properties"].get("Layers", []):
        layer_id = layer_ref["Ref"]
        found[layer_id] = outdir / result.resources[layer_id]["Metadata"]["aws:asset:path"]
    return found


def functions(result: Synth) -> dict[str, Any]:
    stack = result.stack
    return {
        "api": stack.online_api.function,
        "batch": stack.batch.function,
        "promote": stack.promotion.redeploy_function,
        "webhook": stack.promotion.webhook_function,
    }


@pytest.mark.slow
def test_every_function_with_its_layers_fits_the_limit_and_the_budget(bundled: Synth) -> None:
    totals = {}
    for kind, function in functions(bundled).items():
        sizes = {name: directory_size(path) for name, path in parts(bundled, function).items()}
        totals[kind] = sum(sizes.values())
        print(f"\n{kind}: {totals[kind] / MIB:.1f} MiB ({', '.join(f'{n} {s / MIB:.1f}' for n, s in sizes.items())})")
    for kind, total in totals.items():
        assert total <= min(LIMIT_BYTES, BUDGET_BYTES), f"{kind} is {total / MIB:.1f} MiB unzipped"


@pytest.mark.slow
def test_the_webhook_package_has_no_numpy_and_fits_15_mb(bundled: Synth) -> None:
    webhook = parts(bundled, functions(bundled)["webhook"])
    total = sum(directory_size(path) for path in webhook.values())
    assert total <= WEBHOOK_TARGET_BYTES, f"webhook is {total / MIB:.1f} MiB"
    for path in webhook.values():
        assert not list(path.rglob("numpy")), path
        assert not list(path.rglob("numpy-*.dist-info")), path
        assert not list(path.rglob("pandas")) and not list(path.rglob("sklearn")), path


@pytest.mark.slow
def test_layers_hold_nothing_the_trace_shows_is_never_imported(bundled: Synth) -> None:
    for kind, function in functions(bundled).items():
        for name, path in parts(bundled, function).items():
            if name == "code":
                continue
            site = path / "python"
            present = [package for package in NEVER_IMPORTED + PRUNED if (site / package).exists()]
            assert not present, f"{kind} layer {name} ships {present}"
