"""The fast rows -> model input paths build exactly what the per-column path builds."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlserve.mlmodel import ColumnSpec
from mlserve.scoring import (
    column_array,
    fitted_on_arrays,
    frame_plan,
    rows_to_frame,
    rows_to_matrix,
)


def slow_frame(rows: list[dict[str, Any]], columns: tuple[ColumnSpec, ...]) -> pd.DataFrame:
    data = {c.name: column_array([row.get(c.name) for row in rows], c) for c in columns}
    return pd.DataFrame(data, copy=False)


def columns_of(kind: str, count: int = 3, optional: bool = False) -> tuple[ColumnSpec, ...]:
    return tuple(ColumnSpec(f"col {i}", kind, required=not (optional and i == 1)) for i in range(count))


VALUES: dict[str, list[Any]] = {
    "double": [1.5, -2.0, 3, 1e300],
    "float": [1.5, -2.0, 3, 0.1],
    "long": [1, -2, 2**62, 0],
    "integer": [1, -2, 2**30, 0],
    "boolean": [True, False, True, False],
    "string": ["a", "b", "", "ü"],
}


@pytest.mark.parametrize("kind", sorted(VALUES))
@pytest.mark.parametrize("count", [1, 3])
@pytest.mark.parametrize("nrows", [1, 4])
def test_fast_frame_equals_slow_frame(kind: str, count: int, nrows: int) -> None:
    columns = columns_of(kind, count)
    rows = [{c.name: VALUES[kind][(r + i) % 4] for i, c in enumerate(columns)} for r in range(nrows)]
    pd.testing.assert_frame_equal(rows_to_frame(rows, columns), slow_frame(rows, columns))


@pytest.mark.parametrize("kind", sorted(VALUES))
def test_optional_column_with_none_matches(kind: str) -> None:
    columns = columns_of(kind, 3, optional=True)
    rows: list[dict[str, Any]] = [
        {"col 0": VALUES[kind][0], "col 1": None, "col 2": VALUES[kind][1]},
        {"col 0": VALUES[kind][2], "col 2": VALUES[kind][3]},  # optional key absent
        {"col 0": VALUES[kind][1], "col 1": VALUES[kind][0], "col 2": VALUES[kind][2]},
    ]
    fast = rows_to_frame(rows, columns)
    pd.testing.assert_frame_equal(fast, slow_frame(rows, columns))
    if kind in ("float", "long", "integer"):
        # A gap widens the column to float64 + NaN, exactly as before.
        assert str(fast["col 1"].dtype) == "float64" and fast["col 1"].isna().sum() == 2


def test_mixed_types_take_the_per_column_path() -> None:
    columns = (ColumnSpec("a", "double"), ColumnSpec("b", "long"), ColumnSpec("c", "string"))
    rows = [{"a": 1.0, "b": 2, "c": "x"}]
    assert rows_to_matrix(rows, frame_plan(columns)) is None
    pd.testing.assert_frame_equal(rows_to_frame(rows, columns), slow_frame(rows, columns))
    assert [str(t) for t in rows_to_frame(rows, columns).dtypes][:2] == ["float64", "int64"]


def test_matrix_is_signature_ordered_whatever_the_key_order() -> None:
    columns = columns_of("double", 3)
    rows = [{"col 2": 3.0, "col 0": 1.0, "col 1": 2.0}]
    matrix = rows_to_matrix(rows, frame_plan(columns))
    assert matrix is not None and matrix.dtype == np.float64
    assert matrix.tolist() == [[1.0, 2.0, 3.0]]


def test_out_of_range_integer_falls_back_to_the_same_error() -> None:
    columns = columns_of("long", 2)
    rows = [{"col 0": 2**70, "col 1": 1}]
    assert rows_to_matrix(rows, frame_plan(columns)) is None
    with pytest.raises(OverflowError):
        slow_frame(rows, columns)
    with pytest.raises(OverflowError):
        rows_to_frame(rows, columns)


def test_fitted_on_arrays() -> None:
    from sklearn.linear_model import LogisticRegression

    X = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.2], [0.9, 0.1]])
    y = [0, 1, 0, 1]
    assert fitted_on_arrays(LogisticRegression().fit(X, y))
    assert not fitted_on_arrays(LogisticRegression().fit(pd.DataFrame(X, columns=["a", "b"]), y))
    assert not fitted_on_arrays(LogisticRegression())  # unfitted: no n_features_in_
    assert not fitted_on_arrays(object())


def test_predict_rows_on_an_array_fitted_model_equals_frame_predict() -> None:
    import warnings
    from pathlib import Path

    from sklearn.linear_model import LogisticRegression

    from mlserve.schema import compile_schema
    from mlserve.scoring import LoadedModel, ModelIdentity, model_input, predict_rows

    columns = columns_of("double", 2)
    X = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.2], [0.9, 0.1]])
    estimator = LogisticRegression().fit(X, [0, 1, 0, 1])
    spec: Any = type("Spec", (), {"inputs": columns})()
    model = LoadedModel(
        identity=ModelIdentity("m", "1", None),
        estimator=estimator,
        spec=spec,
        schema=compile_schema("m", columns),
        pointer={},
        model_dir=Path("."),
    )
    rows = [{"col 0": a, "col 1": b} for a, b in X.tolist()]
    assert isinstance(model_input(model, rows), np.ndarray)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "X has feature names" warning any more
        result = predict_rows(model, rows, probabilities=True)
    assert result.predictions == estimator.predict(X).tolist()
    assert result.probabilities is not None
    np.testing.assert_allclose([[p["0"], p["1"]] for p in result.probabilities], estimator.predict_proba(X))


# ------------------------------------------------------------------ validation fast path
DOUBLES = tuple(ColumnSpec(name, "double") for name in ("mean radius", "b", "c"))


def outcome(call: Any) -> Any:
    from mlserve.errors import InputError

    try:
        return ("ok", call())
    except InputError as exc:
        return ("error", exc.status, exc.code, exc.message, [d.to_dict() for d in exc.details])


def schemas() -> tuple[Any, Any]:
    import dataclasses

    from mlserve.schema import compile_schema

    fast = compile_schema("m", DOUBLES, max_rows=3)
    assert fast.fast_rows is not None
    return fast, dataclasses.replace(fast, fast_rows=None)


GOOD = {"mean radius": 1.5, "b": -2.0, "c": 1e300}
BODIES = [
    {"instances": [GOOD]},
    {"instances": [GOOD, GOOD], "probabilities": True},
    {"instances": [{**GOOD, "b": 2}]},  # int: pydantic converts, fast path defers
    {"instances": [{**GOOD, "b": True}]},
    {"instances": [{**GOOD, "b": "1.0"}]},
    {"instances": [{**GOOD, "b": None}]},
    {"instances": [{"mean radius": 1.0, "b": 2.0}]},
    {"instances": [{**GOOD, "extra": 1.0}]},
    {"instances": [GOOD], "probabilities": 1},
    {"instances": [GOOD], "other": 1},
    {"instances": []},
    {"instances": [GOOD] * 4},
    {"instances": [[1.0, 2.0, 3.0]]},
    {"instances": GOOD},
    [GOOD],
]


@pytest.mark.parametrize("payload", BODIES)
def test_fast_predict_body_matches_pydantic(payload: Any) -> None:
    import json

    fast, slow = schemas()
    body = json.dumps(payload).encode()
    assert outcome(lambda: fast.validate_predict_body(body)) == outcome(lambda: slow.validate_predict_body(body))


@pytest.mark.parametrize("raw", [b'{"instances": [{"mean radius": 1e400, "b": 1.0, "c": 1.0}]}', b"{", b"", b"NaN"])
def test_fast_predict_body_defers_on_odd_json(raw: bytes) -> None:
    fast, slow = schemas()
    assert outcome(lambda: fast.validate_predict_body(raw)) == outcome(lambda: slow.validate_predict_body(raw))


@pytest.mark.parametrize("forbid_extra", [True, False])
@pytest.mark.parametrize("payload", BODIES)
def test_fast_validate_rows_matches_pydantic(payload: Any, forbid_extra: bool) -> None:
    fast, slow = schemas()
    rows = payload.get("instances") if isinstance(payload, dict) else payload
    assert outcome(lambda: fast.validate_rows(rows, forbid_extra=forbid_extra)) == outcome(
        lambda: slow.validate_rows(rows, forbid_extra=forbid_extra)
    )


def test_fast_rows_carry_the_same_matrix_the_frame_would_have() -> None:
    from mlserve.schema import ValidatedRows

    fast, slow = schemas()
    rows = [GOOD, {"c": 3.0, "b": 2.0, "mean radius": 1.0}]
    validated = fast.validate_rows(rows, forbid_extra=True)
    assert isinstance(validated, ValidatedRows)
    assert validated == slow.validate_rows(rows, forbid_extra=True)
    pd.testing.assert_frame_equal(rows_to_frame(validated, DOUBLES), slow_frame(list(rows), DOUBLES))
    assert rows_to_matrix(validated, frame_plan(DOUBLES)) is validated.matrix


def test_no_fast_path_for_other_signatures() -> None:
    from mlserve.schema import compile_schema

    assert compile_schema("m", columns_of("long", 3)).fast_rows is None
    assert compile_schema("m", columns_of("double", 3, optional=True)).fast_rows is None
    assert compile_schema("m", columns_of("double", 1)).fast_rows is None
