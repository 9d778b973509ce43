"""Shared benchmark plumbing: a published demo model, stats, and result files."""

from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "min": min(samples),
        "p50": percentile(samples, 50),
        "p99": percentile(samples, 99),
        "max": max(samples),
        "mean": statistics.fmean(samples),
        "n": len(samples),
    }


def machine() -> dict[str, Any]:
    import numpy
    import pandas
    import sklearn

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        "scikit-learn": sklearn.__version__,
    }


def demo_store(workdir: Path | None = None) -> tuple[str, Path, Any]:
    """Train + register the demo classifier in a throwaway MLflow registry and publish it
    to a local store. Returns (store URI, MLflow model dir, features)."""
    import mlflow

    from examples.train import breast_cancer_frame, configure_mlflow, train_classifier
    from mlserve.publish import StageRequest, stage_and_activate
    from mlserve.store import open_store

    workdir = workdir or Path(tempfile.mkdtemp(prefix="mlserve-bench-"))
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{workdir / 'mlflow.db'}"
    configure_mlflow(workdir)
    registered = train_classifier(alias="champion")
    model_dir = Path(mlflow.artifacts.download_artifacts(registered.model_uri, dst_path=str(workdir / "model")))
    store_uri = (workdir / "store").as_uri()
    stage_and_activate(
        open_store(store_uri),
        StageRequest(
            name="demo-classifier", version=registered.version, model_dir=model_dir, source=registered.model_uri
        ),
    )
    features, _ = breast_cancer_frame()
    return store_uri, model_dir, features


def write_results(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    path = RESULTS / f"{name}-{stamp}.json"
    path.write_text(json.dumps({"machine": machine(), "at": datetime.now(UTC).isoformat(), **payload}, indent=2))
    return path
