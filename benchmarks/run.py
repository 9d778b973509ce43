"""`make bench`: every benchmark, both sides in the same run, one JSON + one Markdown table.

    python -m benchmarks.run [--quick] [--skip http,cold,size,batch,warm]

Writes benchmarks/results/<date>.json and benchmarks/results/<date>.md. Timings on a
shared machine are noisy: every figure is repeated and reported as min / median / max.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import statistics
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS, demo_store, machine

MB = 1024 * 1024


def spread(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values), "n": len(values)}


def fmt(s: dict[str, float], digits: int = 2) -> str:
    return f"{s['min']:.{digits}f} / **{s['median']:.{digits}f}** / {s['max']:.{digits}f}"


# ---------------------------------------------------------------- 1. warm handler
def run_warm(store_uri: str, features: Any, rows: list[int], calls: int, rounds: int) -> dict[str, Any]:
    from benchmarks.handler_latency import warm

    out: dict[str, Any] = {"calls_per_round": calls, "rounds": rounds, "by_rows": {}}
    for n in rows:
        per_round = [warm(store_uri, features, n, calls) for _ in range(rounds)]
        out["by_rows"][str(n)] = {
            "handler_p50_ms": spread([r["handler_ms"]["p50"] for r in per_round]),
            "handler_p99_ms": spread([r["handler_ms"]["p99"] for r in per_round]),
            "predict_p50_ms": spread([r["predict_ms"]["p50"] for r in per_round]),
            "predict_p99_ms": spread([r["predict_ms"]["p99"] for r in per_round]),
            "overhead_p50_ms": spread([r["overhead_p50_ms"] for r in per_round]),
            "ratio_p50": spread([r["ratio_p50"] for r in per_round]),
        }
    return out


# ---------------------------------------------------------------- 2. HTTP
def run_http(store_uri: str, model_dir: Path, features: Any, quick: bool) -> dict[str, Any]:
    from benchmarks import http_serving

    result = http_serving.measure(
        store_uri,
        model_dir,
        features,
        rows=[1, 100],
        connections=[1, 8],
        duration=3 if quick else 8,
        repeats=2 if quick else 3,
        workers=1,
    )
    table: dict[str, Any] = {}
    for key, sides in result["runs"].items():
        entry: dict[str, Any] = {}
        for side, samples in sides.items():
            entry[side] = {
                metric: spread([s[metric] for s in samples if metric in s])
                for metric in ("requests_per_s", "p50_ms", "p99_ms")
            }
            entry[side]["errors"] = sum(s["non_2xx"] + s["socket_errors"] for s in samples)
        entry["rps_ratio_median"] = (
            entry["mlserve"]["requests_per_s"]["median"] / entry["mlflow"]["requests_per_s"]["median"]
        )
        table[key] = entry
    return {**{k: v for k, v in result.items() if k != "runs"}, "table": table, "raw": result["runs"]}


def wrk_version() -> str:
    wrk = shutil.which("wrk")
    if not wrk:
        return "not installed"
    out = subprocess.run([wrk, "-v"], capture_output=True, text=True)
    return (out.stdout + out.stderr).strip().splitlines()[0]


# ---------------------------------------------------------------- 5. batch
def run_batch(rows: int = 1_000_000) -> dict[str, Any]:
    """Issue 4's benchmark (benchmarks/batch.py, another branch until merged): our scorer
    (local file -> file) vs `mlflow models predict`, same CSV, one run each per size."""
    if importlib.util.find_spec("benchmarks.batch") is None:
        return {"skipped": "benchmarks/batch.py is not on this branch yet (issue 4)"}
    batch = importlib.import_module("benchmarks.batch")
    data: dict[str, Any] = batch.run([rows], ["local", "mlflow"], False)
    rate = {r["path"]: r["rows_per_second"] for r in data.get("results", []) if r.get("rows") == rows}
    if "local" in rate and "mlflow" in rate:
        data["ratio_rows_per_s"] = rate["local"] / rate["mlflow"]
    if hasattr(batch, "table"):
        data["table_md"] = batch.table(data)
    return data


# ---------------------------------------------------------------- report
def targets(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    warm = results.get("warm", {}).get("by_rows", {}).get("1")
    if warm:
        overhead = warm["overhead_p50_ms"]["median"]
        rows.append(
            ("single-row handler overhead ≤ 1 ms over raw predict", f"{overhead:.2f} ms", _met(overhead <= 1.0))
        )
    http = results.get("http", {}).get("table", {})
    for key in ("rows=1,c=8", "rows=100,c=8"):
        if key in http:
            ratio = http[key]["rps_ratio_median"]
            rows.append((f"≥ 3x requests/s of mlflow models serve ({key})", f"{ratio:.2f}x", _met(ratio >= 3)))
    cold = results.get("cold")
    if cold and "ratio_median" in cold:
        ratio = cold["ratio_median"]
        measured = f"{ratio:.2f} of pyfunc with bytecode ({cold['ratio_median_no_pyc']:.2f} without)"
        rows.append(("cold start ≤ 1/3 of pyfunc", measured, _met(ratio <= 1 / 3)))
    size = results.get("size")
    if size and "functions" in size:
        worst = max(f["total_mb"] for f in size["functions"].values())
        rows.append(("each function + layers ≤ 225 MB", f"largest {worst:.1f} MB", _met(worst <= 225)))
    batch = results.get("batch", {})
    ratio = batch.get("ratio_rows_per_s") if isinstance(batch, dict) else None
    if isinstance(ratio, int | float):
        rows.append(("batch ≥ 5x mlflow models predict rows/s", f"{ratio:.2f}x", _met(ratio >= 5)))
    else:
        rows.append(("batch ≥ 5x mlflow models predict rows/s", "not measured", "see batch section"))
    return rows


def _met(ok: bool) -> str:
    return "**met**" if ok else "**gap**"


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"# mlserve benchmarks — {results['at']}",
        "",
        f"Machine: {m['platform']}, {m['cpu_count']} CPUs ({m['processor']}), Python {m['python']}; "
        f"numpy {m['numpy']}, pandas {m['pandas']}, scikit-learn {m['scikit-learn']}, "
        f"mlflow {m.get('mlflow', '?')}, load generator {results.get('wrk', '?')}.",
        "Model: demo classifier (breast cancer, 30 double columns, StandardScaler + LogisticRegression, skops).",
        "Figures are min / **median** / max over repeated runs on a shared, noisy machine.",
        f"Reproduce: `{results['command']}`",
        "",
        "## Targets",
        "",
        "| target | measured (median) | status |",
        "|---|---|---|",
    ]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in targets(results)]
    warm = results.get("warm")
    if warm:
        lines += [
            "",
            f"## 1. Warm in-process handler vs raw `model.predict` ({warm['rounds']} rounds x "
            f"{warm['calls_per_round']} calls)",
            "",
            "API Gateway v1 event → Mangum → FastAPI `/predict` → validate → frame → predict → JSON, "
            "vs `estimator.predict(DataFrame)` on the same rows.",
            "",
            "| rows | handler p50 (ms) | handler p99 (ms) | predict p50 (ms) | predict p99 (ms) "
            "| overhead p50 (ms) | handler/predict |",
            "|---:|---|---|---|---|---|---|",
        ]
        for n, r in warm["by_rows"].items():
            cells = [fmt(r[k], 3) for k in ("handler_p50_ms", "handler_p99_ms", "predict_p50_ms", "predict_p99_ms")]
            cells += [fmt(r["overhead_p50_ms"], 3), fmt(r["ratio_p50"]) + "x"]
            lines.append(f"| {n} | " + " | ".join(cells) + " |")
    fast = results.get("fastpaths")
    if fast:
        lines += [
            "",
            f"### Effect of the hot-path optimizations (handler p50 in ms; {fast['rounds']} interleaved rounds "
            f"x {fast['calls_per_round']} calls per variant, same process and requests)",
            "",
            "| rows | all off (per-column frame + pydantic rows) | 2-D array frame | + all-double validation fast path "
            "| speed-up |",
            "|---:|---|---|---|---:|",
        ]
        for n, v in fast["by_rows"].items():
            gain = v["all off"]["median"] / v["all on"]["median"]
            lines.append(
                f"| {n} | {fmt(v['all off'], 3)} | {fmt(v['2-D frame'], 3)} | {fmt(v['all on'], 3)} | {gain:.2f}x |"
            )
    http = results.get("http")
    if http:
        lines += [
            "",
            f"## 2. HTTP `/invocations`: mlserve (uvicorn) vs `mlflow models serve` "
            f"(wrk, {http['duration_s']:.0f} s x {http['repeats']} runs per cell, loopback)",
            "",
            f"- mlserve: `{http['commands']['mlserve']}`",
            f"- mlflow: `{http['commands']['mlflow']}`",
            "",
            "| payload, connections | side | requests/s | p50 (ms) | p99 (ms) | errors | req/s ratio |",
            "|---|---|---|---|---|---:|---:|",
        ]
        for key, entry in http["table"].items():
            for side in ("mlserve", "mlflow"):
                s = entry[side]
                ratio = f"{entry['rps_ratio_median']:.2f}x" if side == "mlserve" else ""
                lines.append(
                    f"| {key} | {side} | {fmt(s['requests_per_s'], 0)} | {fmt(s['p50_ms'])} | {fmt(s['p99_ms'])} "
                    f"| {s['errors']:.0f} | {ratio} |"
                )
    cold = results.get("cold")
    if cold and "pyfunc" in cold:
        labels = {
            "mlserve_no_pyc": "mlserve handler, pruned layer as bundled today (no bytecode), `python -S`",
            "mlserve_pyc": "mlserve handler, same layer + compiled bytecode, `python -S`",
            "pyfunc": "`mlflow.pyfunc.load_model` + predict (dev venv)",
        }
        lines += [
            "",
            f"## 3. Cold start: fresh process, first import → first prediction ({cold['runs']} runs each, interleaved)",
            "",
            "| side | total (ms) | imports (ms) |",
            "|---|---|---|",
        ]
        for side, label in labels.items():
            if side in cold:
                lines.append(
                    f"| {label} | {fmt(_s(cold[side]['total_ms']), 0)} | {fmt(_s(cold[side]['import_ms']), 0)} |"
                )
        lines += [
            "",
            f"Ratio of medians vs pyfunc: {cold['ratio_median']:.2f} with bytecode, "
            f"{cold['ratio_median_no_pyc']:.2f} without. mlserve's total includes reading live.json, sha256 of "
            "every model file, the skops load with the type allow-list, schema compilation and the first request; "
            "'imports' is `import lambda_api.handler` (mlserve) or `import mlflow.pyfunc, pandas` (peer).",
        ]
    size = results.get("size")
    if size and "functions" in size:
        lines += [
            "",
            f"## 4. Deployment size, unzipped ({size['architecture']}, Python {size['python_version']} wheels)",
            "",
            f"Deps layer {size['deps_layer_mb']:.1f} MB (largest: "
            + ", ".join(f"{e['name']} {e['mb']} MB" for e in size["deps_layer_largest"][:6])
            + f"); mlserve layer {size['mlserve_layer_bytes'] / MB:.2f} MB.",
            "",
            "| function | code (MB) | code + layers (MB) | headroom to 250 MB | ≤ 225 MB |",
            "|---|---:|---:|---:|---|",
        ]
        for name, f in size["functions"].items():
            lines.append(
                f"| {name} | {f['code_bytes'] / MB:.3f} | {f['total_mb']:.1f} | {f['headroom_to_250_mb']:.1f} "
                f"| {'yes' if f['meets_225_mb'] else 'no'} |"
            )
    batch = results.get("batch")
    if batch is not None:
        lines += ["", "## 5. Batch: mlserve scorer vs `mlflow models predict` (one run per side)", ""]
        if "table_md" in batch:
            lines.append(batch["table_md"])
        else:
            lines += ["```", json.dumps(batch, indent=2)[:4000], "```"]
    errors = results.get("errors")
    if errors:
        lines += ["", "## Benchmarks that failed", ""] + [f"- {k}: {v}" for k, v in errors.items()]
    return "\n".join(lines) + "\n"


def _s(summary: dict[str, float]) -> dict[str, float]:
    return {"min": summary["min"], "median": summary["p50"], "max": summary["max"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer/shorter repeats (smoke run)")
    parser.add_argument("--skip", default="", help="comma-separated: size,warm,fastpaths,cold,http,batch")
    parser.add_argument("--name", default=None, help="results file stem (default: today's date)")
    args = parser.parse_args()
    skip = {s for s in args.skip.split(",") if s}
    store_uri, model_dir, features = demo_store()
    results: dict[str, Any] = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "make bench  (= .venv/bin/python -m benchmarks.run" + (" --quick" if args.quick else "") + ")",
        "machine": {**machine(), "mlflow": _version("mlflow")},
        "wrk": wrk_version(),
        "errors": {},
    }
    calls = 300 if args.quick else 1000
    steps: list[tuple[str, Any]] = [
        ("size", lambda: _size()),
        ("warm", lambda: run_warm(store_uri, features, [1, 100, 1000], calls, 3 if args.quick else 5)),
        ("fastpaths", lambda: _fast_paths(store_uri, features, calls // 3, 3 if args.quick else 5)),
        ("cold", lambda: _cold(store_uri, model_dir, features, 3 if args.quick else 7)),
        ("http", lambda: run_http(store_uri, model_dir, features, args.quick)),
        ("batch", run_batch),
    ]
    for name, step in steps:
        if name in skip:
            continue
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        try:
            results[name] = step()
        except Exception as exc:  # one failing benchmark must not lose the others
            results["errors"][name] = f"{type(exc).__name__}: {exc}"
            print(f"   failed: {exc}", flush=True)
        print(f"   {time.perf_counter() - started:.0f} s", flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = args.name or datetime.now(UTC).strftime("%Y-%m-%d")
    (RESULTS / f"{stamp}.json").write_text(json.dumps(results, indent=2) + "\n")
    report = markdown(results)
    (RESULTS / f"{stamp}.md").write_text(report)
    print(report)
    print(f"results: benchmarks/results/{stamp}.json, benchmarks/results/{stamp}.md")


def _fast_paths(store_uri: str, features: Any, calls: int, rounds: int) -> dict[str, Any]:
    from benchmarks.fast_paths import measure

    return measure(store_uri, features, [1, 100, 1000], calls, rounds)


def _size() -> dict[str, Any]:
    from benchmarks.deploy_size import measure

    return measure()


def _cold(store_uri: str, model_dir: Path, features: Any, runs: int) -> dict[str, Any]:
    from benchmarks.cold_start import measure

    return measure(store_uri, model_dir, features, runs)


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


if __name__ == "__main__":
    main()
