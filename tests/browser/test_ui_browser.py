"""The web page in a real browser: `mlserve serve` on a free localhost port with a published
demo model, driven by playwright-core in Debian's Chromium (`make browser-deps` installs both).

Screenshots and the downloaded predictions go to test-artifacts/browser/.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import publish

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("ui_flow.mjs")
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = os.environ.get("MLSERVE_CHROMIUM", "/usr/bin/chromium")

SERVE = [sys.executable, "-m", "mlserve.cli", "serve"]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def missing_tools() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed (run `make browser-deps`)"
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"no Chromium at {CHROMIUM} (run `make browser-deps`, or set MLSERVE_CHROMIUM)"
    if not (ROOT / "node_modules" / "playwright-core" / "package.json").is_file():
        return "playwright-core is not installed in node_modules (run `make browser-deps`)"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def server(local_store: Any, demo_registry: Any, tmp_path: Path) -> Iterator[str]:
    publish(local_store, demo_registry.classifier_dir, version="1", run_id=demo_registry.classifier_run_id)
    port = free_port()
    env = {
        **os.environ,
        "MLSERVE_CACHE_DIR": str(tmp_path / "cache"),
        "MLSERVE_UPLOAD_MAX_BYTES": "1000000",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("MLSERVE_BATCH_BUCKET", None)
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(
        [*SERVE, "--store", local_store.uri, "--name", "demo-classifier", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mlserve serve did not start:\n{(tmp_path / 'server.log').read_text()}")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def write_csv(path: Path, features: Any) -> tuple[int, int]:
    """10 good rows, one row with a bad number (line 4), one with a missing field (line 8)."""
    columns = list(features.columns)
    # Every 40th row: both classes appear in the summary chart.
    sample = features.iloc[::40].head(12)
    rows = [[repr(float(v)) for v in values] for values in sample.itertuples(index=False)]
    rows[2][0] = "abc"
    rows[6] = rows[6][:-1]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["customer_id", *columns])
        for number, values in enumerate(rows, start=1):
            writer.writerow([f"C{number:03d}", *values])
    return 10, 2


def test_page_in_a_real_browser(server: str, breast_cancer: Any, tmp_path: Path) -> None:
    reason = missing_tools()
    if reason:
        pytest.skip(reason)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    csv_path = tmp_path / "customers.csv"
    good, bad = write_csv(csv_path, breast_cancer)
    columns = list(breast_cancer.columns)
    config = {
        "baseUrl": server,
        "row": breast_cancer.iloc[0].to_dict(),
        "badColumn": columns[0],
        "missingColumn": columns[1],
        "csvPath": str(csv_path),
        "artifacts": str(ARTIFACTS),
        "chromiumPath": CHROMIUM,
    }
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    completed = subprocess.run(
        ["node", str(SCRIPT), str(config_path)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    seen = json.loads(completed.stdout)
    assert "failure" not in seen, seen["failure"]
    assert seen["steps"] == ["prediction", "field-errors", "dates", "batch", "api-key"]
    # The browser logs every non-2xx response; the 422 of the bad-value step is expected.
    assert [e for e in seen["consoleErrors"] if "status of 422" not in e] == []

    # the form: one field per signature column, all required, the prediction and both classes
    assert seen["badge"] == "demo-classifier v1"
    assert seen["fieldCount"] == len(columns) == seen["requiredMarks"]
    assert seen["prediction"] in ("0", "1")
    assert seen["bars"] == 2 and seen["barLabels"] == ["0", "1"]
    assert seen["resultModel"].startswith("demo-classifier v1")

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

    batch = seen["batch"]
    assert (batch["read"], batch["scored"], batch["rejected"]) == (str(good + bad), str(good), str(bad))
    assert batch["batchError"] is None
    lines = {row[0] for row in batch["rejectedTable"]}
    assert lines == {"4", "8"}
    assert any(row[1] == columns[0] and row[3] == "abc" for row in batch["rejectedTable"])
    assert batch["previewColumns"][:2] == ["prediction", "model_version"]
    assert "customer_id" in batch["previewColumns"]
    assert batch["previewRows"] == good
    assert sorted(batch["summaryLabels"]) == ["0", "1"]

    downloaded = Path(seen["download"]["path"])
    assert seen["download"]["filename"].endswith(".predictions.csv")
    with downloaded.open(newline="") as handle:
        records = list(csv.DictReader(handle))
    assert len(records) == good
    assert [r["customer_id"] for r in records] == [f"C{n:03d}" for n in range(1, 13) if n not in (3, 7)]
    assert {r["prediction"] for r in records} <= {"0", "1"}
    auth = seen["auth"]
    assert auth["askedFirst"]  # asked before any call that needs the key
    assert "refused" in auth["refusedMessage"]
    assert auth["prediction"] in ("0", "1") and auth["keyPanelHidden"]
    assert auth["sentKeys"][0] == "wrong-key" and set(auth["sentKeys"][1:]) == {"test-key-123"}
    assert auth["storage"] == {"session": "test-key-123", "local": 0, "cookies": ""}

    for name in ("01-prediction.png", "02-field-errors.png", "03-batch-report.png"):
        assert (ARTIFACTS / name).stat().st_size > 10_000
