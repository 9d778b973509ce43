"""A ~1 GiB CSV through the batch fan-out (Step Functions Distributed Map) on MiniStack.

    MLSERVE_E2E_DIR=/work/wt/.e2e python -m benchmarks.fanout_1gib [--rows 5110000]
        [--range-mib 256] [--concurrency 2] [--keep]

Not part of CI or `make test`: it starts its own MiniStack (the installation
`tests/e2e/run.sh` made in MLSERVE_E2E_DIR, same clean environment), deploys the real CDK app
with `cdklocal` (run.sh's MiniStack context plus a fan-out threshold below the file size),
publishes the demo classifier, uploads the file to `incoming/`, waits for the report, then
downloads `results/<file>.predictions.csv` and compares it byte for byte with what one
function writes for the whole file (the same scorer, `score_stream`, run locally with the
version the report names). Prints and writes `benchmarks/results/fanout-1gib-<time>.json`
(wall times, ranges, load averages). Destroys the stack and stops MiniStack by PID at the end.
"""

from __future__ import annotations

import argparse
import filecmp
import hashlib
import json
import os
import platform
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
MIB = 1024 * 1024
MODEL = "demo-classifier"  # the stack's default model_name


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_ministack(e2e_dir: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    """MiniStack exactly as tests/e2e/run.sh starts it (clean environment, own state dir)."""
    binary = e2e_dir / "venv" / "bin" / "ministack"
    if not binary.exists():
        raise SystemExit(f"no MiniStack in {e2e_dir}: run `MLSERVE_E2E_DIR={e2e_dir} tests/e2e/run.sh` once first")
    port = free_port()
    work = e2e_dir / f"state-{port}"
    work.mkdir(parents=True, exist_ok=True)
    log = e2e_dir / f"ministack-{port}.log"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        "TMPDIR": os.environ.get("TMPDIR", "/tmp"),
        "GATEWAY_PORT": str(port),
        "BIND_HOST": "127.0.0.1",
        "NODE_PATH": str(e2e_dir / "node" / "node_modules"),
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "mlserve-e2e",
    }
    with open(log, "wb") as out:
        process = subprocess.Popen([str(binary)], cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(120):
        if process.poll() is not None:
            raise SystemExit(f"MiniStack exited; see {log}")
        try:
            with urllib.request.urlopen(endpoint + "/_ministack/health", timeout=2) as response:
                if response.status == 200:
                    return process, endpoint, log
        except OSError:
            pass
        time.sleep(1)
    process.terminate()
    raise SystemExit(f"MiniStack not healthy after 120 s; see {log}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def host_context(e2e_dir: Path) -> list[str]:
    """run.sh's MiniStack words: layers built for MiniStack's interpreter and this CPU."""
    python = subprocess.run(
        [
            str(e2e_dir / "venv" / "bin" / "python"),
            "-c",
            "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    arch = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine().lower()]
    return [
        "-c",
        f"architecture={arch}",
        "-c",
        f"layer_python_version={python}",
        "-c",
        "refresh_seconds=2",
    ]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(8 * MIB):
            digest.update(block)
    return digest.hexdigest()


def run(args: argparse.Namespace) -> dict[str, Any]:
    import boto3
    from boto3.s3.transfer import TransferConfig

    from benchmarks.batch import write_csv
    from tests.e2e.conftest import ACCOUNT, REGION, STACK, _empty_buckets, cdklocal, find_output

    e2e_dir = Path(os.environ.get("MLSERVE_E2E_DIR", ROOT / ".e2e")).resolve()
    work = Path(tempfile.mkdtemp(prefix="mlserve-fanout-1gib-"))
    context = [
        *host_context(e2e_dir),
        "-c",
        f"fanout_threshold_bytes={64 * MIB}",
        "-c",
        f"fanout_range_bytes={args.range_mib * MIB}",
        "-c",
        f"fanout_max_concurrency={args.concurrency}",
    ]
    figures: dict[str, Any] = {"load_average_start": os.getloadavg(), "context": shlex.join(context)}
    process, endpoint, log = start_ministack(e2e_dir)
    print(f"MiniStack pid {process.pid} at {endpoint}, log {log}", file=sys.stderr, flush=True)
    session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION)
    outputs: dict[str, str] = {}
    try:
        started = time.monotonic()
        cdklocal(["bootstrap", f"aws://{ACCOUNT}/{REGION}"], endpoint)
        cdklocal(["deploy", STACK, "--require-approval", "never", *context], endpoint)
        figures["deploy_seconds"] = round(time.monotonic() - started, 1)
        stacks = session.client("cloudformation", endpoint_url=endpoint).describe_stacks(StackName=STACK)["Stacks"]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
        model_bucket, batch_bucket = find_output(outputs, "model", "bucket"), find_output(outputs, "batch", "bucket")
        s3 = session.client("s3", endpoint_url=endpoint)

        # The demo classifier, registered in a throwaway MLflow registry and published under a
        # version nobody else uses (functions share the host's model cache with other runs).
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
        import mlflow

        from examples.train import configure_mlflow, train_classifier
        from mlserve.live import load_version, read_pointer
        from mlserve.publish import StageRequest, stage_and_activate
        from mlserve.store import open_store

        configure_mlflow(work)
        registered = train_classifier(alias="champion")
        model_dir = Path(mlflow.artifacts.download_artifacts(registered.model_uri, dst_path=str(work / "model")))
        store = open_store(f"s3://{model_bucket}", s3_client=s3)
        version = str(int(time.time()))
        stage_and_activate(
            store, StageRequest(name=MODEL, version=version, model_dir=model_dir, source=registered.model_uri)
        )

        source = work / "big.csv"
        write_csv(source, args.rows)
        size = source.stat().st_size
        figures.update({"rows": args.rows, "input_bytes": size, "input_gib": round(size / 1024**3, 3)})
        name = f"fanout-1gib-{version}.csv"
        print(f"uploading {size / MIB:,.0f} MiB ({args.rows:,} rows) as incoming/{name}", file=sys.stderr, flush=True)
        transfer = TransferConfig(multipart_threshold=64 * MIB, multipart_chunksize=64 * MIB, max_concurrency=2)
        upload_started = time.monotonic()
        s3.upload_file(str(source), batch_bucket, f"incoming/{name}", Config=transfer)
        uploaded = time.monotonic()
        figures["upload_seconds"] = round(uploaded - upload_started, 1)

        report: dict[str, Any] | None = None
        deadline = uploaded + args.timeout
        while report is None and time.monotonic() < deadline:
            try:
                body = s3.get_object(Bucket=batch_bucket, Key=f"results/{name}.report.json")["Body"].read()
                report = json.loads(body)
            except s3.exceptions.NoSuchKey:
                time.sleep(5)
        if report is None:
            raise SystemExit(f"no report within {args.timeout} s of the upload")
        figures["upload_to_report_seconds"] = round(time.monotonic() - uploaded, 1)
        figures["load_average_after_fanout"] = os.getloadavg()
        figures["report"] = {
            k: report.get(k) for k in ("status", "rows_read", "rows_scored", "rows_rejected", "fanout", "model")
        }
        print(json.dumps(figures["report"]), file=sys.stderr, flush=True)
        if report["status"] != "succeeded":
            raise SystemExit(f"the fan-out did not succeed: {report.get('error')}")

        merged = work / "merged.csv"
        s3.download_file(batch_bucket, f"results/{name}.predictions.csv", str(merged), Config=transfer)

        from mlserve.batch.core import BatchOptions, score_stream
        from mlserve.batch.output import LocalFileSink

        pointer = read_pointer(store, MODEL)
        assert pointer is not None and str(pointer["version"]) == report["model"]["version"], pointer
        loaded = load_version(store, pointer, work / "cache", allow_pickle=False)
        single = work / "single.csv"
        sink = LocalFileSink(single)
        with open(source, "rb") as handle:
            score_stream(handle, sink, loaded, BatchOptions())
        sink.commit()
        figures["output_bytes"] = merged.stat().st_size
        figures["identical_to_single_function"] = filecmp.cmp(merged, single, shallow=False)
        figures["merged_sha256"] = sha256_file(merged)
        figures["single_sha256"] = sha256_file(single)
        return figures
    finally:
        figures["load_average_end"] = os.getloadavg()
        if outputs and not args.keep:
            try:
                _empty_buckets(session, endpoint, outputs)
                cdklocal(["destroy", STACK, "--force", *context], endpoint)
            except Exception as exc:  # best effort: MiniStack is stopped next anyway
                print(f"destroy failed: {exc}", file=sys.stderr)
        if not args.keep:
            stop(process)
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept: MiniStack pid {process.pid} at {endpoint}, work dir {work}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5_110_000, help="rows of the 30-column demo data (~1 GiB)")
    parser.add_argument("--range-mib", type=int, default=256, help="context fanout_range_bytes, in MiB")
    parser.add_argument("--concurrency", type=int, default=2, help="context fanout_max_concurrency")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds to wait for the report")
    parser.add_argument("--keep", action="store_true", help="leave the stack, MiniStack and work dir")
    args = parser.parse_args()
    figures = run(args)
    data = {
        "benchmark": "fanout_1gib",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "command": "MLSERVE_E2E_DIR=... python -m benchmarks.fanout_1gib " + shlex.join(sys.argv[1:]),
        **figures,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"fanout-1gib-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(data, indent=2))
    print(json.dumps(data, indent=2))
    print(f"\nwritten {out.relative_to(ROOT)}")
    if not figures.get("identical_to_single_function"):
        raise SystemExit("the merged output differs from single-function scoring")


if __name__ == "__main__":
    main()
