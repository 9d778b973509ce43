"""Train the demo models on data that ships with scikit-learn and register them in a
local MLflow registry (sqlite under .data/), with signature, input example and the
`champion` alias.

    python -m examples.train            # both models
    python -m examples.train --only classifier
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / ".data"
CLASSIFIER = "demo-classifier"
REGRESSOR = "demo-regressor"


def tracking_uri(data_dir: Path = DATA_DIR) -> str:
    return f"sqlite:///{data_dir / 'mlflow.db'}"


@dataclass
class Registered:
    name: str
    version: str
    run_id: str
    model_uri: str


def configure_mlflow(data_dir: Path = DATA_DIR) -> None:
    import mlflow

    data_dir.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(os.environ.get("MLFLOW_TRACKING_URI") or tracking_uri(data_dir))
    experiment = "mlserve-demo"
    if mlflow.get_experiment_by_name(experiment) is None:
        mlflow.create_experiment(experiment, artifact_location=(data_dir / "mlartifacts").as_uri())
    mlflow.set_experiment(experiment)


def breast_cancer_frame() -> tuple[Any, Any]:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    return data.data, data.target


def diabetes_frame() -> tuple[Any, Any]:
    from sklearn.datasets import load_diabetes

    data = load_diabetes(as_frame=True, scaled=False)
    return data.data, data.target


def breast_cancer_class_labels() -> dict[str, str]:
    """The classes' display names, {"0": "malignant", "1": "benign"}: logged with the model
    (MLmodel `metadata.class_labels`) so the page and `/predict`'s `labels` show them."""
    from sklearn.datasets import load_breast_cancer

    return {str(i): str(name) for i, name in enumerate(load_breast_cancer().target_names)}


def log_and_register(
    name: str,
    estimator: Any,
    features: Any,
    alias: str | None,
    params: dict[str, Any],
    metadata: dict[str, Any] | None = None,
) -> Registered:
    import mlflow
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    with mlflow.start_run(run_name=name) as run:
        mlflow.log_params(params)
        example = features.head(5)
        info = mlflow.sklearn.log_model(
            estimator,
            name="model",
            signature=infer_signature(example, estimator.predict(example)),
            input_example=example,
            registered_model_name=name,
            serialization_format="skops",
            skops_trusted_types=["sklearn.tree._tree.Tree"],
            metadata=metadata,
        )
    version = str(info.registered_model_version)
    if alias:
        MlflowClient().set_registered_model_alias(name, alias, version)
    return Registered(name, version, run.info.run_id, f"models:/{name}/{version}")


def train_classifier(alias: str | None = "champion", c: float = 1.0) -> Registered:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features, target = breast_cancer_frame()
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
    model.fit(features, target)
    return log_and_register(
        CLASSIFIER,
        model,
        features,
        alias,
        {"C": c, "estimator": "LogisticRegression"},
        metadata={"class_labels": breast_cancer_class_labels()},
    )


def train_regressor(alias: str | None = "champion") -> Registered:
    from sklearn.ensemble import RandomForestRegressor

    features, target = diabetes_frame()
    model = RandomForestRegressor(n_estimators=50, max_depth=6, random_state=0)
    model.fit(features, target)
    return log_and_register(
        REGRESSOR, model, features, alias, {"n_estimators": 50, "estimator": "RandomForestRegressor"}
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=["classifier", "regressor"])
    parser.add_argument("--alias", default="champion")
    args = parser.parse_args()
    configure_mlflow()
    for kind, train in (("classifier", train_classifier), ("regressor", train_regressor)):
        if args.only in (None, kind):
            registered = train(alias=args.alias)
            print(
                f"registered {registered.name} version {registered.version} (run {registered.run_id}) as @{args.alias}"
            )


if __name__ == "__main__":
    main()
