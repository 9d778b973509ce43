"""The web page in a real browser: `mlserve serve` on a free localhost port with a published
demo model, driven by playwright-core in Debian's Chromium (`make browser-deps` installs both).

- locally: a file:// store, uploads go to the API and are scored in process;
- deployed-like: the model store and the batch bucket in a moto S3 server, the browser
  uploads with the presigned S3 POST and downloads with the presigned GET; the S3
  notification -> batch Lambda hop is played by a watcher thread calling the batch code.

Screenshots, the downloaded predictions and what the browser saw go to test-artifacts/browser/.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import publish
from tests.local_servers import free_port, wait_healthy

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("ui_flow.mjs")
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = os.environ.get("MLSERVE_CHROMIUM", "/usr/bin/chromium")
SERVE = [sys.executable, "-m", "mlserve.cli", "serve"]
MODELS, BATCH = "ui-models", "ui-batch"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def missing_tools() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed (run `make browser-deps`)"
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"no Chromium at {CHROMIUM} (run `make browser-deps`, or set MLSERVE_CHROMIUM)"
    if not (ROOT / "node_modules" / "playwright-core" / "package.json").is_file():
        return "playwright-core is not installed in node_modules (run `make browser-deps`)"
    return None


@pytest.fixture(autouse=True)
def browser_tools() -> None:
    if reason := missing_tools():
        pytest.skip(reason)


@contextmanager
def serve(store_uri: str, tmp_path: Path, **env: str) -> Iterator[str]:
    """`mlserve serve` in a subprocess on a free port; yields its base URL."""
    port = free_port()
    full_env = {
        **os.environ,
        "MLSERVE_CACHE_DIR": str(tmp_path / "cache"),
        "MLSERVE_UPLOAD_MAX_BYTES": "1000000",
        "PYTHONUNBUFFERED": "1",
        **env,
    }
    if "MLSERVE_BATCH_BUCKET" not in env:
        full_env.pop("MLSERVE_BATCH_BUCKET", None)
    log_path = tmp_path / f"server-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*SERVE, "--store", store_uri, "--name", "demo-classifier", "--port", str(port)],
            cwd=ROOT,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(base, process, log_path, timeout=30, what="mlserve serve")
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def write_csv(path: Path, features: Any) -> None:
    """12 rows with a customer id; a bad number on line 4, a missing field on line 8."""
    # Every 40th row: both classes appear in the summary chart.
    sample = features.iloc[::40].head(12)
    rows = [[repr(float(v)) for v in values] for values in sample.itertuples(index=False)]
    rows[2][0] = "abc"
    rows[6] = rows[6][:-1]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["customer_id", *features.columns])
        for number, values in enumerate(rows, start=1):
            writer.writerow([f"C{number:03d}", *values])


def run_flow(base: str, features: Any, tmp_path: Path, **extra: Any) -> tuple[dict[str, Any], list[str]]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    csv_path = tmp_path / "customers.csv"
    write_csv(csv_path, features)
    columns = list(features.columns)
    config = {
        "baseUrl": base,
        "row": features.iloc[0].to_dict(),
        "badColumn": columns[0],
        "missingColumn": columns[1],
        "csvPath": str(csv_path),
        "artifacts": str(ARTIFACTS),
        "chromiumPath": CHROMIUM,
        **extra,
    }
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    completed = subprocess.run(
        ["node", str(SCRIPT), str(config_path)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    seen: dict[str, Any] = json.loads(completed.stdout)
    assert "failure" not in seen, seen["failure"]
    # The browser logs every non-2xx response; the 422 of the bad-value step is expected.
    assert [e for e in seen["consoleErrors"] if "status of 422" not in e] == []
    return seen, columns


def check_prediction(seen: dict[str, Any], columns: list[str]) -> None:
    """One field per signature column, all required; the prediction, both classes, the model."""
    assert seen["badge"] == "demo-classifier v1"
    assert seen["fieldCount"] == len(columns) == seen["requiredMarks"]
    assert seen["prediction"] in ("0", "1")
    # the demo model is logged with class_labels: the page names the class
    assert seen["predictionLabel"] == {"0": "malignant", "1": "benign"}[seen["prediction"]]
    assert seen["bars"] == 2 and seen["barLabels"] == ["0", "1"]
    assert seen["resultModel"].startswith("demo-classifier v1")


def check_batch(seen: dict[str, Any], columns: list[str]) -> None:
    """12 rows, 2 rejected (lines 4 and 8): counts, reasons, summary, preview, downloaded file."""
    batch = seen["batch"]
    assert (batch["read"], batch["scored"], batch["rejected"]) == ("12", "10", "2")
    assert batch["batchError"] is None
    assert {row[0] for row in batch["rejectedTable"]} == {"4", "8"}
    assert any(row[1] == columns[0] and row[3] == "abc" for row in batch["rejectedTable"])
    assert batch["previewColumns"][:2] == ["prediction", "model_version"]
    assert "customer_id" in batch["previewColumns"]
    assert batch["previewRows"] == 10
    assert sorted(batch["summaryLabels"]) == ["0", "1"]
    assert seen["download"]["filename"] == "customers.csv.predictions.csv"
    with Path(seen["download"]["path"]).open(newline="") as handle:
        records = list(csv.DictReader(handle))
    assert [r["customer_id"] for r in records] == [f"C{n:03d}" for n in range(1, 13) if n not in (3, 7)]
    assert {r["prediction"] for r in records} <= {"0", "1"}


def test_page_locally(local_store: Any, demo_registry: Any, breast_cancer: Any, tmp_path: Path) -> None:
    publish(local_store, demo_registry.classifier_dir, version="1", run_id=demo_registry.classifier_run_id)
    with serve(local_store.uri, tmp_path) as base:
        seen, columns = run_flow(base, breast_cancer, tmp_path)
    assert seen["steps"] == ["prediction", "field-errors", "dates", "batch", "api-key"]
    check_prediction(seen, columns)

    # the API's validation errors, next to their fields
    assert seen["badError"] == "Input should be a valid number"
    assert seen["missingError"] == "Field required"
    assert sorted(seen["invalidFields"]) == sorted([columns[0], columns[1]])
    assert seen["resultHidden"]

    assert seen["dates"] == {
        "2024-01-31": "2024-01-31T00:00:00",
        "2024/1/31 14:30": "2024-01-31T14:30:00",
        "31.01.2024": "2024-01-31T00:00:00",
        "01/31/2024": "2024-01-31T00:00:00",
        "31/01/2024 9:05 pm": "2024-01-31T21:05:00",
        "31 Jan 2024": "2024-01-31T00:00:00",
        "January 31, 2024": "2024-01-31T00:00:00",
        "2024-01-31T10:00:00Z": "2024-01-31T10:00:00Z",
        "2024-02-30": "ERROR",
        "yesterday": "ERROR",
    }

    check_batch(seen, columns)
    assert any(url.startswith(base + "/batch/local-uploads/") for url in seen["posts"])

    auth = seen["auth"]
    assert auth["askedFirst"]  # asked before any call that needs the key
    assert "refused" in auth["refusedMessage"]
    assert auth["prediction"] in ("0", "1") and auth["keyPanelHidden"]
    assert auth["sentKeys"][0] == "wrong-key" and set(auth["sentKeys"][1:]) == {"test-key-123"}
    assert auth["storage"] == {"session": "test-key-123", "local": 0, "cookies": ""}

    for name in ("01-prediction.png", "02-field-errors.png", "03-batch-report.png", "04-api-key.png"):
        assert (ARTIFACTS / name).stat().st_size > 10_000


# --- deployed-like: moto S3 server ------------------------------------------------------------


@pytest.fixture
def moto_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def play_batch_lambda(client: Any, live: Any, stop: threading.Event) -> None:
    """Stand-in for the S3 notification -> batch Lambda: score each new `incoming/` object
    with the batch code, writing `results/` in the bucket as the Lambda does."""
    from mlserve.batch.job import S3Input, process_s3_object

    done: set[str] = set()
    while not stop.wait(0.2):
        for obj in client.list_objects_v2(Bucket=BATCH, Prefix="incoming/").get("Contents", []):
            key = obj["Key"]
            if key in done:
                continue
            done.add(key)
            process_s3_object(client, S3Input(BATCH, key, etag=obj["ETag"].strip('"')), live)


def test_page_deployed_with_presigned_s3(
    moto_endpoint: str, demo_registry: Any, breast_cancer: Any, tmp_path: Path
) -> None:
    import boto3

    from mlserve.live import LiveModel
    from mlserve.store import open_store

    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=MODELS)
    client.create_bucket(Bucket=BATCH)
    store = open_store(f"s3://{MODELS}", s3_client=client)
    publish(store, demo_registry.classifier_dir, version="1", run_id=demo_registry.classifier_run_id)
    live = LiveModel(store, "demo-classifier", cache_dir=tmp_path / "batch-cache")
    stop = threading.Event()
    watcher = threading.Thread(target=play_batch_lambda, args=(client, live, stop), daemon=True)
    watcher.start()
    try:
        with serve(f"s3://{MODELS}", tmp_path, MLSERVE_BATCH_BUCKET=BATCH, AWS_ENDPOINT_URL=moto_endpoint) as base:
            seen, columns = run_flow(base, breast_cancer, tmp_path, steps=["prediction", "batch"], prefix="s3-")
    finally:
        stop.set()
        watcher.join(timeout=10)
    assert seen["steps"] == ["prediction", "batch"]
    check_prediction(seen, columns)
    check_batch(seen, columns)
    # The file went straight to S3 with the presigned POST, not through the API.
    assert f"{moto_endpoint}/{BATCH}" in seen["posts"]
    assert not any("/batch/local-uploads/" in url for url in seen["posts"])
    uploaded = client.list_objects_v2(Bucket=BATCH, Prefix="incoming/")["Contents"]
    assert len(uploaded) == 1 and uploaded[0]["Key"].endswith("/customers.csv")
    head = client.head_object(Bucket=BATCH, Key=uploaded[0]["Key"])
    assert head["ContentType"] == "text/csv"
