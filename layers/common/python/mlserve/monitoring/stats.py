"""Drift statistics on two samples (raw data on both sides) or on a sample against a
reference profile (binned reference).

Raw-vs-raw statistics follow Evidently's definitions exactly (legacy
``evidently.legacy.calculations.stattests``), so its verdicts can be the tests' oracle:

- ``ks``: two-sided two-sample Kolmogorov-Smirnov (scipy ``ks_2samp``), drift when p <= threshold;
- ``psi``: population stability index over Sturges bins of reference+current for numbers
  with more than 20 distinct reference values, else over the categories; empty bins get a
  tiny share (Evidently's ``get_binned_data`` with ``feel_zeroes``); drift when psi >= threshold;
- ``chisquare``: Pearson chi-squared of current counts against reference shares scaled to
  the current size, drift when p < threshold;
- ``jensenshannon``: Jensen-Shannon distance (natural log) of the same binning without the
  zero fill, drift when distance >= threshold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats
from scipy.spatial import distance

NUMERIC_TESTS = ("ks", "psi", "jensenshannon")
CATEGORICAL_TESTS = ("chisquare", "jensenshannon", "psi")
# Evidently's defaults, so a threshold left unset means the same on both sides.
DEFAULT_THRESHOLDS = {"ks": 0.05, "psi": 0.1, "chisquare": 0.05, "jensenshannon": 0.1}
P_VALUE_TESTS = frozenset({"ks", "chisquare"})
# Evidently bins a numeric column by Sturges edges only above this many distinct values.
CATEGORY_LIKE_MAX_UNIQUE = 20


@dataclass(frozen=True)
class TestResult:
    test: str
    statistic: float
    p_value: float | None
    psi: float
    drifted: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "test": self.test,
            "statistic": _finite_or_none(self.statistic),
            "p_value": _finite_or_none(self.p_value),
            "psi": _finite_or_none(self.psi),
            "drifted": self.drifted,
        }


def _finite_or_none(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def is_drifted(test: str, value: float, threshold: float) -> bool:
    if test == "ks":
        return bool(value <= threshold)
    if test == "chisquare":
        return bool(value < threshold)
    return bool(value >= threshold)


def fill_zeroes(shares: np.ndarray) -> np.ndarray:
    """Evidently's zero fill: an empty bin gets min(nonzero)/1e6 (or 1e-4) so log() is finite."""
    shares = shares.astype(np.float64, copy=True)
    nonzero = shares[shares != 0]
    if nonzero.size == 0:
        return shares
    smallest = float(nonzero.min())
    np.place(shares, shares == 0, smallest / 10**6 if smallest <= 0.0001 else 0.0001)
    return shares


def psi_from_shares(reference: np.ndarray, current: np.ndarray) -> float:
    reference, current = fill_zeroes(reference), fill_zeroes(current)
    return float(np.sum((reference - current) * np.log(reference / current)))


def category_shares(
    reference: Sequence[Any] | np.ndarray, current: Sequence[Any] | np.ndarray
) -> tuple[list[Any], np.ndarray, np.ndarray]:
    """Shares per category over the union of both samples' categories (reference order first)."""
    ref_values, ref_counts = np.unique(np.asarray(reference, dtype=object).astype(str), return_counts=True)
    cur_values, cur_counts = np.unique(np.asarray(current, dtype=object).astype(str), return_counts=True)
    ref_map = dict(zip(ref_values.tolist(), ref_counts.tolist(), strict=True))
    cur_map = dict(zip(cur_values.tolist(), cur_counts.tolist(), strict=True))
    keys = sorted(set(ref_map) | set(cur_map))
    ref = np.array([ref_map.get(k, 0) for k in keys], dtype=np.float64)
    cur = np.array([cur_map.get(k, 0) for k in keys], dtype=np.float64)
    return keys, ref, cur


def binned_shares(reference: np.ndarray, current: np.ndarray, numeric: bool) -> tuple[np.ndarray, np.ndarray]:
    """Evidently's ``get_binned_data`` without the zero fill."""
    if numeric and np.unique(reference).size > CATEGORY_LIKE_MAX_UNIQUE:
        edges = np.histogram_bin_edges(np.concatenate([reference, current]), bins="sturges")
        ref = np.histogram(reference, edges)[0] / reference.size
        cur = np.histogram(current, edges)[0] / current.size
        return ref.astype(np.float64), cur.astype(np.float64)
    _, ref_counts, cur_counts = category_shares(reference, current)
    return ref_counts / reference.size, cur_counts / current.size


def psi_raw(reference: np.ndarray, current: np.ndarray, numeric: bool) -> float:
    ref, cur = binned_shares(reference, current, numeric)
    return psi_from_shares(ref, cur)


def chisquare_from_counts(reference_counts: np.ndarray, current_counts: np.ndarray) -> tuple[float, float]:
    """Current counts against reference counts scaled to the current total."""
    scale = current_counts.sum() / reference_counts.sum()
    expected = reference_counts * scale
    with np.errstate(divide="ignore", invalid="ignore"):
        result = stats.chisquare(current_counts, expected)
    return float(result.statistic), float(result.pvalue)


def jensenshannon_from_shares(reference: np.ndarray, current: np.ndarray) -> float:
    return float(distance.jensenshannon(reference, current))


def compare_raw(
    reference: np.ndarray, current: np.ndarray, *, numeric: bool, test: str, threshold: float
) -> TestResult:
    """One column, raw values on both sides, missing values already removed."""
    psi = psi_raw(reference, current, numeric)
    p_value: float | None = None
    if test == "ks":
        ks = stats.ks_2samp(reference, current)
        statistic, p_value = float(ks.statistic), float(ks.pvalue)
        decided_on = p_value
    elif test == "psi":
        statistic = decided_on = psi
    elif test == "chisquare":
        _, ref_counts, cur_counts = category_shares(reference, current)
        statistic, p_value = chisquare_from_counts(ref_counts, cur_counts)
        decided_on = p_value
    elif test == "jensenshannon":
        ref, cur = binned_shares(reference, current, numeric)
        statistic = decided_on = jensenshannon_from_shares(ref, cur)
    else:
        raise ValueError(f"unknown drift test {test!r}")
    return TestResult(test, statistic, p_value, psi, is_drifted(test, decided_on, threshold))


def ks_from_cdfs(
    reference_cdf: np.ndarray, current_cdf: np.ndarray, n_reference: int, n_current: int
) -> tuple[float, float]:
    """KS distance as the largest CDF gap over the reference profile's edges, and its
    asymptotic p-value (scipy's ``ks_2samp(method="asymp")``). A lower bound of the exact
    distance: the gap inside a quantile bin is not seen (docs/monitoring.md)."""
    statistic = float(np.max(np.abs(reference_cdf - current_cdf))) if reference_cdf.size else 0.0
    effective = round(n_reference * n_current / (n_reference + n_current))
    p_value = float(stats.kstwo.sf(statistic, max(effective, 1)))
    return statistic, min(max(p_value, 0.0), 1.0)
