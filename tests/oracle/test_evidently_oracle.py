"""Evidently is the oracle: on the same reference/current data, with the same test and
threshold per column, our per-feature verdicts equal those of Evidently's data drift
preset, and the statistics agree within 1e-6 (KS, chi-squared p-values, Jensen-Shannon)
and 1e-3 (PSI). Evidently runs in its own venv (``make oracle-venv``) in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlserve.monitoring.drift import DriftPolicy, compare_columns, summarize
from mlserve.monitoring.profile import as_categorical, as_numeric

REPO = Path(__file__).resolve().parents[2]
ORACLE_SCRIPT = Path(__file__).with_name("evidently_oracle.py")
TOLERANCE = {"ks": 1e-6, "chisquare": 1e-6, "jensenshannon": 1e-6, "psi": 1e-3}


def oracle_python() -> Path:
    configured = os.environ.get("MLSERVE_ORACLE_PYTHON")
    python = Path(configured) if configured else REPO / ".venv-oracle" / "bin" / "python"
    if not python.exists():
        pytest.fail(f"the Evidently oracle venv is missing ({python}): run `make oracle-venv` (make test does)")
    return python


def datasets(seed: int, n_ref: int, n_cur: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Numbers (continuous, shifted, scaled, few distinct values, with gaps) and categories
    (stable, shifted, a new category, booleans)."""
    rng = np.random.default_rng(seed)

    def frame(n: int, current: bool) -> pd.DataFrame:
        shift = 1.0 if current else 0.0
        numbers = rng.normal(10, 2, n)
        numbers[rng.random(n) < 0.05] = np.nan
        return pd.DataFrame(
            {
                "stable_num": rng.normal(0, 1, n),
                "shifted_num": rng.normal(0.4 * shift, 1, n),
                "scaled_num": rng.normal(0, 1 + 0.5 * shift, n),
                "small_ints": rng.integers(0, 6 + int(shift), n),
                "with_gaps": numbers,
                "stable_cat": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
                "shifted_cat": rng.choice(["x", "y", "z"], n, p=[0.2, 0.3, 0.5] if current else [0.5, 0.3, 0.2]),
                "new_cat": rng.choice(["p", "q", "r"] if current else ["p", "q"], n),
                "flag": rng.random(n) < (0.5 if current else 0.3),
            }
        )

    return frame(n_ref, False), frame(n_cur, True)


NUMERIC = ["stable_num", "shifted_num", "scaled_num", "small_ints", "with_gaps"]
CATEGORICAL = ["stable_cat", "shifted_cat", "new_cat", "flag"]
CASES = {
    "ks+chisquare": ({c: "ks" for c in NUMERIC}, {c: "chisquare" for c in CATEGORICAL}),
    "psi+psi": ({c: "psi" for c in NUMERIC}, {c: "psi" for c in CATEGORICAL}),
    "jensenshannon": ({c: "jensenshannon" for c in NUMERIC}, {c: "jensenshannon" for c in CATEGORICAL}),
}
THRESHOLDS = {"ks": 0.05, "psi": 0.1, "chisquare": 0.05, "jensenshannon": 0.1}


def ours(reference: pd.DataFrame, current: pd.DataFrame, methods: dict[str, str]) -> dict[str, Any]:
    kinds = {c: "numeric" for c in NUMERIC} | {c: "categorical" for c in CATEGORICAL}

    def convert(frame: pd.DataFrame) -> dict[str, np.ndarray]:
        return {
            c: as_numeric(frame[c].to_numpy())
            if kinds[c] == "numeric"
            else as_categorical(frame[c].astype(str).to_numpy())
            for c in kinds
        }

    policy = DriftPolicy(per_column_test=methods, thresholds=THRESHOLDS)
    return summarize(compare_columns(convert(reference), convert(current), kinds, policy), policy)


def evidently(tmp_path: Path, reference: pd.DataFrame, current: pd.DataFrame, methods: dict[str, str]) -> Any:
    reference.to_csv(tmp_path / "ref.csv", index=False)
    current.to_csv(tmp_path / "cur.csv", index=False)
    spec = {
        "numerical": NUMERIC,
        "categorical": CATEGORICAL,
        "methods": methods,
        "thresholds": {c: THRESHOLDS[t] for c, t in methods.items()},
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    done = subprocess.run(
        [
            str(oracle_python()),
            str(ORACLE_SCRIPT),
            str(tmp_path / "ref.csv"),
            str(tmp_path / "cur.csv"),
            str(tmp_path / "spec.json"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": "", "DO_NOT_TRACK": "1", "EVIDENTLY_DISABLE_TELEMETRY": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("seed,n_ref,n_cur", [(1, 3000, 2000), (2, 800, 1200)])
@pytest.mark.parametrize("case", sorted(CASES))
def test_verdicts_and_statistics_match_evidently(tmp_path: Path, case: str, seed: int, n_ref: int, n_cur: int) -> None:
    reference, current = datasets(seed, n_ref, n_cur)
    numeric_methods, categorical_methods = CASES[case]
    methods = numeric_methods | categorical_methods
    mine = ours(reference, current, methods)
    oracle = evidently(tmp_path, reference, current, methods)

    assert set(oracle["features"]) == set(mine["features"])
    for column, expected in oracle["features"].items():
        got = mine["features"][column]
        test = methods[column]
        ours_score = got["p_value"] if test in ("ks", "chisquare") else got["statistic"]
        assert got["drifted"] == expected["drifted"], (column, test, got, expected)
        assert ours_score == pytest.approx(expected["score"], abs=TOLERANCE[test]), (column, test, got, expected)
    assert mine["share_drifted"] == pytest.approx(oracle["share_drifted"])
    assert mine["dataset_drift"] == oracle["dataset_drift"]
    # The data was built to drift on some columns and not on others: both verdicts occur.
    verdicts = {f["drifted"] for f in mine["features"].values()}
    assert verdicts == {True, False}
