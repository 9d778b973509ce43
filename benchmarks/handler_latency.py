"""Warm in-process latency of the Lambda handler vs raw model.predict, and the cold
start of a fresh process from `import lambda_api.handler` to the first prediction.

    python -m benchmarks.handler_latency [--calls 1000] [--rows 1,100,1000] [--cold-runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

from benchmarks.cold_start import OURS_SCRIPT as COLD_SCRIPT
from benchmarks.common import ROOT, demo_store, summary, write_results


def warm(store_uri: str, features: Any, rows: int, calls: int) -> dict[str, Any]:
    os.environ.update(MLSERVE_STORE=store_uri, MLSERVE_MODEL_NAME="demo-classifier", MLSERVE_MAX_ROWS="100000")
    from mangum import Mangum

    from lambda_api.app import create_app
    from lambda_api.handler import StagePrefix
    from tests.apigw_events import FakeLambdaContext, rest_v1_event

    app = create_app()
    handler = Mangum(StagePrefix(app), lifespan="off")
    body = json.dumps({"instances": features.head(rows).to_dict(orient="records")})
    event = rest_v1_event("POST", "/predict", body, {"Content-Type": "application/json"})
    context: Any = FakeLambdaContext()
    assert handler(event, context)["statusCode"] == 200  # cold start outside the timing
    model = app.state.runtime.model().estimator
    frame = features.head(rows)
    handler_ms, predict_ms = [], []
    for _ in range(calls):
        started = time.perf_counter()
        response = handler(event, context)
        handler_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        model.predict(frame)
        predict_ms.append((time.perf_counter() - started) * 1000)
        assert response["statusCode"] == 200
    handler_stats, predict_stats = summary(handler_ms), summary(predict_ms)
    return {
        "rows": rows,
        "handler_ms": handler_stats,
        "predict_ms": predict_stats,
        "overhead_p50_ms": handler_stats["p50"] - predict_stats["p50"],
        "ratio_p50": handler_stats["p50"] / predict_stats["p50"],
    }


def cold(store_uri: str, features: Any, runs: int) -> dict[str, Any]:
    body = json.dumps({"instances": features.head(1).to_dict(orient="records")})
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MLSERVE_STORE": store_uri, "MLSERVE_MODEL_NAME": "demo-classifier"}
    totals, imports = [], []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", COLD_SCRIPT, body], env=env, cwd=ROOT, capture_output=True, text=True, check=True
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        totals.append(result["total_s"] * 1000)
        imports.append(result["import_s"] * 1000)
    return {"total_ms": summary(totals), "import_ms": summary(imports)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--rows", default="1")
    parser.add_argument("--cold-runs", type=int, default=5)
    args = parser.parse_args()
    store_uri, _, features = demo_store()
    warm_results = [warm(store_uri, features, int(r), args.calls) for r in args.rows.split(",")]
    cold_result = cold(store_uri, features, args.cold_runs)
    print("| rows | handler p50 ms | handler p99 ms | predict p50 ms | predict p99 ms | overhead p50 ms | ratio |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in warm_results:
        h, p = r["handler_ms"], r["predict_ms"]
        cells = [h["p50"], h["p99"], p["p50"], p["p99"], r["overhead_p50_ms"]]
        print(f"| {r['rows']} | " + " | ".join(f"{c:.3f}" for c in cells) + f" | {r['ratio_p50']:.2f}x |")
    c = cold_result["total_ms"]
    print(
        f"\ncold start (fresh process, import -> first prediction), {c['n']} runs: "
        f"min {c['min']:.0f} ms, median {c['p50']:.0f} ms, max {c['max']:.0f} ms "
        f"(import alone median {cold_result['import_ms']['p50']:.0f} ms)"
    )
    path = write_results("handler-latency", {"warm": warm_results, "cold": cold_result, "calls": args.calls})
    print(f"results: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
