"""The packaging=image container (built without Docker by `make image`) answers a real API
Gateway /predict event for the sales ensemble with exactly the model's own predictions.

The image runs as on a non-Lambda host: its entrypoint starts mlserve's Runtime API emulator
(layers/image/runtime_emulator.py) around awslambdaric, and the test POSTs the event to the
invoke endpoint, the same call MiniStack and `docker run -p 9000:8080` users make."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.apigw_events import rest_v1_event

IMAGE = os.environ.get("MLSERVE_IMAGE", "localhost/mlserve:latest")
REPO_ROOT = Path(__file__).resolve().parents[2]

if shutil.which("podman") is None:
    pytest.skip("podman is not installed: image tests skipped (make image installs it)", allow_module_level=True)
os.environ.setdefault("CONTAINERS_CONF", str(REPO_ROOT / ".cache" / "image" / "containers.conf"))
if subprocess.run(["podman", "image", "exists", IMAGE], check=False).returncode != 0:
    pytest.skip(f"image {IMAGE} is not built: run `make image` first", allow_module_level=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def sales_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Any]]:
    """A small sales ensemble trained and registered with real MLflow, published to a store."""
    import mlflow
    from mlflow.tracking._tracking_service import utils as tracking_utils

    from examples.train import configure_mlflow
    from examples.train_sales import SALES, train_sales
    from mlserve.registry import publish_model_uri

    data_dir = tmp_path_factory.mktemp("sales-mlflow")
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    # configure_mlflow sets MLflow's process-wide tracking URI, which outranks the variable:
    # put it back afterwards, or later tests' default clients would open this registry.
    previous_global = tracking_utils._tracking_uri
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{data_dir / 'mlflow.db'}"
    try:
        configure_mlflow(data_dir)
        train_sales(alias="champion", n_estimators=20)
        store = data_dir / "store"
        publish_model_uri(f"models:/{SALES}@champion", store.as_uri(), promoted_by="test")
        model = mlflow.sklearn.load_model(f"models:/{SALES}@champion")
        yield store, model
    finally:
        tracking_utils._tracking_uri = previous_global
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous


@pytest.fixture(scope="module")
def api_container(sales_store: tuple[Path, Any]) -> Iterator[str]:
    store, _ = sales_store
    invoke_port, runtime_port = free_port(), free_port()
    container = subprocess.run(
        ["podman", "run", "-d", "--rm", "--network", "host",
         "-e", f"MLSERVE_RIE_PORT={invoke_port}", "-e", f"MLSERVE_RUNTIME_API_PORT={runtime_port}",
         "-e", "MLSERVE_STORE=file:///store", "-e", "MLSERVE_MODEL_NAME=sales-forecast",
         "-e", "MLSERVE_CACHE_DIR=/tmp/mlserve", "-e", "POWERTOOLS_TRACE_DISABLED=true",
         "-v", f"{store}:/store:ro", IMAGE, "lambda_api.handler.handler"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    try:
        url = f"http://127.0.0.1:{invoke_port}/2015-03-31/functions/function/invocations"
        for _ in range(120):  # the emulator is up within a second; the model loads on first call
            try:
                socket.create_connection(("127.0.0.1", invoke_port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        yield url
    finally:
        subprocess.run(["podman", "kill", container], capture_output=True, check=False)


def invoke(url: str, event: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(url, data=json.dumps(event).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=300) as response:
        result: dict[str, Any] = json.loads(response.read())
    return result


def test_predict_event_matches_model_predict(api_container: str, sales_store: tuple[Path, Any]) -> None:
    from examples.train_sales import sales_frame

    _, model = sales_store
    rows = sales_frame(stores=3, days=4, seed=7)[0]
    instances = json.loads(rows.to_json(orient="records", date_format="iso"))
    result = invoke(
        api_container,
        rest_v1_event(
            "POST", "/predict", body=json.dumps({"instances": instances}), headers={"content-type": "application/json"}
        ),
    )
    assert result["statusCode"] == 200, result
    body = json.loads(result["body"])
    assert body["model"]["name"] == "sales-forecast"
    assert len(body["predictions"]) == len(rows) == 12
    assert body["predictions"] == pytest.approx(list(model.predict(rows)), rel=1e-9)


def test_bad_row_gets_422_naming_the_field(api_container: str) -> None:
    row = {"store": 1, "day_of_week": 1, "date": "not a date", "promo": 1, "state_holiday": "0",
           "school_holiday": 0, "store_type": "a", "assortment": "a", "competition_distance": 10.0}  # fmt: skip
    result = invoke(
        api_container,
        rest_v1_event(
            "POST", "/predict", body=json.dumps({"instances": [row]}), headers={"content-type": "application/json"}
        ),
    )
    assert result["statusCode"] == 422
    assert "date" in result["body"]
