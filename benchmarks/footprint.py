"""Per-function footprint as the CDK app really builds it: a full synth with bundling (the
per-function deps layers from layers/deps/locks/, pip for Lambda's platform, pruned, with
bytecode when this machine has the runtime's Python), then each function's code + its
layers, unzipped, vs Lambda's 250 MB limit and the 200 MB target (webhook: 15 MB).

    python -m benchmarks.footprint [-c python_runtime=python3.13 ...]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import write_results

MIB = 1024 * 1024
LIMIT = 250 * MIB
TARGET = 200 * MIB
WEBHOOK_TARGET = 15 * MIB


def measure(context: dict[str, Any]) -> dict[str, Any]:
    os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
    from infra.bundling import directory_size
    from tests.infra.conftest import synth

    with tempfile.TemporaryDirectory(prefix="mlserve-footprint-") as outdir:
        result = synth(bundle=True, outdir=outdir, **context)
        assembly = Path(result.app.synth().directory)
        stack = result.stack
        functions = {
            "api": stack.online_api.function,
            "batch": stack.batch.function,
            "redeploy": stack.promotion.redeploy_function,
            "webhook": stack.promotion.webhook_function,
        }
        rows: dict[str, Any] = {}
        for kind, function in functions.items():
            resource = result.resources[result.logical_id(function)]
            parts = {"code": directory_size(assembly / resource["Metadata"]["aws:asset:path"])}
            for layer in resource["Properties"].get("Layers", []):
                layer_id = layer["Ref"]
                parts[layer_id] = directory_size(assembly / result.resources[layer_id]["Metadata"]["aws:asset:path"])
            total = sum(parts.values())
            target = WEBHOOK_TARGET if kind == "webhook" else TARGET
            rows[kind] = {"parts_bytes": parts, "total_bytes": total, "target_bytes": target, "met": total <= target}
    return {"context": context, "functions": rows}


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "| function | code + layers (MiB) | vs 250 MiB limit | target | met |",
        "|---|---:|---:|---:|---|",
    ]
    for kind, row in result["functions"].items():
        total = row["total_bytes"] / MIB
        lines.append(
            f"| {kind} | {total:.1f} | {100 * row['total_bytes'] / LIMIT:.0f} % | "
            f"{row['target_bytes'] / MIB:.0f} MiB | {'yes' if row['met'] else 'NO'} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-c", dest="context", action="append", default=[], help="key=value, like cdk -c")
    args = parser.parse_args()
    context = dict(item.split("=", 1) for item in args.context)
    result = measure(context)
    print(markdown(result))
    print(write_results("footprint", result))


if __name__ == "__main__":
    main()
