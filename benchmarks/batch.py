"""Batch scoring throughput and peak memory, beside `mlflow models predict`.

    python -m benchmarks.batch --rows 100000,1000000,5000000 [--paths local,s3,mlflow]

For each size: a CSV of the 30-column demo data (breast cancer rows repeated) is scored by
  - local:  `mlserve`'s batch scorer, local file -> local file (what `mlserve score` runs);
  - s3:     the same scorer through the S3 job (GetObject stream -> multipart upload),
            against a ThreadedMotoServer running in this process;
  - workers: `mlserve score --workers <all cores>` (record-aligned ranges in processes,
            mlserve.batch.parallel); its peak RSS is the sum over the process tree, sampled;
  - mlflow: `mlflow models predict -m <model dir> -i in.csv -o out.json -t csv --env-manager local`.
Every run is a fresh subprocess started by a tiny launcher that reports its children's
peak RSS (`getrusage(RUSAGE_CHILDREN)`), so each figure is that run's own peak. rows/s is
end-to-end wall time of the subprocess (interpreter start, imports and model load included,
as a user would see it); `score rows/s` is the scorer alone, from its report.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
BUCKET = "mlserve-bench"

LAUNCHER = """
import json, resource, subprocess, sys, time
started = time.perf_counter()
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
seconds = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"returncode": proc.returncode, "seconds": seconds,
                  "maxrss_kb": usage.ru_maxrss, "cpu_seconds": usage.ru_utime + usage.ru_stime,
                  "stdout": proc.stdout[-4000:], "stderr": proc.stderr[-4000:]}))
"""

LOCAL_SCRIPT = """
import json, sys
from pathlib import Path
from mlserve.batch.core import BatchOptions
from mlserve.batch.job import score_local
from mlserve.live import LiveModel
from mlserve.store import open_store
store, name, cache, src, out = sys.argv[1:6]
report = score_local(src, out, LiveModel(open_store(store), name, cache_dir=Path(cache)), BatchOptions())
print(json.dumps({k: report[k] for k in ("status", "rows_scored", "rows_per_second")}))
"""

WORKERS_SCRIPT = """
import json, os, sys, threading, time
from pathlib import Path
import psutil
from mlserve.batch.core import BatchOptions
from mlserve.batch.parallel import score_local_parallel
store, name, cache, src, out = sys.argv[1:6]
peak = [0]
done = threading.Event()
def sample():
    me = psutil.Process()
    while not done.is_set():
        total = 0
        for proc in [me, *me.children(recursive=True)]:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                pass
        peak[0] = max(peak[0], total)
        time.sleep(0.1)
threading.Thread(target=sample, daemon=True).start()
report = score_local_parallel(src, out, store_uri=store, model_name=name, options=BatchOptions(),
                              workers=os.cpu_count() or 1, cache_dir=cache)
done.set()
print(json.dumps({**{k: report[k] for k in ("status", "rows_scored", "rows_per_second")},
                  "peak_tree_rss_kb": peak[0] // 1024, "workers": os.cpu_count()}))
"""

S3_SCRIPT = """
import json, sys
from pathlib import Path
import boto3
from mlserve.batch.core import BatchOptions
from mlserve.batch.job import S3Input, process_s3_object
from mlserve.live import LiveModel
from mlserve.store import open_store
endpoint, bucket, key, store, name, cache = sys.argv[1:7]
client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
live = LiveModel(open_store(store), name, cache_dir=Path(cache))
report = process_s3_object(client, S3Input(bucket, key), live, options=BatchOptions())
print(json.dumps({k: report[k] for k in ("status", "rows_scored", "rows_per_second")}))
"""


def measure(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", LAUNCHER, *cmd], capture_output=True, text=True, env=env, check=True)
    result: dict[str, Any] = json.loads(out.stdout)
    if result["returncode"] != 0:
        raise RuntimeError(f"{cmd[:4]} failed:\n{result['stderr']}")
    return result


def prepare_model(work: Path) -> tuple[Path, str]:
    """Train + register the demo classifier in a throwaway MLflow registry; publish it to a
    local mlserve store. Returns (MLflow model dir, store URI)."""
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    import mlflow

    from examples.train import configure_mlflow, train_classifier
    from mlserve.publish import StageRequest, stage_and_activate
    from mlserve.store import open_store

    configure_mlflow(work)
    registered = train_classifier(alias="champion")
    model_dir = Path(mlflow.artifacts.download_artifacts(registered.model_uri, dst_path=str(work / "model")))
    store = open_store((work / "store").as_uri())
    stage_and_activate(
        store,
        StageRequest(
            name="demo-classifier", version=registered.version, model_dir=model_dir, source=registered.model_uri
        ),
    )
    return model_dir, store.uri


def write_csv(path: Path, rows: int) -> None:
    from examples.train import breast_cancer_frame

    features, _ = breast_cancer_frame()
    text = features.to_csv(index=False)
    header, body = text[: text.index("\n") + 1], text[text.index("\n") + 1 :]
    lines = body.splitlines(keepends=True)
    block = "".join(lines)
    with open(path, "w") as handle:
        handle.write(header)
        full, rest = divmod(rows, len(lines))
        for _ in range(full):
            handle.write(block)
        handle.write("".join(lines[:rest]))


def run(sizes: list[int], paths: list[str], keep: bool) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="mlserve-bench-"))
    results: list[dict[str, Any]] = []
    server = None
    try:
        model_dir, store_uri = prepare_model(work)
        # This checkout's mlserve (layers/common/python), not whatever the venv has installed.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "layers" / "common" / "python")])}
        s3 = endpoint = None
        if "s3" in paths:
            import logging

            import boto3
            from moto.server import ThreadedMotoServer

            logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no per-request lines
            server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            server.start()
            host, port = server.get_host_and_port()
            endpoint = f"http://{host}:{port}"
            s3 = boto3.client(
                "s3",
                endpoint_url=endpoint,
                region_name="us-east-1",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
            s3.create_bucket(Bucket=BUCKET)
        for rows in sizes:
            src = work / f"in-{rows}.csv"
            write_csv(src, rows)
            size_mb = src.stat().st_size / 2**20
            for path in paths:
                print(f"  {rows:>9,} rows  {path:<6} ...", file=sys.stderr, flush=True)
                entry: dict[str, Any] = {"rows": rows, "path": path, "input_mb": round(size_mb, 1)}
                if path == "local":
                    m = measure(
                        [
                            sys.executable,
                            "-c",
                            LOCAL_SCRIPT,
                            store_uri,
                            "demo-classifier",
                            str(work / "cache"),
                            str(src),
                            str(work / "out.csv"),
                        ],
                        env,
                    )
                elif path == "workers":
                    m = measure(
                        [
                            sys.executable,
                            "-c",
                            WORKERS_SCRIPT,
                            store_uri,
                            "demo-classifier",
                            str(work / "cache"),
                            str(src),
                            str(work / "out.csv"),
                        ],
                        env,
                    )
                elif path == "s3":
                    assert s3 is not None and endpoint is not None
                    key = f"incoming/bench-{rows}.csv"
                    s3.upload_file(str(src), BUCKET, key)
                    m = measure(
                        [
                            sys.executable,
                            "-c",
                            S3_SCRIPT,
                            endpoint,
                            BUCKET,
                            key,
                            store_uri,
                            "demo-classifier",
                            str(work / "cache"),
                        ],
                        env,
                    )
                    # Free the moto server's memory before the next size.
                    for k in (key, f"results/bench-{rows}.csv.predictions.csv"):
                        s3.delete_object(Bucket=BUCKET, Key=k)
                elif path == "mlflow":
                    mlflow_bin = str(Path(sys.executable).with_name("mlflow"))
                    m = measure(
                        [
                            mlflow_bin,
                            "models",
                            "predict",
                            "-m",
                            str(model_dir),
                            "-i",
                            str(src),
                            "-o",
                            str(work / "out.json"),
                            "-t",
                            "csv",
                            "--env-manager",
                            "local",
                        ],
                        env,
                    )
                else:
                    raise SystemExit(f"unknown path {path!r}")
                entry["seconds"] = round(m["seconds"], 2)
                # CPU seconds (user + system) of the run and every process it waited for: on a
                # shared, loaded machine the one figure other work does not inflate much.
                entry["cpu_seconds"] = round(m["cpu_seconds"], 2)
                entry["load_average_1m"] = round(os.getloadavg()[0], 1)
                entry["rows_per_second"] = round(rows / m["seconds"])
                entry["peak_rss_mb"] = round(m["maxrss_kb"] / 1024, 1)
                if path != "mlflow":
                    report = json.loads(m["stdout"].strip().splitlines()[-1])
                    assert report["status"] == "succeeded" and report["rows_scored"] == rows, report
                    entry["score_rows_per_second"] = round(report["rows_per_second"])
                    if "peak_tree_rss_kb" in report:  # all worker processes together
                        entry["peak_rss_mb"] = round(report["peak_tree_rss_kb"] / 1024, 1)
                        entry["workers"] = report["workers"]
                results.append(entry)
            src.unlink()
    finally:
        if server is not None:
            server.stop()
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    return {
        "benchmark": "batch",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "results": results,
    }


def table(data: dict[str, Any]) -> str:
    lines = [
        "| rows | path | input MB | seconds | CPU s | load 1m | rows/s (end-to-end) | scorer rows/s | peak RSS MB "
        "| vs mlflow (wall) | vs mlflow (CPU) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    mlflow = {r["rows"]: r for r in data["results"] if r["path"] == "mlflow"}
    for r in data["results"]:
        base = mlflow.get(r["rows"])
        ratio = f"{r['rows_per_second'] / base['rows_per_second']:.1f}x" if base else ""
        cpu_ratio = f"{base['cpu_seconds'] / r['cpu_seconds']:.1f}x" if base and "cpu_seconds" in r else ""
        lines.append(
            f"| {r['rows']:,} | {r['path']} | {r['input_mb']} | {r['seconds']} | {r.get('cpu_seconds', '')} | "
            f"{r.get('load_average_1m', '')} | {r['rows_per_second']:,} | "
            f"{format(r['score_rows_per_second'], ',') if 'score_rows_per_second' in r else ''} | "
            f"{r['peak_rss_mb']} | {ratio} | {cpu_ratio} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="100000,1000000", help="comma-separated row counts")
    parser.add_argument("--paths", default="local,s3,mlflow", help="comma-separated: local, workers, s3, mlflow")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    sizes = [int(s) for s in args.rows.split(",") if s]
    data = run(sizes, [p.strip() for p in args.paths.split(",") if p.strip()], args.keep)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"batch-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(data, indent=2))
    print(table(data))
    print(f"\nwritten {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
