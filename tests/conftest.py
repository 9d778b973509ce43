"""Shared fixtures: a real MLflow registry (sqlite) with real logged models, moto S3,
and stores with a published model."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Never reach real AWS, whatever the developer's environment holds.
for _var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
    os.environ.pop(_var, None)
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"

MODEL_BUCKET = "mlserve-models-test"


@dataclass
class DemoRegistry:
    tracking_uri: str
    data_dir: Path
    classifier_uri: str  # models:/demo-classifier/1
    regressor_uri: str
    classifier_dir: Path  # downloaded MLflow model directory
    regressor_dir: Path
    classifier_run_id: str


@pytest.fixture(scope="session")
def demo_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRegistry]:
    """Train and register the demo models once per session with real MLflow."""
    import mlflow

    from examples.train import configure_mlflow, train_classifier, train_regressor

    data_dir = tmp_path_factory.mktemp("mlflow")
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{data_dir / 'mlflow.db'}"
    configure_mlflow(data_dir)
    classifier = train_classifier(alias="champion")
    regressor = train_regressor(alias="champion")
    downloads = tmp_path_factory.mktemp("downloads")
    classifier_dir = Path(mlflow.artifacts.download_artifacts(classifier.model_uri, dst_path=str(downloads / "c")))
    regressor_dir = Path(mlflow.artifacts.download_artifacts(regressor.model_uri, dst_path=str(downloads / "r")))
    yield DemoRegistry(
        tracking_uri=os.environ["MLFLOW_TRACKING_URI"],
        data_dir=data_dir,
        classifier_uri=classifier.model_uri,
        regressor_uri=regressor.model_uri,
        classifier_dir=classifier_dir,
        regressor_dir=regressor_dir,
        classifier_run_id=classifier.run_id,
    )
    if previous is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = previous


@pytest.fixture(scope="session")
def breast_cancer() -> Any:
    from examples.train import breast_cancer_frame

    features, _ = breast_cancer_frame()
    return features


@pytest.fixture
def s3() -> Iterator[Any]:
    """A moto S3 client with the model bucket created."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=MODEL_BUCKET)
        yield client


@pytest.fixture
def s3_store(s3: Any) -> Any:
    from mlserve.store import open_store

    return open_store(f"s3://{MODEL_BUCKET}", s3_client=s3)


@pytest.fixture
def local_store(tmp_path: Path) -> Any:
    from mlserve.store import open_store

    return open_store((tmp_path / "store").as_uri())


def publish(store: Any, model_dir: Path, name: str = "demo-classifier", version: str = "1", **kwargs: Any) -> Any:
    from mlserve.publish import StageRequest, stage_and_activate

    return stage_and_activate(
        store,
        StageRequest(name=name, version=version, model_dir=model_dir, source=f"test:{model_dir}", **kwargs),
    )
