"""Drift monitoring figures (docs/monitoring.md):

1. capture overhead on the API's warm latency: the real Mangum handler, one-row /predict,
   capture off vs on (sample rate 1.0, every column) in interleaved rounds; Firehose is a
   stub that answers after 20 ms, on the background thread, as the network would;
2. the drift job for N captured rows x 30 columns (default 1,000,000): wall time and peak
   memory of ``build_report`` in a fresh process, rows captured one per record (one-row
   requests, the worst case for parsing), gzip JSON lines as Firehose writes them;
3. profile size: the demo model's profile and the 30-column benchmark profile.

    python -m benchmarks.drift [--rows 1000000] [--calls 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, demo_store, summary, write_results

COLUMNS = 30


class SlowFirehose:
    def put_record_batch(self, DeliveryStreamName: str, Records: list[dict[str, bytes]]) -> dict[str, Any]:
        time.sleep(0.02)
        return {"FailedPutCount": 0}


def capture_overhead(store_uri: str, features: Any, calls: int, rounds: int) -> dict[str, Any]:
    os.environ.update(MLSERVE_STORE=store_uri, MLSERVE_MODEL_NAME="demo-classifier")
    from mangum import Mangum

    from lambda_api.app import create_app
    from lambda_api.handler import StagePrefix
    from mlserve.monitoring import capture
    from tests.apigw_events import FakeLambdaContext, rest_v1_event

    handler = Mangum(StagePrefix(create_app()), lifespan="off")
    body = json.dumps({"instances": features.head(1).to_dict(orient="records")})
    event = rest_v1_event("POST", "/predict", body, {"Content-Type": "application/json"})
    context: Any = FakeLambdaContext()
    on = capture.Capturer(
        capture.CaptureSettings(stream="bench", directory=None, columns=("*",), max_rows_per_minute=10**9),
        client_factory=SlowFirehose,
    )
    samples: dict[str, list[float]] = {"off": [], "on": []}
    assert handler(event, context)["statusCode"] == 200
    # Off and on alternate in blocks of 20 calls, so both see the same machine load.
    block = 20
    for _ in range(rounds * max(calls // block, 1)):
        for mode in ("off", "on"):
            capture.reset_capturer(on if mode == "on" else None)
            if mode == "off":
                capture._configured = True  # capture off without reading the environment
            for _ in range(block):
                started = time.perf_counter()
                response = handler(event, context)
                samples[mode].append((time.perf_counter() - started) * 1000)
                assert response["statusCode"] == 200
    capture.reset_capturer()
    # The hot-path call alone, without the handler's noise around it.
    rows = features.head(1).to_dict(orient="records")
    record_us = []
    for _ in range(20000):
        started = time.perf_counter()
        on.record("demo-classifier", "1", list(rows[0]), rows, [1])
        record_us.append((time.perf_counter() - started) * 1e6)
        if len(on._pending) > 5000:
            on.take()
    off, on_stats = summary(samples["off"]), summary(samples["on"])
    return {
        "calls_per_mode": calls * rounds,
        "handler_ms_capture_off": off,
        "handler_ms_capture_on": on_stats,
        "overhead_p50_ms": on_stats["p50"] - off["p50"],
        "record_call_us": summary(record_us),
        "captured_rows": on.stats["captured_rows"],
    }


def write_captures(root: Path, rows: int, version: str = "1") -> tuple[Path, int]:
    """Reference profile + ``rows`` captured one-row requests (gzip JSON lines, 64 MB-ish objects)."""
    import numpy as np
    import orjson

    from mlserve.monitoring.profile import as_categorical, build_profile, profile_bytes
    from mlserve.store import open_store

    rng = np.random.default_rng(0)
    names = [f"num_{i}" for i in range(25)] + [f"cat_{i}" for i in range(5)]
    types = {n: "double" if n.startswith("num") else "string" for n in names}
    reference = {n: rng.normal(i, 1, 100_000) for i, n in enumerate(names[:25])}
    reference |= {n: as_categorical(rng.choice([f"v{j}" for j in range(20)], 100_000)) for n in names[25:]}
    predictions = as_categorical(rng.choice(["0", "1"], 100_000))
    profile = build_profile(reference, types, predictions, "string", source="bench")
    store = open_store(root.as_uri())
    store.write_bytes(
        "models/bench/live.json",
        json.dumps({"name": "bench", "version": version, "checksums": {"profile.json": "-"}}).encode(),
    )
    profile_data = profile_bytes(profile)
    store.write_bytes(f"models/bench/versions/{version}/profile.json", profile_data)
    now = time.time()
    chunk = 100_000
    for part, start in enumerate(range(0, rows, chunk)):
        n = min(chunk, rows - start)
        numbers = rng.normal(0.1, 1, (n, 25)) + np.arange(25)
        categories = rng.choice([f"v{j}" for j in range(20)], (n, 5))
        lines = [
            orjson.dumps(
                {
                    "t": now,
                    "model": "bench",
                    "version": version,
                    "columns": names,
                    "data": [[*numbers[i].tolist(), *categories[i].tolist()]],
                    "predictions": [int(i % 2)],
                }
            )
            + b"\n"
            for i in range(n)
        ]
        path = root / f"capture/bench/{version}/dt=today/part-{part:04d}.jsonl.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(b"".join(lines), compresslevel=6))
    return root, len(profile_data)


JOB_SCRIPT = """
import json, resource, sys, time
from mlserve.monitoring.job import DriftJobSettings, build_report
started = time.perf_counter()
settings = DriftJobSettings(store_uri=sys.argv[1], model_name="bench", monitoring_uri=sys.argv[1], max_rows=10**8)
report, _ = build_report(settings)
elapsed = time.perf_counter() - started
print(json.dumps({"seconds": elapsed, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rows": report["current_rows"]["captured"], "drifted": len(report["drifted_features"])}))
"""


def drift_job(rows: int, runs: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="mlserve-drift-bench-") as tmp:
        root, profile_size = write_captures(Path(tmp), rows)
        capture_bytes = sum(p.stat().st_size for p in root.glob("capture/**/*.gz"))
        results = []
        for _ in range(runs):
            done = subprocess.run(
                [sys.executable, "-c", JOB_SCRIPT, root.as_uri()],
                capture_output=True,
                text=True,
                check=True,
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "layers/common/python")])},
            )
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    assert all(r["rows"] == rows for r in results)
    return {
        "rows": rows,
        "columns": COLUMNS,
        "capture_gzip_mb": capture_bytes / 1024 / 1024,
        "seconds": summary([r["seconds"] for r in results]),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in results),
        "profile_bytes_30_columns": profile_size,
    }


def demo_profile_size(model_dir: Path, features: Any) -> int:
    from mlserve.monitoring.profile import profile_bytes, reference_profile_for_model

    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "reference.csv"
        features.to_csv(csv, index=False)
        return len(profile_bytes(reference_profile_for_model(model_dir, csv, allow_pickle=False)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--job-runs", type=int, default=2)
    parser.add_argument("--capture-only", action="store_true", help="only the capture overhead")
    args = parser.parse_args()
    store_uri, model_dir, features = demo_store()
    overhead = capture_overhead(store_uri, features, args.calls, args.rounds)
    if args.capture_only:
        summary_line = {k: overhead[k] for k in ("overhead_p50_ms", "record_call_us")}
        summary_line["p50_off_on"] = [
            overhead["handler_ms_capture_off"]["p50"],
            overhead["handler_ms_capture_on"]["p50"],
        ]
        print(json.dumps(summary_line))
        print(f"results: {write_results('drift-capture', {'capture': overhead})}")
        return
    demo_size = demo_profile_size(model_dir, features)
    job = drift_job(args.rows, args.job_runs)
    payload = {"capture": overhead, "drift_job": job, "profile_bytes_demo": demo_size}
    path = write_results("drift", payload)
    off, on = overhead["handler_ms_capture_off"], overhead["handler_ms_capture_on"]
    print(
        f"capture overhead p50: {overhead['overhead_p50_ms'] * 1000:.1f} us "
        f"(handler p50 {off['p50']:.3f} ms off, {on['p50']:.3f} ms on; record() p50 "
        f"{overhead['record_call_us']['p50']:.2f} us)"
    )
    print(
        f"drift job, {job['rows']:,} rows x {COLUMNS} columns: median {job['seconds']['p50']:.1f} s, "
        f"peak RSS {job['peak_rss_mb']:.0f} MB, captures {job['capture_gzip_mb']:.0f} MB gzip"
    )
    print(f"profile: demo {demo_size / 1024:.1f} KiB, 30 columns {job['profile_bytes_30_columns'] / 1024:.1f} KiB")
    print(f"results: {path}")


if __name__ == "__main__":
    main()
