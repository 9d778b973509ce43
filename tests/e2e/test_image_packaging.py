"""`-c packaging=image` deployed to MiniStack: the API, batch and redeploy functions run from
the container image `make image` built (through podman's Docker-compatible API), serving the
LightGBM + XGBoost + CatBoost sales ensemble (examples/train_sales.py) from the real MLflow
registry. Covers what a team does with the image packaging: /predict answers with the
ensemble's own predictions, a CSV dropped into incoming/ is scored by the batch image
function, and a ModelPromoted event makes the API answer with the new version's predictions.

Run it with `tests/e2e/run_image.sh` (run.sh's image phase; docs/e2e.md). Skipped with the
reason unless the stack under test was deployed with `-c packaging=image`."""

from __future__ import annotations

import io
import json
import os
import shlex
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import publish
from tests.e2e.conftest import STACK, Deployed, http

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]
SALES = "sales-forecast"
IMAGE_FUNCTIONS = ("api", "batch", "redeploy")


def _deployed_with_image() -> bool:
    return "packaging=image" in shlex.split(os.environ.get("MLSERVE_E2E_CDK_CONTEXT", ""))


if not _deployed_with_image():
    pytest.skip(
        "the stack under test is not deployed with -c packaging=image: run tests/e2e/run_image.sh "
        "(run.sh's image phase, needs podman and `make image`)",
        allow_module_level=True,
    )


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 300, interval: float = 2.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


@dataclass
class SalesVersion:
    version: str
    run_id: str
    model_dir: Path  # the MLflow model directory as the registry stores it
    model: Any  # the same model loaded by MLflow: the reference predictions


def _train_sales_versions(data_dir: Path) -> list[SalesVersion]:
    """Two versions of the sales ensemble trained and registered with real MLflow (sqlite):
    different tree counts, so their predictions differ and the promotion is observable."""
    import mlflow

    from examples.train import configure_mlflow
    from examples.train_sales import train_sales

    configure_mlflow(data_dir)
    versions = []
    for n_estimators in (20, 8):
        registered = train_sales(alias=None, n_estimators=n_estimators)
        model_dir = Path(
            mlflow.artifacts.download_artifacts(registered.model_uri, dst_path=str(data_dir / f"v{registered.version}"))
        )
        model = mlflow.sklearn.load_model(registered.model_uri)
        versions.append(SalesVersion(registered.version, registered.run_id, model_dir, model))
    return versions


@pytest.fixture(scope="session")
def sales_training(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Future[list[SalesVersion]]]:
    """Training starts before the `deployed` fixture and runs beside it (cdklocal is a
    subprocess): the phase's ~1 minute of training overlaps the deploy instead of following it.
    Session scope, requested before `deployed`, so pytest sets it up first."""
    data_dir = tmp_path_factory.mktemp("sales-mlflow")
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{data_dir / 'mlflow.db'}"
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sales-training") as pool:
            yield pool.submit(_train_sales_versions, data_dir)
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous


@pytest.fixture(scope="module")
def sales_versions(sales_training: Future[list[SalesVersion]]) -> list[SalesVersion]:
    return sales_training.result()


@pytest.fixture(scope="module")
def rows() -> Any:
    from examples.train_sales import sales_frame

    return sales_frame(stores=4, days=5, seed=11)[0]


def instances(rows: Any) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = json.loads(rows.to_json(orient="records", date_format="iso"))
    return records


@pytest.fixture(scope="module")
def published(
    sales_training: Future[list[SalesVersion]], deployed: Deployed, sales_versions: list[SalesVersion]
) -> Deployed:
    """Version 1 staged and made live in the deployed model bucket (as the redeploy would)."""
    from mlserve.store import open_store

    first = sales_versions[0]
    store = open_store(f"s3://{deployed.model_bucket}", s3_client=deployed.client("s3"))
    publish(store, first.model_dir, name=SALES, version=first.version, run_id=first.run_id)
    return deployed


def serving(deployed: Deployed, version: str) -> Callable[[], Any]:
    def probe() -> Any:
        status, body = http("GET", f"{deployed.api}/health")
        return body if status == 200 and body.get("model", {}).get("version") == version else None

    return probe


def test_api_batch_and_redeploy_run_from_the_image(published: Deployed) -> None:
    """The deployed functions are PackageType Image (one image, a command each); the webhook stays zip."""
    cloudformation = published.client("cloudformation")
    lambda_client = published.client("lambda")
    functions = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=STACK)
        for r in page["StackResourceSummaries"]
        if r["ResourceType"] == "AWS::Lambda::Function"
    }
    configs = {
        logical: lambda_client.get_function_configuration(FunctionName=name) for logical, name in functions.items()
    }
    images = {logical: config for logical, config in configs.items() if config.get("PackageType") == "Image"}
    for kind in IMAGE_FUNCTIONS:
        assert any(kind in logical.lower() for logical in images), (kind, sorted(images))
    image_uris = {lambda_client.get_function(FunctionName=functions[logical])["Code"]["ImageUri"] for logical in images}
    assert len(image_uris) == 1, image_uris  # one image, a command per function
    webhooks = [config for logical, config in configs.items() if "webhook" in logical.lower()]
    assert all(config.get("PackageType", "Zip") == "Zip" for config in webhooks)


def test_predict_answers_with_the_ensemble_predictions(
    published: Deployed, sales_versions: list[SalesVersion], rows: Any
) -> None:
    first = sales_versions[0]
    body = wait_for(f"the image API to serve {SALES} version {first.version}", serving(published, first.version))
    assert body["model"]["name"] == SALES
    status, answer = http("POST", f"{published.api}/predict", json.dumps({"instances": instances(rows)}).encode())
    assert status == 200, answer
    assert answer["model"]["version"] == first.version
    assert answer["predictions"] == pytest.approx(list(first.model.predict(rows)), rel=1e-9)
    # Bad input still gets the 4xx error format, naming the field.
    bad = {**instances(rows.head(1))[0], "date": "not a date"}
    status, answer = http("POST", f"{published.api}/predict", json.dumps({"instances": [bad]}).encode())
    assert status == 422, answer
    assert "date" in json.dumps(answer["error"])


def test_batch_csv_is_scored_by_the_image_function(
    published: Deployed, sales_versions: list[SalesVersion], rows: Any
) -> None:
    import pandas as pd

    first = sales_versions[0]
    wait_for(f"the image API to serve version {first.version}", serving(published, first.version))
    s3 = published.client("s3")
    csv = rows.to_csv(index=False, date_format="%Y-%m-%d").encode()
    name = f"e2e-image-{uuid.uuid4().hex[:8]}.csv"
    s3.put_object(Bucket=published.batch_bucket, Key=f"incoming/{name}", Body=csv)
    report_key = f"results/{name}.report.json"

    def report() -> Any:
        try:
            return json.loads(s3.get_object(Bucket=published.batch_bucket, Key=report_key)["Body"].read())
        except s3.exceptions.NoSuchKey:
            return None

    found = wait_for(f"s3://{published.batch_bucket}/{report_key}", report, timeout=420)
    assert json.dumps(found)
    output = s3.get_object(Bucket=published.batch_bucket, Key=f"results/{name}.predictions.csv")["Body"].read()
    scored = pd.read_csv(io.BytesIO(output))
    assert len(scored) == len(rows)
    assert list(scored["prediction"]) == pytest.approx(list(first.model.predict(rows)), rel=1e-6)
    assert set(scored["model_version"].astype(str)) == {first.version}
    # The input object is never modified or deleted.
    assert s3.get_object(Bucket=published.batch_bucket, Key=f"incoming/{name}")["Body"].read() == csv


def test_promotion_is_answered_by_the_new_model(
    published: Deployed, sales_versions: list[SalesVersion], rows: Any
) -> None:
    first, second = sales_versions
    wait_for(f"the image API to serve version {first.version}", serving(published, first.version))
    s3 = published.client("s3")
    prefix = f"e2e-artifacts/{SALES}/{second.version}"
    for path in second.model_dir.rglob("*"):
        if path.is_file():
            relative = path.relative_to(second.model_dir).as_posix()
            s3.put_object(Bucket=published.model_bucket, Key=f"{prefix}/{relative}", Body=path.read_bytes())
    detail = {
        "model_name": SALES,
        "version": second.version,
        "source": "cli",
        "artifact_uri": f"s3://{published.model_bucket}/{prefix}",
        "run_id": second.run_id,
        "requested_by": "e2e-image",
    }
    result = published.client("events").put_events(
        Entries=[
            {
                "Source": "mlserve.registry",
                "DetailType": "ModelPromoted",
                "Detail": json.dumps(detail),
                "EventBusName": published.event_bus,
            }
        ]
    )
    assert result["FailedEntryCount"] == 0, result
    # The image redeploy function stages the version and writes live.json; the image API
    # re-checks the pointer at most every refresh_seconds.
    wait_for(f"the image API to answer with version {second.version}", serving(published, second.version), 420)
    status, answer = http("POST", f"{published.api}/predict", json.dumps({"instances": instances(rows)}).encode())
    assert status == 200, answer
    assert answer["model"]["version"] == second.version
    expected = list(second.model.predict(rows))
    assert answer["predictions"] == pytest.approx(expected, rel=1e-9)
    assert expected != pytest.approx(list(first.model.predict(rows)), rel=1e-6)  # a different model answered
