"""Boosted models (LightGBM, XGBoost, CatBoost) saved by real MLflow load through mlserve's
native, non-pickle paths after the sha256 check; pickle and unknown classes are refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from mlserve.checksums import compute_checksums
from mlserve.errors import ChecksumMismatchError, ModelLoadError, PickleNotAllowedError
from mlserve.loader import load_estimator

pytest.importorskip("lightgbm")
pytest.importorskip("xgboost")
pytest.importorskip("catboost")


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    features = pd.DataFrame(rng.random((300, 4)), columns=["a", "b", "c", "d"])
    return features, features["a"] * 3 + features["b"] ** 2 + rng.normal(0, 0.01, 300)


def saved(tmp_path: Path, save: Any, model: Any, features: pd.DataFrame, name: str = "model", **kwargs: Any) -> Path:
    from mlflow.models import infer_signature

    path = tmp_path / name
    save(model, str(path), signature=infer_signature(features.head(), model.predict(features.head())), **kwargs)
    return path


def test_lightgbm_booster_native(tmp_path: Path, data: Any) -> None:
    import lightgbm
    import mlflow.lightgbm

    features, target = data
    booster = lightgbm.train({"verbose": -1}, lightgbm.Dataset(features, target), num_boost_round=20)
    path = saved(tmp_path, mlflow.lightgbm.save_model, booster, features)
    estimator, spec = load_estimator(path, compute_checksums(path), allow_pickle=False)
    assert spec.serialization_format == "lightgbm" and spec.model_file == "model.lgb"
    np.testing.assert_array_equal(estimator.predict(features), booster.predict(features))


@pytest.mark.parametrize("kind", ["booster", "regressor"])
def test_xgboost_native(tmp_path: Path, data: Any, kind: str) -> None:
    import mlflow.xgboost
    import xgboost

    features, target = data
    if kind == "booster":
        model: Any = xgboost.train({}, xgboost.DMatrix(features, target), num_boost_round=20)
        expected = model.predict(xgboost.DMatrix(features))
        from mlflow.models import infer_signature

        path = tmp_path / "model"
        mlflow.xgboost.save_model(model, str(path), signature=infer_signature(features.head(), expected[:5]))
    else:
        model = xgboost.XGBRegressor(n_estimators=20).fit(features, target)
        expected = model.predict(features)
        path = saved(tmp_path, mlflow.xgboost.save_model, model, features)
    estimator, spec = load_estimator(path, compute_checksums(path), allow_pickle=False)
    assert spec.serialization_format == "xgboost"
    np.testing.assert_array_equal(estimator.predict(features), expected)


def test_catboost_native(tmp_path: Path, data: Any) -> None:
    import catboost
    import mlflow.catboost

    features, target = data
    model = catboost.CatBoostRegressor(iterations=20, verbose=0, allow_writing_files=False).fit(features, target)
    path = saved(tmp_path, mlflow.catboost.save_model, model, features)
    estimator, spec = load_estimator(path, compute_checksums(path), allow_pickle=False)
    assert spec.serialization_format == "catboost"
    np.testing.assert_array_equal(estimator.predict(features), model.predict(features))


def test_lightgbm_sklearn_pickle_refused_unless_allowed(tmp_path: Path, data: Any) -> None:
    """MLflow pickles an LGBMRegressor unless told skops: same rule as the sklearn flavor."""
    import lightgbm
    import mlflow.lightgbm

    features, target = data
    model = lightgbm.LGBMRegressor(n_estimators=10, verbose=-1).fit(features, target)
    path = saved(tmp_path, mlflow.lightgbm.save_model, model, features, serialization_format="cloudpickle")
    with pytest.raises(PickleNotAllowedError):
        load_estimator(path, compute_checksums(path), allow_pickle=False)


def test_tampered_native_file_refused_before_loading(tmp_path: Path, data: Any) -> None:
    import catboost
    import mlflow.catboost

    features, target = data
    model = catboost.CatBoostRegressor(iterations=5, verbose=0, allow_writing_files=False).fit(features, target)
    path = saved(tmp_path, mlflow.catboost.save_model, model, features)
    checksums = compute_checksums(path)
    with (path / "model.cb").open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ChecksumMismatchError):
        load_estimator(path, checksums, allow_pickle=False)


def test_artifact_cannot_choose_the_class(tmp_path: Path, data: Any) -> None:
    """model_class/model_type come from the artifact; only mlserve's own tables are used."""
    import mlflow.xgboost
    import xgboost

    features, target = data
    path = saved(
        tmp_path, mlflow.xgboost.save_model, xgboost.XGBRegressor(n_estimators=5).fit(features, target), features
    )
    mlmodel = yaml.safe_load((path / "MLmodel").read_text())
    mlmodel["flavors"]["xgboost"]["model_class"] = "subprocess.Popen"
    (path / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    with pytest.raises(ModelLoadError, match="not one mlserve loads"):
        load_estimator(path, compute_checksums(path), allow_pickle=False)


def test_skops_ensemble_of_boosted_regressors_and_untrusted_type_refused(tmp_path: Path, data: Any) -> None:
    """A VotingRegressor of LGBM + XGB + CatBoost loads via the allow-list; an extra type the
    artifact trusts but mlserve does not (here a CatBoost classifier) is refused."""
    import mlflow.sklearn
    from catboost import CatBoostClassifier, CatBoostRegressor
    from lightgbm import LGBMRegressor
    from sklearn.ensemble import VotingRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from xgboost import XGBRegressor

    features, target = data
    ensemble = VotingRegressor(
        [
            ("lgb", LGBMRegressor(n_estimators=10, verbose=-1)),
            ("xgb", XGBRegressor(n_estimators=10)),
            ("cb", CatBoostRegressor(iterations=10, verbose=0, allow_writing_files=False)),
        ]
    ).fit(features, target)
    from examples.train_sales import SKOPS_TRUSTED

    path = saved(
        tmp_path,
        mlflow.sklearn.save_model,
        ensemble,
        features,
        serialization_format="skops",
        skops_trusted_types=SKOPS_TRUSTED,
    )
    estimator, _ = load_estimator(path, compute_checksums(path), allow_pickle=False)
    np.testing.assert_allclose(estimator.predict(features), ensemble.predict(features), rtol=1e-12)

    # A type the artifact lists as trusted but mlserve's allow-list does not hold.
    unlisted = make_pipeline(StandardScaler(), CatBoostClassifier(iterations=5, verbose=0, allow_writing_files=False))
    unlisted.fit(features, target > 1)
    other = saved(
        tmp_path,
        mlflow.sklearn.save_model,
        unlisted,
        features,
        name="unlisted",
        serialization_format="skops",
        skops_trusted_types=["catboost.core.CatBoostClassifier"],
    )
    with pytest.raises(ModelLoadError, match="allow-list"):
        load_estimator(other, compute_checksums(other), allow_pickle=False)
