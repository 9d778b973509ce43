"""Feature steps that scikit-learn lacks but tabular models need, kept in this package so
a skops-saved pipeline using them loads wherever mlserve runs (they are on the skops
allow-list in ``trusted_types.py``: this code is reviewed here, not shipped by the model)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

DATE_PARTS = ("year", "month", "day", "dayofyear", "weekofyear")


class DateParts(TransformerMixin, BaseEstimator):  # type: ignore[misc]  # sklearn ships no types
    """Datetime columns -> integer year, month, day, day of year and ISO week; other
    columns pass through. Boosted trees cannot split on a timestamp, but can on these."""

    def __init__(self, columns: tuple[str, ...] = ()) -> None:
        self.columns = columns

    def fit(self, frame: pd.DataFrame, y: Any = None) -> DateParts:
        missing = sorted(set(self.columns) - set(frame.columns))
        if missing:
            raise ValueError(f"DateParts: no column(s) {missing} to take date parts from")
        self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        self.n_features_in_ = len(frame.columns)
        return self

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        result = frame.drop(columns=list(self.columns))
        for column in self.columns:
            stamps = pd.to_datetime(frame[column])
            result[f"{column}_year"] = stamps.dt.year.astype("int64")
            result[f"{column}_month"] = stamps.dt.month.astype("int64")
            result[f"{column}_day"] = stamps.dt.day.astype("int64")
            result[f"{column}_dayofyear"] = stamps.dt.dayofyear.astype("int64")
            result[f"{column}_weekofyear"] = stamps.dt.isocalendar().week.astype("int64")
        return result

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        kept = [name for name in self.feature_names_in_ if name not in self.columns]
        parts = [f"{column}_{part}" for column in self.columns for part in DATE_PARTS]
        return np.asarray(kept + parts, dtype=object)
