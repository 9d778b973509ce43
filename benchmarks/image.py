"""Figures of the image packaging (context packaging=image), on this machine, no Docker:

- image size: unpacked (podman's storage) and compressed (gzip layers, what a registry holds);
- build time: `layers/image/build.sh` (``--rebuild``: removes the image first; the base and
  the pip site-packages stay cached in .cache/image);
- cold start of the image function: ``podman run`` -> runtime emulator + awslambdaric ->
  first /predict answered (import + live.json + checksums + load + first prediction), for
  the demo classifier, vs the zip function's cold start (benchmarks.cold_start: a fresh
  process with only the layer's dependency set) on the same model;
- warm latency of the sales ensemble (LightGBM + XGBoost + CatBoost) at 1 and 100 rows,
  through the container's invoke endpoint.

    make image && python -m benchmarks.image [--runs 3] [--warm 30] [--rebuild]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, demo_store, summary, write_results

IMAGE = os.environ.get("MLSERVE_IMAGE", "localhost/mlserve:latest")
os.environ.setdefault("CONTAINERS_CONF", str(ROOT / ".cache" / "image" / "containers.conf"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def predict_event(rows: list[dict[str, Any]]) -> dict[str, Any]:
    from tests.apigw_events import rest_v1_event

    return rest_v1_event(
        "POST", "/predict", body=json.dumps({"instances": rows}), headers={"content-type": "application/json"}
    )


class Container:
    """The API function's container, started with the store mounted read-only."""

    def __init__(self, store_dir: Path, model_name: str) -> None:
        self.port = free_port()
        command = ["podman", "run", "-d", "--rm", "--network", "host", "-e", f"MLSERVE_RIE_PORT={self.port}"]
        command += ["-e", f"MLSERVE_RUNTIME_API_PORT={free_port()}", "-e", "MLSERVE_STORE=file:///store"]
        command += ["-e", f"MLSERVE_MODEL_NAME={model_name}", "-e", "MLSERVE_CACHE_DIR=/tmp/mlserve"]
        command += ["-e", "POWERTOOLS_TRACE_DISABLED=true", "-v", f"{store_dir}:/store:ro"]
        self.started = time.perf_counter()
        command += [IMAGE, "lambda_api.handler.handler"]
        self.id = subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.port}/2015-03-31/functions/function/invocations"
        for _ in range(600):
            try:
                request = urllib.request.Request(url, data=json.dumps(event).encode())
                with urllib.request.urlopen(request, timeout=600) as response:
                    result: dict[str, Any] = json.loads(response.read())
                if result.get("statusCode") != 200:
                    raise RuntimeError(f"function answered {result}")
                return result
            except (ConnectionError, urllib.error.URLError):
                time.sleep(0.05)
        raise RuntimeError("container never answered")

    def stop(self) -> None:
        subprocess.run(["podman", "kill", self.id], capture_output=True, check=False)


def image_sizes() -> dict[str, int]:
    unpacked = int(subprocess.check_output(["podman", "image", "inspect", IMAGE, "--format", "{{.Size}}"]).strip())
    with tempfile.TemporaryDirectory() as layout:
        subprocess.run(
            ["skopeo", "copy", "--quiet", "--dest-compress", "--dest-compress-format", "gzip",
             f"containers-storage:{IMAGE}", f"oci:{layout}:mlserve"],
            check=True,
        )  # fmt: skip
        compressed = sum(blob.stat().st_size for blob in Path(layout, "blobs", "sha256").iterdir())
    return {"unpacked_bytes": unpacked, "compressed_bytes": compressed}


def image_cold_start(store_dir: Path, model_name: str, rows: list[dict[str, Any]], runs: int) -> dict[str, float]:
    samples = []
    for _ in range(runs):
        container = Container(store_dir, model_name)
        try:
            container.invoke(predict_event(rows))
            samples.append((time.perf_counter() - container.started) * 1000)
        finally:
            container.stop()
    return summary(samples)


def warm_latency(store_dir: Path, model_name: str, rows: list[dict[str, Any]], count: int) -> dict[str, float]:
    container = Container(store_dir, model_name)
    try:
        container.invoke(predict_event(rows))  # cold start, untimed
        samples = []
        for _ in range(count):
            started = time.perf_counter()
            container.invoke(predict_event(rows))
            samples.append((time.perf_counter() - started) * 1000)
        return summary(samples)
    finally:
        container.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warm", type=int, default=30)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    result: dict[str, Any] = {"image": IMAGE}
    if args.rebuild:
        subprocess.run(["podman", "rmi", "-f", IMAGE], capture_output=True, check=False)
        started = time.perf_counter()
        env = {**os.environ, "MLSERVE_IMAGE_EXTRA": str(ROOT / "examples" / "requirements-sales.txt")}
        subprocess.run([str(ROOT / "layers" / "image" / "build.sh")], check=True, env=env)
        result["rebuild_seconds"] = time.perf_counter() - started
    result["size"] = image_sizes()

    from benchmarks.cold_start import measure, one_row_body
    from examples.train_sales import SALES, sales_frame, train_sales
    from mlserve.registry import publish_model_uri

    store_uri, model_dir, features = demo_store()
    store_dir = Path(store_uri.removeprefix("file://"))
    classifier_row = json.loads(one_row_body(features))["instances"]
    result["classifier_cold_start_ms"] = {
        "image": image_cold_start(store_dir, "demo-classifier", classifier_row, args.runs),
        "zip": measure(store_uri, model_dir, features, args.runs)["mlserve_pyc"]["total_ms"],
    }
    train_sales(alias="champion")
    publish_model_uri(f"models:/{SALES}@champion", store_uri, promoted_by="benchmark")
    rows = json.loads(sales_frame(stores=10, days=10, seed=3)[0].to_json(orient="records", date_format="iso"))
    result["sales_cold_start_ms"] = image_cold_start(store_dir, SALES, rows[:1], 1)
    result["sales_warm_ms"] = {
        "1_row": warm_latency(store_dir, SALES, rows[:1], args.warm),
        "100_rows": warm_latency(store_dir, SALES, rows[:100], args.warm),
    }
    print(json.dumps(result, indent=2))
    print(write_results("image", result))


if __name__ == "__main__":
    main()
