"""HTTP throughput and latency: our FastAPI app under uvicorn vs `mlflow models serve
--env-manager local`, both on `/invocations`, same model, same payloads, same load
generator (wrk), concurrency 1 and 8, on loopback.

    python -m benchmarks.http_serving [--duration 5] [--repeats 3] [--rows 1,100] [--workers 1]

Both servers run the same uvicorn (the dev venv's) with the same worker count —
`--workers 1` by default, which is `mlflow models serve`'s default — and uvicorn's
defaults otherwise (access log on for both). Why not 2 workers on 2 cores: with
`--workers N>1` uvicorn binds its listening socket itself with proto=0, so asyncio
never sets TCP_NODELAY on accepted connections, and every small response (headers and
body are two writes) waits ~40 ms for the client's delayed ACK — on both sides alike,
which turns the comparison into a measurement of that timer.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, demo_store, write_results

MODEL_NAME = "demo-classifier"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(url: str, body: bytes, timeout: float, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before it was ready")
        request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} not ready after {timeout}s")


@contextmanager
def server(command: list[str], env: dict[str, str], url: str, body: bytes, log: Path) -> Iterator[None]:
    """Start a server in its own process group; always kill that group (and only it)."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            wait_ready(url, body, 120, proc)
            for _ in range(20):  # warm every worker
                urllib.request.urlopen(
                    urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}), timeout=10
                ).read()
            yield
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if not match:
        raise ValueError(f"unparsable wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str) -> dict[str, float]:
    result: dict[str, float] = {}
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if not rps:
        raise ValueError(f"no Requests/sec in wrk output:\n{output}")
    result["requests_per_s"] = float(rps.group(1))
    for pct in ("50", "99"):
        match = re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", output, re.MULTILINE)
        if match:
            result[f"p{pct}_ms"] = _ms(match.group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors: (.*)", output)
    result["non_2xx"] = float(non2xx.group(1)) if non2xx else 0.0
    result["socket_errors"] = float(sum(int(n) for n in re.findall(r"\d+", errors.group(1)))) if errors else 0.0
    return result


def run_wrk(url: str, body_file: Path, connections: int, duration: float) -> dict[str, float]:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk / brew install wrk)")
    script = body_file.with_suffix(".lua")
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"local f = io.open({json.dumps(str(body_file))}, 'rb')\n"
        "wrk.body = f:read('*a')\n"
        "f:close()\n"
    )
    threads = min(connections, 2)
    command = [wrk, f"-t{threads}", f"-c{connections}", f"-d{int(duration)}s", "--latency", "-s", str(script), url]
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=duration + 60)
    return parse_wrk(out.stdout)


def invocations_body(features: Any, rows: int) -> bytes:
    return json.dumps({"dataframe_split": features.head(rows).to_dict(orient="split", index=False)}).encode()


def servers(store_uri: str, model_dir: Path, workers: int) -> dict[str, tuple[list[str], dict[str, str]]]:
    bin_dir = Path(sys.executable).parent
    ours_env = {
        **os.environ,
        "MLSERVE_STORE": store_uri,
        "MLSERVE_MODEL_NAME": MODEL_NAME,
        "MLSERVE_MAX_ROWS": "100000",
        # As `mlserve serve` runs it: scoring in worker threads, like mlflow's to_thread.
        "MLSERVE_SCORE_IN_THREADS": "true",
        "PYTHONPATH": str(ROOT),
    }
    # mlflow execs `uvicorn` from PATH: the venv's.
    mlflow_env = {**os.environ, "PYTHONPATH": str(ROOT), "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    port = "{port}"
    ours = [sys.executable, "-m", "uvicorn", "lambda_api.app:app", "--host", "127.0.0.1", "--port", port]
    peer = [str(bin_dir / "mlflow"), "models", "serve", "-m", str(model_dir), "--env-manager", "local"]
    peer += ["--host", "127.0.0.1", "--port", port]
    workers_args = ["--workers", str(workers)]
    return {"mlserve": ([*ours, *workers_args], ours_env), "mlflow": ([*peer, *workers_args], mlflow_env)}


def measure(
    store_uri: str,
    model_dir: Path,
    features: Any,
    *,
    rows: list[int],
    connections: list[int],
    duration: float,
    repeats: int,
    workers: int,
) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="mlserve-http-"))
    bodies = {n: workdir / f"body-{n}.json" for n in rows}
    for n, path in bodies.items():
        path.write_bytes(invocations_body(features, n))
    runs: dict[str, dict[str, list[dict[str, float]]]] = {}
    commands: dict[str, str] = {}
    for side, (template, env) in servers(store_uri, model_dir, workers).items():
        port = free_port()
        command = [part.replace("{port}", str(port)) for part in template]
        commands[side] = " ".join(command)
        url = f"http://127.0.0.1:{port}/invocations"
        with server(command, env, url, bodies[rows[0]].read_bytes(), workdir / f"{side}.log"):
            for n in rows:
                for c in connections:
                    key = f"rows={n},c={c}"
                    runs.setdefault(key, {}).setdefault(side, [])
                    for _ in range(repeats):
                        runs[key][side].append(run_wrk(url, bodies[n], c, duration))
    return {"commands": commands, "workers": workers, "duration_s": duration, "repeats": repeats, "runs": runs}


def medians(samples: list[dict[str, float]], key: str) -> float:
    return statistics.median(s[key] for s in samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", default="1,100")
    parser.add_argument("--connections", default="1,8")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    store_uri, model_dir, features = demo_store()
    result = measure(
        store_uri,
        model_dir,
        features,
        rows=[int(r) for r in args.rows.split(",")],
        connections=[int(c) for c in args.connections.split(",")],
        duration=args.duration,
        repeats=args.repeats,
        workers=args.workers,
    )
    for key, sides in result["runs"].items():
        ours, peer = sides["mlserve"], sides["mlflow"]
        ratio = medians(ours, "requests_per_s") / medians(peer, "requests_per_s")
        print(
            f"{key}: mlserve {medians(ours, 'requests_per_s'):.0f} req/s p50 {medians(ours, 'p50_ms'):.2f} ms | "
            f"mlflow {medians(peer, 'requests_per_s'):.0f} req/s p50 {medians(peer, 'p50_ms'):.2f} ms | {ratio:.2f}x"
        )
    print(write_results("http", result))


if __name__ == "__main__":
    main()
