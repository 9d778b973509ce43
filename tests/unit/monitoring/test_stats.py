"""Drift statistics on distributions whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from mlserve.monitoring.drift import DriftPolicy, compare_columns, compare_with_profile, summarize
from mlserve.monitoring.profile import as_categorical, build_profile
from mlserve.monitoring.stats import (
    chisquare_from_counts,
    compare_raw,
    fill_zeroes,
    jensenshannon_from_shares,
    psi_from_shares,
)

RNG_SEED = 20260601


def normals(shift: float, n: int = 20000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(RNG_SEED)
    return rng.normal(0, 1, n), rng.normal(shift, 1, n)


def test_ks_on_shifted_normals_matches_the_analytic_distance() -> None:
    # Two unit normals d apart: sup |F1 - F2| = 2 * Phi(d / 2) - 1.
    reference, current = normals(0.5)
    result = compare_raw(reference, current, numeric=True, test="ks", threshold=0.05)
    assert result.statistic == pytest.approx(2 * stats.norm.cdf(0.25) - 1, abs=0.015)
    assert result.drifted and result.p_value is not None and result.p_value < 1e-10


def test_same_distribution_is_not_drift_for_any_test() -> None:
    reference, current = normals(0.0)
    for test in ("ks", "psi", "jensenshannon"):
        result = compare_raw(reference, current, numeric=True, test=test, threshold={"ks": 0.05}.get(test, 0.1))
        assert not result.drifted, (test, result)
    assert compare_raw(reference, current, numeric=True, test="psi", threshold=0.1).psi < 0.01


def test_psi_of_shifted_normals_is_close_to_the_symmetric_kl() -> None:
    # For equal-variance normals PSI (symmetric KL) = d^2; binning loses a little.
    reference, current = normals(0.5, n=100000)
    psi = compare_raw(reference, current, numeric=True, test="psi", threshold=0.1).psi
    assert 0.2 < psi < 0.26


def test_jensen_shannon_of_known_shares() -> None:
    # P = (1/2, 1/2), Q = (1, 0), M = (3/4, 1/4); natural log.
    jsd = 0.5 * (0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)) + 0.5 * math.log(1 / 0.75)
    assert jensenshannon_from_shares(np.array([0.5, 0.5]), np.array([1.0, 0.0])) == pytest.approx(math.sqrt(jsd))


def test_chisquare_of_known_counts() -> None:
    statistic, p_value = chisquare_from_counts(np.array([50.0, 50.0]), np.array([60.0, 40.0]))
    assert statistic == pytest.approx(4.0)  # (60-50)^2/50 + (40-50)^2/50
    assert p_value == pytest.approx(stats.chi2.sf(4.0, 1))


def test_psi_empty_bins_get_evidentlys_small_share() -> None:
    assert fill_zeroes(np.array([0.5, 0.5, 0.0])).tolist() == [0.5, 0.5, 0.0001]
    assert fill_zeroes(np.array([0.99995, 0.00005, 0.0]))[2] == pytest.approx(0.00005 / 1e6)
    assert math.isfinite(psi_from_shares(np.array([1.0, 0.0]), np.array([0.0, 1.0])))


def test_categorical_shift_and_a_new_category() -> None:
    rng = np.random.default_rng(RNG_SEED)
    reference = as_categorical(rng.choice(["a", "b", "c"], 5000, p=[0.6, 0.3, 0.1]))
    same = as_categorical(rng.choice(["a", "b", "c"], 5000, p=[0.6, 0.3, 0.1]))
    shifted = as_categorical(rng.choice(["a", "b", "c", "new"], 5000, p=[0.3, 0.3, 0.1, 0.3]))
    for test, threshold in (("chisquare", 0.05), ("jensenshannon", 0.1), ("psi", 0.1)):
        assert not compare_raw(reference, same, numeric=False, test=test, threshold=threshold).drifted
        assert compare_raw(reference, shifted, numeric=False, test=test, threshold=threshold).drifted


def test_profile_ks_is_a_close_lower_bound_of_the_exact_distance() -> None:
    reference, current = normals(0.1, n=50000)
    profile = build_profile({"x": reference}, {"x": "double"})
    exact = stats.ks_2samp(reference, current).statistic
    policy = DriftPolicy(numeric_test="ks")
    binned = compare_with_profile(profile, {"x": current}, policy)[0].result
    assert binned is not None
    assert binned.statistic <= exact + 1e-12
    assert exact - binned.statistic < 0.01  # 100 quantile bins: at most ~1 % of mass unseen
    assert binned.drifted


def test_profile_psi_and_js_flag_a_shift_and_not_noise() -> None:
    reference, shifted = normals(0.5)
    _, same = normals(0.0)
    profile = build_profile({"x": reference}, {"x": "double"})
    for test in ("psi", "jensenshannon"):
        policy = DriftPolicy(numeric_test=test)
        assert compare_with_profile(profile, {"x": shifted}, policy)[0].result.drifted  # type: ignore[union-attr]
        assert not compare_with_profile(profile, {"x": same}, policy)[0].result.drifted  # type: ignore[union-attr]


def test_profile_chisquare_equals_the_raw_test_when_all_categories_fit() -> None:
    rng = np.random.default_rng(RNG_SEED)
    reference = as_categorical(rng.choice(["a", "b", "c"], 3000, p=[0.5, 0.3, 0.2]))
    current = as_categorical(rng.choice(["a", "b", "c"], 2000, p=[0.45, 0.3, 0.25]))
    profile = build_profile({"c": reference}, {"c": "string"})
    policy = DriftPolicy(categorical_test="chisquare")
    from_profile = compare_with_profile(profile, {"c": current}, policy)[0].result
    raw = compare_raw(reference, current, numeric=False, test="chisquare", threshold=0.05)
    assert from_profile is not None and from_profile.p_value == pytest.approx(raw.p_value, abs=1e-12)


def test_summary_shape_and_dataset_verdict() -> None:
    reference, shifted = normals(1.0, n=2000)
    _, same = normals(0.0, n=2000)
    kinds = {"a": "numeric", "b": "numeric", "c": "numeric"}
    policy = DriftPolicy(drift_share=0.5)
    report = summarize(
        compare_columns(
            {"a": reference, "b": reference, "c": reference}, {"a": shifted, "b": same, "c": shifted}, kinds, policy
        ),
        policy,
    )
    assert set(report) == {"features", "drifted_features", "share_drifted", "dataset_drift"}
    assert set(report["features"]["a"]) == {"test", "statistic", "p_value", "psi", "drifted"}
    assert report["drifted_features"] == ["a", "c"]
    assert report["share_drifted"] == pytest.approx(2 / 3) and report["dataset_drift"] is True


def test_a_test_that_does_not_fit_the_column_is_refused() -> None:
    from mlserve.errors import InputError

    with pytest.raises(InputError, match="numeric test"):
        DriftPolicy(numeric_test="chisquare")
    with pytest.raises(InputError, match="unknown tests"):
        DriftPolicy(thresholds={"wasserstein": 0.1})
