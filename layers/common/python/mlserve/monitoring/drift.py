"""Per-feature drift verdicts and the dataset verdict, from raw reference data (``mlserve
drift --reference REF.csv``) or from a stored reference profile (the drift job).

The report's public shape (``mlserve drift --json``)::

    {"features": {col: {"test", "statistic", "p_value", "psi", "drifted"}},
     "drifted_features": [col, ...], "share_drifted": float, "dataset_drift": bool}
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlserve.errors import InputError
from mlserve.monitoring.profile import OTHER, Columns, bin_counts, present
from mlserve.monitoring.stats import (
    CATEGORICAL_TESTS,
    DEFAULT_THRESHOLDS,
    NUMERIC_TESTS,
    TestResult,
    chisquare_from_counts,
    compare_raw,
    is_drifted,
    jensenshannon_from_shares,
    ks_from_cdfs,
    psi_from_shares,
)

PUBLIC_FEATURE_KEYS = ("test", "statistic", "p_value", "psi", "drifted")


@dataclass(frozen=True)
class DriftPolicy:
    """Which test decides per column kind, the thresholds, and the share of drifted
    features that makes the dataset drifted (Evidently's ``drift_share``)."""

    numeric_test: str = "psi"
    categorical_test: str = "jensenshannon"
    thresholds: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    drift_share: float = 0.5
    per_column_test: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.numeric_test not in NUMERIC_TESTS:
            raise InputError(f"numeric test must be one of {list(NUMERIC_TESTS)}, got {self.numeric_test!r}")
        if self.categorical_test not in CATEGORICAL_TESTS:
            raise InputError(
                f"categorical test must be one of {list(CATEGORICAL_TESTS)}, got {self.categorical_test!r}"
            )
        unknown = sorted(set(self.thresholds) - set(DEFAULT_THRESHOLDS))
        if unknown:
            raise InputError(f"thresholds for unknown tests {unknown}; known: {sorted(DEFAULT_THRESHOLDS)}")
        if not 0 < self.drift_share <= 1:
            raise InputError(f"drift share must be in (0, 1], got {self.drift_share}")

    def test_for(self, column: str, kind: str) -> str:
        return self.per_column_test.get(column) or (self.numeric_test if kind == "numeric" else self.categorical_test)

    def threshold(self, test: str) -> float:
        return float({**DEFAULT_THRESHOLDS, **self.thresholds}[test])


@dataclass
class FeatureDrift:
    name: str
    kind: str
    result: TestResult | None
    reference_rows: int
    current_rows: int
    current_missing_rate: float
    reference_missing_rate: float
    # For the HTML report: bin labels and the two share vectors.
    labels: list[str] = field(default_factory=list)
    reference_shares: list[float] = field(default_factory=list)
    current_shares: list[float] = field(default_factory=list)
    note: str | None = None

    def public(self) -> dict[str, Any]:
        if self.result is None:
            return {"test": None, "statistic": None, "p_value": None, "psi": None, "drifted": False}
        return self.result.to_dict()

    def detail(self) -> dict[str, Any]:
        return {
            **self.public(),
            "kind": self.kind,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "reference_missing_rate": self.reference_missing_rate,
            "current_missing_rate": self.current_missing_rate,
            "histogram": {"labels": self.labels, "reference": self.reference_shares, "current": self.current_shares},
            "note": self.note,
        }


def summarize(features: list[FeatureDrift], policy: DriftPolicy) -> dict[str, Any]:
    tested = [f for f in features if f.result is not None]
    drifted = [f.name for f in tested if f.result is not None and f.result.drifted]
    share = len(drifted) / len(tested) if tested else 0.0
    return {
        "features": {f.name: f.public() for f in features},
        "drifted_features": drifted,
        "share_drifted": share,
        "dataset_drift": bool(tested) and share >= policy.drift_share,
    }


def _label(value: float) -> str:
    return f"{value:.4g}"


def _edge_labels(edges: list[float] | np.ndarray) -> list[str]:
    edges = list(edges)
    if not edges:
        return ["all"]
    return (
        [f"< {_label(edges[0])}"]
        + [f"{_label(a)}..{_label(b)}" for a, b in itertools.pairwise(edges)]
        + [f">= {_label(edges[-1])}"]
    )


# ---------------------------------------------------------------- raw vs raw (Evidently-exact)


def compare_columns(
    reference: Columns, current: Columns, kinds: Mapping[str, str], policy: DriftPolicy
) -> list[FeatureDrift]:
    features = []
    for name, kind in kinds.items():
        ref_all, cur_all = reference[name], current[name]
        ref, cur = present(ref_all, kind), present(cur_all, kind)
        feature = FeatureDrift(
            name=name,
            kind=kind,
            result=None,
            reference_rows=int(ref_all.size),
            current_rows=int(cur_all.size),
            reference_missing_rate=_missing_rate(ref_all.size, ref.size),
            current_missing_rate=_missing_rate(cur_all.size, cur.size),
        )
        features.append(feature)
        if ref.size == 0 or cur.size == 0:
            feature.note = "no values in the " + ("reference" if ref.size == 0 else "current data")
            continue
        test = policy.test_for(name, kind)
        _check_test(name, kind, test)
        feature.result = compare_raw(ref, cur, numeric=kind == "numeric", test=test, threshold=policy.threshold(test))
        _raw_histogram(feature, ref, cur)
    return features


def _check_test(name: str, kind: str, test: str) -> None:
    allowed = NUMERIC_TESTS if kind == "numeric" else CATEGORICAL_TESTS
    if test not in allowed:
        raise InputError(f"test {test!r} does not apply to the {kind} column {name!r}; use one of {list(allowed)}")


def _missing_rate(rows: int, kept: int) -> float:
    return (rows - kept) / rows if rows else 0.0


def _raw_histogram(feature: FeatureDrift, ref: np.ndarray, cur: np.ndarray) -> None:
    if feature.kind == "numeric":
        edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins=min(20, max(1, int(np.sqrt(ref.size)))))
        ref_counts, cur_counts = np.histogram(ref, edges)[0], np.histogram(cur, edges)[0]
        feature.labels = [f"{_label(a)}..{_label(b)}" for a, b in itertools.pairwise(edges)]
    else:
        keys, ref_counts, cur_counts = _category_union(ref, cur)
        feature.labels = keys
    feature.reference_shares = (np.asarray(ref_counts) / max(ref.size, 1)).tolist()
    feature.current_shares = (np.asarray(cur_counts) / max(cur.size, 1)).tolist()


def _category_union(ref: np.ndarray, cur: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
    from mlserve.monitoring.stats import category_shares

    keys, ref_counts, cur_counts = category_shares(ref, cur)
    return [str(k) for k in keys], ref_counts, cur_counts


# ---------------------------------------------------------------- profile vs raw (the drift job)


def compare_with_profile(
    profile: Mapping[str, Any], current: Columns, policy: DriftPolicy, *, include_prediction: bool = False
) -> list[FeatureDrift]:
    """Current raw columns against the stored reference profile. Columns of the profile
    with no current data at all (not captured) are reported as untested, not as drifted."""
    features = []
    specs = dict(profile.get("columns") or {})
    if include_prediction and profile.get("prediction"):
        from mlserve.monitoring.profile import PREDICTION_COLUMN

        specs[PREDICTION_COLUMN] = profile["prediction"]
    for name, spec in specs.items():
        kind = spec["kind"]
        values = current.get(name)
        feature = FeatureDrift(
            name=name,
            kind=kind,
            result=None,
            reference_rows=int(spec["rows"]),
            current_rows=0 if values is None else int(values.size),
            reference_missing_rate=float(spec["missing_rate"]),
            current_missing_rate=0.0,
        )
        features.append(feature)
        if values is None:
            feature.note = "not in the current data (not captured: see capture_columns)"
            continue
        kept = present(values, kind)
        feature.current_missing_rate = _missing_rate(values.size, kept.size)
        if kept.size == 0 or spec["count"] == 0:
            feature.note = "no values in the " + ("current data" if kept.size == 0 else "reference")
            continue
        test = policy.test_for(name, kind)
        _check_test(name, kind, test)
        threshold = policy.threshold(test)
        if kind == "numeric":
            feature.result = _numeric_vs_profile(feature, spec, kept, test, threshold)
        else:
            feature.result = _categorical_vs_profile(feature, spec, kept, test, threshold)
    return features


def _numeric_vs_profile(
    feature: FeatureDrift, spec: Mapping[str, Any], kept: np.ndarray, test: str, threshold: float
) -> TestResult:
    if "categories" in spec:  # few distinct values: exact category shares, as Evidently does
        ref_counts, cur_counts, labels = _shares_over_categories(spec["categories"], 0, kept.astype(str))
    else:
        ref_counts = np.asarray(spec["psi_counts"], dtype=np.float64)
        cur_counts = bin_counts(kept, spec["psi_edges"]).astype(np.float64)
        labels = _edge_labels(spec["psi_edges"])

    def ks() -> tuple[float, float]:
        ref_cdf = np.cumsum(np.asarray(spec["counts"], dtype=np.float64))[:-1] / spec["count"]
        cur_cdf = np.cumsum(bin_counts(kept, spec["edges"]))[:-1] / kept.size
        return ks_from_cdfs(ref_cdf, cur_cdf, int(spec["count"]), int(kept.size))

    return _test_on_counts(feature, labels, ref_counts, cur_counts, test, threshold, p_value_test=("ks", ks))


def _shares_over_categories(
    reference: Mapping[str, int], other: int, current: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Reference counts per known category (+ other), current counts on the same keys:
    a current category the reference did not list counts as "other"."""
    cur_keys, cur_counts = np.unique(current.astype(str), return_counts=True)
    cur_map = dict(zip(cur_keys.tolist(), cur_counts.tolist(), strict=True))
    keys = sorted(reference)
    ref = [float(reference[k]) for k in keys]
    cur = [float(cur_map.pop(k, 0)) for k in keys]
    unseen = float(sum(cur_map.values()))
    if other or unseen:
        keys.append(OTHER)
        ref.append(float(other))
        cur.append(unseen)
    return np.asarray(ref), np.asarray(cur), keys


def _categorical_vs_profile(
    feature: FeatureDrift, spec: Mapping[str, Any], kept: np.ndarray, test: str, threshold: float
) -> TestResult:
    ref_counts, cur_counts, labels = _shares_over_categories(spec["categories"], int(spec.get("other", 0)), kept)
    return _test_on_counts(
        feature,
        labels,
        ref_counts,
        cur_counts,
        test,
        threshold,
        p_value_test=("chisquare", lambda: chisquare_from_counts(ref_counts, cur_counts)),
    )


def _test_on_counts(
    feature: FeatureDrift,
    labels: list[str],
    ref_counts: np.ndarray,
    cur_counts: np.ndarray,
    test: str,
    threshold: float,
    *,
    p_value_test: tuple[str, Callable[[], tuple[float, float]]],
) -> TestResult:
    """Record the shares on `feature` and run `test`: psi, jensenshannon, or the kind's own
    p-value test (`p_value_test`: its name, and the (statistic, p-value) it computes)."""
    ref_shares, cur_shares = ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum()
    feature.labels, feature.reference_shares, feature.current_shares = labels, ref_shares.tolist(), cur_shares.tolist()
    psi = psi_from_shares(ref_shares, cur_shares)
    p_value: float | None = None
    p_test_name, p_test = p_value_test
    if test == p_test_name:
        statistic, p_value = p_test()
        decided_on = p_value
    elif test == "psi":
        statistic = decided_on = psi
    else:
        statistic = decided_on = jensenshannon_from_shares(ref_shares, cur_shares)
    return TestResult(test, statistic, p_value, psi, is_drifted(test, decided_on, threshold))
