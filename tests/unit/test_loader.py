from __future__ import annotations

import operator
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlserve.checksums import compute_checksums, verify_checksums
from mlserve.errors import ChecksumMismatchError, ModelLoadError, PickleNotAllowedError
from mlserve.loader import load_estimator


def save_model(tmp_path: Path, estimator: Any, features: Any, fmt: str, name: str) -> Path:
    import mlflow.sklearn
    from mlflow.models import infer_signature

    path = tmp_path / name
    example = features.head(3)
    mlflow.sklearn.save_model(
        estimator,
        str(path),
        serialization_format=fmt,
        signature=infer_signature(example, estimator.predict(example)),
        input_example=example,
    )
    return path


@pytest.fixture(scope="module")
def fitted(breast_cancer: Any) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=2000).fit(breast_cancer, np.arange(len(breast_cancer)) % 2)


def test_skops_model_loads_after_checksums(demo_registry: Any) -> None:
    model_dir = demo_registry.classifier_dir
    estimator, spec = load_estimator(model_dir, compute_checksums(model_dir), allow_pickle=False)
    assert hasattr(estimator, "predict_proba") and spec.serialization_format == "skops"


def test_tree_models_load_with_the_repo_allow_list(demo_registry: Any) -> None:
    # The regressor is a random forest: its Tree objects need mlserve's allow-list.
    model_dir = demo_registry.regressor_dir
    estimator, _ = load_estimator(model_dir, compute_checksums(model_dir), allow_pickle=False)
    assert type(estimator).__name__ == "RandomForestRegressor"


def test_tampered_file_is_refused_before_deserializing(
    demo_registry: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_dir = tmp_path / "m"
    shutil.copytree(demo_registry.classifier_dir, model_dir)
    recorded = compute_checksums(model_dir)
    with (model_dir / "model.skops").open("ab") as handle:
        handle.write(b"tampered")
    import skops.io

    def must_not_load(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("deserialized an unverified file")

    monkeypatch.setattr(skops.io, "load", must_not_load)
    monkeypatch.setattr(skops.io, "get_untrusted_types", must_not_load)
    with pytest.raises(ChecksumMismatchError, match=r"model.skops: sha256"):
        load_estimator(model_dir, recorded, allow_pickle=False)


def test_added_and_missing_files_fail_verification(demo_registry: Any, tmp_path: Path) -> None:
    model_dir = tmp_path / "m"
    shutil.copytree(demo_registry.classifier_dir, model_dir)
    recorded = compute_checksums(model_dir)
    (model_dir / "extra.py").write_text("print('hi')")
    (model_dir / "conda.yaml").unlink()
    with pytest.raises(ChecksumMismatchError) as info:
        verify_checksums(model_dir, recorded)
    assert "conda.yaml: missing" in str(info.value) and "extra.py: not in the recorded checksums" in str(info.value)
    with pytest.raises(ChecksumMismatchError, match="no checksums recorded"):
        verify_checksums(model_dir, {})


@pytest.mark.parametrize("fmt", ["cloudpickle", "pickle"])
def test_pickle_formats_need_explicit_permission(tmp_path: Path, fitted: Any, breast_cancer: Any, fmt: str) -> None:
    model_dir = save_model(tmp_path, fitted, breast_cancer, fmt, fmt)
    checksums = compute_checksums(model_dir)
    with pytest.raises(PickleNotAllowedError, match="MLSERVE_ALLOW_PICKLE=true"):
        load_estimator(model_dir, checksums, allow_pickle=False)
    estimator, spec = load_estimator(model_dir, checksums, allow_pickle=True)
    assert spec.serialization_format == fmt
    np.testing.assert_array_equal(estimator.predict(breast_cancer.head(20)), fitted.predict(breast_cancer.head(20)))


def test_skops_types_outside_the_repo_allow_list_are_refused(tmp_path: Path, breast_cancer: Any) -> None:
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    pipeline = make_pipeline(FunctionTransformer(operator.neg), LogisticRegression(max_iter=2000))
    pipeline.fit(breast_cancer, np.arange(len(breast_cancer)) % 2)
    path = tmp_path / "fn"
    example = breast_cancer.head(2)
    # The artifact itself claims _operator.neg is trusted; mlserve ignores that claim.
    mlflow.sklearn.save_model(
        pipeline,
        str(path),
        serialization_format="skops",
        skops_trusted_types=["_operator.neg"],
        signature=infer_signature(example, pipeline.predict(example)),
        input_example=example,
    )
    with pytest.raises(ModelLoadError, match="outside mlserve's skops allow-list.*_operator.neg"):
        load_estimator(path, compute_checksums(path), allow_pickle=False)


def test_corrupt_skops_file_is_a_load_error(demo_registry: Any, tmp_path: Path) -> None:
    model_dir = tmp_path / "m"
    shutil.copytree(demo_registry.classifier_dir, model_dir)
    (model_dir / "model.skops").write_bytes(b"not a zip file")
    with pytest.raises(ModelLoadError, match="not a readable skops file"):
        load_estimator(model_dir, compute_checksums(model_dir), allow_pickle=False)
