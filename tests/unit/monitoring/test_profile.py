"""Reference profiles: what they hold, that they stay small, that they are never the data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mlserve.errors import InputError
from mlserve.monitoring.profile import (
    MAX_CATEGORIES,
    OTHER,
    as_categorical,
    as_numeric,
    build_profile,
    profile_bytes,
    read_csv_columns,
)


def wide_columns(rows: int, seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    rng = np.random.default_rng(seed)
    columns: dict[str, np.ndarray] = {f"num_{i}": rng.normal(i, 1 + i / 10, rows) for i in range(25)}
    columns |= {f"cat_{i}": as_categorical(rng.choice([f"v{j}" for j in range(200)], rows)) for i in range(5)}
    types = {name: "double" if name.startswith("num") else "string" for name in columns}
    return columns, types


def test_numbers_profile_has_quantile_bins_counts_and_missing_rate() -> None:
    values = np.array([1.0, 2.0, np.nan, 4.0, 5.0, np.inf, *list(np.linspace(0, 10, 94))])
    column = build_profile({"x": values}, {"x": "double"})["columns"]["x"]
    assert column["rows"] == 100 and column["missing"] == 2 and column["missing_rate"] == pytest.approx(0.02)
    assert column["count"] == 98 and sum(column["counts"]) == 98 and sum(column["psi_counts"]) == 98
    assert column["edges"] == sorted(column["edges"]) and len(column["psi_edges"]) <= 9
    assert column["min"] == 0.0 and column["max"] == 10.0


def test_strings_profile_keeps_top_k_and_other() -> None:
    values = as_categorical([f"c{i % 80}" for i in range(8000)] + [None] * 100)
    column = build_profile({"c": values}, {"c": "string"})["columns"]["c"]
    assert len(column["categories"]) == MAX_CATEGORIES and column["distinct"] == 80
    assert column["other"] == 8000 - sum(column["categories"].values())
    assert column["missing"] == 100 and OTHER not in column["categories"]


def test_booleans_and_datetimes() -> None:
    profile = build_profile(
        {
            "flag": as_categorical([True, False, True, None]),
            "at": as_numeric(["2026-01-01T00:00:00Z", "2026-01-02T00:00:00", None, "not a date"], "datetime"),
        },
        {"flag": "boolean", "at": "datetime"},
    )
    assert profile["columns"]["flag"]["categories"] == {"True": 2, "False": 1}
    at = profile["columns"]["at"]
    assert at["kind"] == "numeric" and at["count"] == 2 and at["missing"] == 2
    assert at["min"] == pytest.approx(1767225600.0)


def test_profile_is_kilobytes_whatever_the_row_count_and_holds_no_rows() -> None:
    small_columns, types = wide_columns(2_000)
    big_columns, _ = wide_columns(200_000)
    small = profile_bytes(build_profile(small_columns, types))
    big = profile_bytes(build_profile(big_columns, types))
    assert len(big) < 200 * 1024
    assert len(big) < 1.5 * len(small)  # size does not grow with the rows
    # No raw value survives: a sampled row's exact float is not in the profile.
    probe = repr(float(big_columns["num_3"][12345]))
    assert probe not in big.decode()
    json.loads(big)


def test_reference_csv_must_have_every_signature_column(tmp_path: Path) -> None:
    csv = tmp_path / "ref.csv"
    csv.write_text("a,b\n1,x\n2,y\n")
    with pytest.raises(InputError, match=r"lacks the signature column\(s\) \['c'\]"):
        read_csv_columns(csv, {"a": "double", "c": "string"})
    columns = read_csv_columns(csv, {"a": "double", "b": "string"})
    assert columns["a"].tolist() == [1.0, 2.0] and columns["b"].tolist() == ["x", "y"]
