"""Train the second demo model: daily store sales (a synthetic, Rossmann-like data set this
module generates) predicted by an ensemble of LightGBM + XGBoost + CatBoost, and register
it in the local MLflow registry as ``sales-forecast`` with the ``champion`` alias.

    python -m examples.train_sales

The model is one scikit-learn pipeline saved with skops: date parts from the ``date``
column, ordinal codes for the string columns, then a ``VotingRegressor`` averaging the
three boosted regressors. Every type in it is on mlserve's skops allow-list
(``mlserve/trusted_types.py``). Its dependencies (lightgbm, xgboost, catboost) exceed the
zip packaging: on Lambda it is served by the image packaging (docs/image.md).
"""

from __future__ import annotations

import argparse
from typing import Any

from examples.train import Registered, configure_mlflow

SALES = "sales-forecast"
STRING_COLUMNS = ["state_holiday", "store_type", "assortment"]
SKOPS_TRUSTED = [
    "catboost.core.CatBoostRegressor",
    "collections.OrderedDict",
    "lightgbm.basic.Booster",
    "lightgbm.sklearn.LGBMRegressor",
    "mlserve.features.DateParts",
    "sklearn.utils._bunch.Bunch",
    "xgboost.core.Booster",
    "xgboost.sklearn.XGBRegressor",
]


def sales_frame(stores: int = 40, days: int = 365, seed: int = 0) -> tuple[Any, Any]:
    """Daily sales of ``stores`` stores over ``days`` days: strings (state holiday, store
    type, assortment), integers (store, day of week, promo, school holiday), a float
    (competition distance) and a datetime (date); the target has a weekly cycle, a promo
    lift, a holiday dip, a store-type level and a small trend."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    dates = pd.date_range("2024-01-01", periods=days, freq="D")
    store_ids = np.arange(1, stores + 1)
    store_type = rng.choice(list("abcd"), size=stores)
    assortment = rng.choice(list("abc"), size=stores)
    distance = rng.gamma(2.0, 2500.0, size=stores).round(0)
    base = rng.normal(6000, 1200, size=stores).clip(2500)
    frame = pd.DataFrame(
        {
            "store": np.repeat(store_ids, days).astype("int64"),
            "date": np.tile(dates.values, stores),
        }
    )
    index = frame["store"].to_numpy() - 1
    frame["day_of_week"] = (frame["date"].dt.dayofweek + 1).astype("int64")
    frame["promo"] = (rng.random(len(frame)) < 0.4).astype("int64")
    holiday = rng.choice(["0", "a", "b", "c"], size=len(frame), p=[0.94, 0.03, 0.02, 0.01])
    frame["state_holiday"] = holiday
    frame["school_holiday"] = (rng.random(len(frame)) < 0.18).astype("int64")
    frame["store_type"] = store_type[index]
    frame["assortment"] = assortment[index]
    frame["competition_distance"] = distance[index].astype("float64")
    weekly = np.array([1.15, 1.0, 0.97, 0.98, 1.05, 1.1, 0.35])[frame["day_of_week"].to_numpy() - 1]
    type_level = pd.Series({"a": 1.0, "b": 1.6, "c": 0.95, "d": 0.9})[frame["store_type"]].to_numpy()
    trend = 1 + 0.0004 * (frame["date"] - dates[0]).dt.days.to_numpy()
    sales = (
        base[index]
        * weekly
        * type_level
        * trend
        * (1 + 0.25 * frame["promo"].to_numpy())
        * np.where(holiday == "0", 1.0, 0.2)
        * (1 + 0.05 * frame["school_holiday"].to_numpy())
        * (1 + 1500 / (frame["competition_distance"].to_numpy() + 3000) * -0.2)
    ) + rng.normal(0, 250, size=len(frame))
    columns = [
        "store",
        "day_of_week",
        "date",
        "promo",
        "state_holiday",
        "school_holiday",
        "store_type",
        "assortment",
        "competition_distance",
    ]
    return frame[columns], pd.Series(sales.clip(0).round(2), name="sales")


def sales_ensemble(n_estimators: int = 150, seed: int = 0) -> Any:
    from catboost import CatBoostRegressor
    from lightgbm import LGBMRegressor
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import VotingRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder
    from xgboost import XGBRegressor

    from mlserve.features import DateParts

    encode = ColumnTransformer(
        [("categories", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), STRING_COLUMNS)],
        remainder="passthrough",
        verbose_feature_names_out=False,
    )
    ensemble = VotingRegressor(
        [
            ("lightgbm", LGBMRegressor(n_estimators=n_estimators, learning_rate=0.08, random_state=seed, verbose=-1)),
            ("xgboost", XGBRegressor(n_estimators=n_estimators, learning_rate=0.08, max_depth=6, random_state=seed)),
            (
                "catboost",
                CatBoostRegressor(
                    iterations=n_estimators,
                    learning_rate=0.1,
                    depth=6,
                    random_seed=seed,
                    verbose=0,
                    allow_writing_files=False,
                    thread_count=2,
                ),
            ),
        ]
    )
    return Pipeline([("date_parts", DateParts(columns=("date",))), ("encode", encode), ("ensemble", ensemble)])


def train_sales(alias: str | None = "champion", n_estimators: int = 150) -> Registered:
    import mlflow
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    features, target = sales_frame()
    model = sales_ensemble(n_estimators=n_estimators)
    model.fit(features, target)
    example = features.head(5)
    with mlflow.start_run(run_name=SALES) as run:
        mlflow.log_params({"estimator": "VotingRegressor(LightGBM, XGBoost, CatBoost)", "n_estimators": n_estimators})
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(example, model.predict(example)),
            input_example=example,
            registered_model_name=SALES,
            serialization_format="skops",
            skops_trusted_types=SKOPS_TRUSTED,
        )
    version = str(info.registered_model_version)
    if alias:
        MlflowClient().set_registered_model_alias(SALES, alias, version)
    return Registered(SALES, version, run.info.run_id, f"models:/{SALES}/{version}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--alias", default="champion")
    parser.add_argument("--n-estimators", type=int, default=150)
    args = parser.parse_args()
    configure_mlflow()
    registered = train_sales(alias=args.alias, n_estimators=args.n_estimators)
    print(f"registered {registered.name} version {registered.version} (run {registered.run_id}) as @{args.alias}")


if __name__ == "__main__":
    main()
