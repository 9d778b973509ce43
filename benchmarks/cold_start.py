"""Cold start: a fresh process from its first import to its first prediction.

- mlserve: `import lambda_api.handler`, then one API Gateway v1 event through Mangum
  (the first request reads live.json, verifies checksums and loads the model), run with
  ONLY the Lambda layer's pruned dependency set on the path: `python -S` (no
  site-packages) + PYTHONPATH = a `pip install --target` of layers/deps/requirements.txt
  for this machine's platform, pruned like the deployed layer, + the mlserve layer + the
  function code. That mirrors what Lambda imports, minus the Lambda runtime itself.
- peer: `mlflow.pyfunc.load_model(model_dir)` + `predict` on the same row, in the full dev
  venv (MLflow is not installable in the layer: it would not fit in 250 MB).

    python -m benchmarks.cold_start [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, demo_store, summary, write_results

LAYER_REQUIREMENTS = ROOT / "layers" / "deps" / "requirements.txt"
CACHE = ROOT / ".cache" / "bench"
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer")

OURS_SCRIPT = """
import time
started = time.perf_counter()
import json, sys
import lambda_api.handler
imported = time.perf_counter()
from tests.apigw_events import FakeLambdaContext, rest_v1_event
event = rest_v1_event("POST", "/predict", sys.argv[1], {"Content-Type": "application/json"})
response = lambda_api.handler.handler(event, FakeLambdaContext())
done = time.perf_counter()
assert response["statusCode"] == 200, response
heavy = [m for m in ("mlflow", "boto3", "botocore", "matplotlib") if m in sys.modules]
print(json.dumps({"import_s": imported - started, "total_s": done - started, "heavy_modules": heavy}))
"""

# SnapStart, simulated locally: init + the before-snapshot hook is the work a snapshot
# captures once per published version; after_restore + the first request is what each
# restored environment still pays.
SNAPSTART_SCRIPT = """
import time
started = time.perf_counter()
import json, sys
import lambda_api.handler
lambda_api.handler.before_snapshot()
snapshot = time.perf_counter()
lambda_api.handler.after_restore()
from tests.apigw_events import FakeLambdaContext, rest_v1_event
event = rest_v1_event("POST", "/predict", sys.argv[1], {"Content-Type": "application/json"})
response = lambda_api.handler.handler(event, FakeLambdaContext())
done = time.perf_counter()
assert response["statusCode"] == 200, response
print(json.dumps({"import_s": snapshot - started, "total_s": done - snapshot}))
"""

PYFUNC_SCRIPT = """
import time
started = time.perf_counter()
import json, sys
import mlflow.pyfunc
import pandas as pd
imported = time.perf_counter()
model = mlflow.pyfunc.load_model(sys.argv[2])
frame = pd.DataFrame(json.loads(sys.argv[1])["instances"])
model.predict(frame)
done = time.perf_counter()
print(json.dumps({"import_s": imported - started, "total_s": done - started}))
"""


def prune(site_dir: Path) -> None:
    """The deployed layer's pruning rules (infra/bundling.py): no tests, bytecode, stubs or
    runtime-provided AWS SDK."""
    try:
        from infra.bundling import prune_layer  # the exact rules, once the infra branch is merged

        prune_layer(site_dir)
        return
    except ImportError:
        pass
    for name in RUNTIME_PROVIDED:
        shutil.rmtree(site_dir / name, ignore_errors=True)
        for dist in site_dir.glob(f"{name}-*.dist-info"):
            shutil.rmtree(dist, ignore_errors=True)
    for dirpath, dirnames, filenames in os.walk(site_dir, topdown=False):
        for filename in filenames:
            if filename.endswith((".pyi", ".pyc")):
                (Path(dirpath) / filename).unlink()
        for dirname in dirnames:
            if dirname in ("tests", "__pycache__"):
                shutil.rmtree(Path(dirpath) / dirname, ignore_errors=True)


def pip_target(target: Path, extra_args: list[str]) -> Path:
    """`pip install --target` of the layer requirements, pruned; cached by requirements."""
    marker = target / ".complete"
    stamp = LAYER_REQUIREMENTS.read_text() + " ".join(extra_args)
    if marker.is_file() and marker.read_text() == stamp:
        return target
    shutil.rmtree(target, ignore_errors=True)
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile"]
    command += ["-r", str(LAYER_REQUIREMENTS), "--target", str(target), "--only-binary=:all:", *extra_args]
    subprocess.run(command, check=True)
    prune(target)
    marker.write_text(stamp)
    return target


def local_layer() -> Path:
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}-{sys.platform}"
    return pip_target(CACHE / f"deps-local-{tag}", [])


def with_bytecode(layer: Path) -> Path:
    """The same pruned layer plus `compileall` bytecode (hard-linked copy). Lambda's /opt is
    read-only, so a layer shipped without __pycache__ recompiles every module on every
    cold start; this variant shows what shipping bytecode for the runtime's Python saves."""
    target = layer.with_name(layer.name + "-pyc")
    marker = target / ".complete"
    stamp = (layer / ".complete").read_text()
    if marker.is_file() and marker.read_text() == stamp:
        return target
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(layer, target, copy_function=os.link)
    subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", str(target)], check=True, capture_output=True)
    marker.write_text(stamp)
    return target


def host_architecture() -> str:
    return "arm64" if os.uname().machine in ("aarch64", "arm64") else "x86_64"


def shipped_api_layer(python_version: str) -> Path:
    """The API function's deps layer exactly as the CDK build makes it (its lock file, pip
    for Lambda's manylinux platform, pruned, bytecode when this machine has that Python),
    for this machine's CPU so it can be imported here."""
    from infra.bundling import cached_deps_site, function_lock

    return cached_deps_site(
        architecture=host_architecture(), python_version=python_version, requirements=function_lock("api")
    )


def one_row_body(features: Any) -> str:
    return json.dumps({"instances": features.head(1).to_dict(orient="records")})


def _run(command: list[str], env: dict[str, str]) -> dict[str, Any]:
    # A fresh model cache each run, like a new Lambda sandbox's empty /tmp.
    env = {**env, "MLSERVE_CACHE_DIR": tempfile.mkdtemp(prefix="mlserve-cold-")}
    out = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"cold start run failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def measure(store_uri: str, model_dir: Path, features: Any, runs: int) -> dict[str, Any]:
    body = one_row_body(features)
    layer = local_layer()
    compiled = with_bytecode(layer)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "MLFLOW_"))}

    def ours_env(site: Path) -> dict[str, str]:
        return {
            **base_env,
            # Lambda's layout: the layers (/opt/python) + the function code; nothing else.
            "PYTHONPATH": os.pathsep.join([str(site), str(ROOT / "layers" / "common" / "python"), str(ROOT)]),
            "PYTHONDONTWRITEBYTECODE": "1",
            "MLSERVE_STORE": store_uri,
            "MLSERVE_MODEL_NAME": "demo-classifier",
        }

    peer_env = {**base_env, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    local_version = f"{sys.version_info.major}.{sys.version_info.minor}"
    shipped = shipped_api_layer(local_version)
    from infra.bundling import bytecode_interpreter

    python313 = bytecode_interpreter("3.13")
    # -S: no site-packages, only the pruned layer. (-I would also drop PYTHONPATH.)
    ours_cmd = [sys.executable, "-S", "-c", OURS_SCRIPT, body]
    peer_cmd = [sys.executable, "-c", PYFUNC_SCRIPT, body, str(model_dir)]
    sides: dict[str, tuple[list[str], dict[str, str]]] = {
        "mlserve_no_pyc": (ours_cmd, ours_env(layer)),
        "mlserve_pyc": (ours_cmd, ours_env(compiled)),
        "pyfunc": (peer_cmd, peer_env),
        # as shipped: the API's own traced layer (no fastapi-less extras, no wcwidth...), with
        # the bytecode the build adds for this Python
        f"mlserve_shipped_{local_version}": (ours_cmd, ours_env(shipped)),
        "snapstart": ([sys.executable, "-S", "-c", SNAPSTART_SCRIPT, body], ours_env(shipped)),
    }
    if python313 is not None:  # Lambda's python3.13 layer as built here (x86_64), with its bytecode
        sides["mlserve_shipped_3.13"] = (
            [python313, "-S", "-c", OURS_SCRIPT, body],
            ours_env(shipped_api_layer("3.13")),
        )
    for command, env in sides.values():  # untimed: warms the OS page cache for every side
        _run(command, env)
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in sides}
    for _ in range(runs):  # interleaved so machine noise hits every side alike
        for name, (command, env) in sides.items():
            samples[name].append(_run(command, env))
    result: dict[str, Any] = {"runs": runs}
    for name, values in samples.items():
        result[name] = {
            "total_ms": summary([r["total_s"] * 1000 for r in values]),
            "import_ms": summary([r["import_s"] * 1000 for r in values]),
        }
    result["mlserve_pyc"]["heavy_modules"] = samples["mlserve_pyc"][-1]["heavy_modules"]
    peer = result["pyfunc"]["total_ms"]["p50"]
    result["ratio_median"] = result["mlserve_pyc"]["total_ms"]["p50"] / peer
    result["ratio_median_no_pyc"] = result["mlserve_no_pyc"]["total_ms"]["p50"] / peer
    result["ratio_median_shipped"] = result[f"mlserve_shipped_{local_version}"]["total_ms"]["p50"] / peer
    result["shipped_python"] = local_version
    if "mlserve_shipped_3.13" in result:
        result["ratio_median_shipped_3.13"] = result["mlserve_shipped_3.13"]["total_ms"]["p50"] / peer
    # snapstart: import_ms = init + before-snapshot hook (captured once in the snapshot),
    # total_ms = after_restore + the first request (paid by each restored environment)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    store_uri, model_dir, features = demo_store()
    result = measure(store_uri, model_dir, features, args.runs)
    for side, values in result.items():
        if isinstance(values, dict) and "total_ms" in values and side != "snapstart":
            t = values["total_ms"]
            print(f"{side:22} cold start: min {t['min']:.0f} / median {t['p50']:.0f} / max {t['max']:.0f} ms")
    print(f"ratio (median, with bytecode): {result['ratio_median']:.2f}; without: {result['ratio_median_no_pyc']:.2f}")
    print(f"ratio (median, as shipped for python{result['shipped_python']}): {result['ratio_median_shipped']:.2f}")
    if "ratio_median_shipped_3.13" in result:
        print(f"ratio (median, as shipped for python3.13): {result['ratio_median_shipped_3.13']:.2f}")
    snap = result["snapstart"]
    print(
        f"snapstart: init + before_snapshot median {snap['import_ms']['p50']:.0f} ms (captured in the snapshot); "
        f"after_restore + first request median {snap['total_ms']['p50']:.0f} ms"
    )
    print(write_results("cold-start", result))


if __name__ == "__main__":
    main()
