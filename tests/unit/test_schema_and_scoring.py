from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import numpy as np
import pytest

from mlserve.errors import InputError
from mlserve.mlmodel import ColumnSpec
from mlserve.schema import compile_schema
from mlserve.scoring import rows_to_frame

ALL_TYPES = (
    ColumnSpec("d", "double"),
    ColumnSpec("f", "float"),
    ColumnSpec("l", "long"),
    ColumnSpec("i", "integer"),
    ColumnSpec("b", "boolean"),
    ColumnSpec("s", "string"),
    ColumnSpec("t", "datetime"),
    ColumnSpec("opt", "double", required=False),
)
GOOD_ROW = {"d": 1.5, "f": 2, "l": 3, "i": 4, "b": True, "s": "x", "t": "2024-01-02T03:04:05"}


def body(rows: Any, **extra: Any) -> bytes:
    return json.dumps({"instances": rows, **extra}).encode()


def errors_of(schema: Any, payload: bytes) -> InputError:
    with pytest.raises(InputError) as info:
        schema.validate_predict_body(payload)
    return info.value


def test_valid_rows_and_optional_columns() -> None:
    schema = compile_schema("my model", ALL_TYPES)
    request = schema.validate_predict_body(
        body([GOOD_ROW, {**GOOD_ROW, "opt": None}, {**GOOD_ROW, "opt": 7}], probabilities=True)
    )
    assert request["probabilities"] is True
    assert request["instances"][0]["t"] == datetime(2024, 1, 2, 3, 4, 5)
    assert "opt" not in request["instances"][0] and request["instances"][2]["opt"] == 7.0


@pytest.mark.parametrize(
    "date", ["2024-01-02", "2024-01-02T03:04:05Z", "2024-01-02 03:04:05", "2024-01-02T03:04:05.123+02:00"]
)
def test_datetime_accepts_common_iso_shapes(date: str) -> None:
    schema = compile_schema("m", ALL_TYPES)
    assert schema.validate_predict_body(body([{**GOOD_ROW, "t": date}]))["instances"][0]["t"].year == 2024


@pytest.mark.parametrize(
    ("row", "loc", "msg"),
    [
        ({**GOOD_ROW, "d": "1.5"}, ["instances", 0, "d"], "valid number"),
        ({**GOOD_ROW, "l": 1.5}, ["instances", 0, "l"], "valid integer"),
        ({**GOOD_ROW, "b": "yes"}, ["instances", 0, "b"], "valid boolean"),
        ({**GOOD_ROW, "s": 5}, ["instances", 0, "s"], "valid string"),
        ({**GOOD_ROW, "t": "yesterday"}, ["instances", 0, "t"], "datetime"),
        ({k: v for k, v in GOOD_ROW.items() if k != "d"}, ["instances", 0, "d"], "Field required"),
        ({**GOOD_ROW, "extra": 1}, ["instances", 0, "extra"], "Extra inputs"),
        ({**GOOD_ROW, "d": None}, ["instances", 0, "d"], "valid number"),
    ],
)
def test_wrong_values_name_the_field(row: dict[str, Any], loc: list[Any], msg: str) -> None:
    error = errors_of(compile_schema("m", ALL_TYPES), body([row]))
    assert error.status == 422 and error.code == "validation_error"
    assert error.details[0].loc == loc and msg in error.details[0].msg
    assert ".".join(map(str, loc)) in error.message


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_rejected(token: str) -> None:
    payload = json.dumps({"instances": [GOOD_ROW]}).replace('"d": 1.5', f'"d": {token}').encode()
    error = errors_of(compile_schema("m", ALL_TYPES), payload)
    assert error.details[0].loc == ["instances", 0, "d"] and "finite" in error.details[0].msg


def test_malformed_json_empty_list_and_unknown_keys() -> None:
    schema = compile_schema("m", ALL_TYPES)
    malformed = errors_of(schema, b'{"instances": [')
    assert malformed.status == 400 and malformed.code == "malformed_json"
    empty = errors_of(schema, body([]))
    assert empty.details[0].loc == ["instances"] and "at least 1" in empty.details[0].msg
    unknown = errors_of(schema, json.dumps({"rows": [GOOD_ROW]}).encode())
    assert {tuple(d.loc) for d in unknown.details} == {("instances",), ("rows",)}
    not_object = errors_of(schema, b"[1, 2]")
    assert not_object.status == 422


def test_row_limit() -> None:
    schema = compile_schema("m", ALL_TYPES, max_rows=3)
    schema.validate_predict_body(body([GOOD_ROW] * 3))
    error = errors_of(schema, body([GOOD_ROW] * 4))
    assert error.status == 413 and error.code == "too_many_rows" and "MLSERVE_MAX_ROWS=3" in error.message


def test_openapi_schema_shows_the_real_fields() -> None:
    schema = compile_schema("demo-classifier", ALL_TYPES)
    row = schema.row_schema
    assert row["title"] == "DemoClassifierRow"
    assert set(row["properties"]) == {c.name for c in ALL_TYPES}
    assert set(row["required"]) == {c.name for c in ALL_TYPES if c.required}
    assert row["properties"]["t"]["format"] == "date-time" and row["additionalProperties"] is False


def test_rows_to_frame_uses_signature_order_and_dtypes() -> None:
    schema = compile_schema("m", ALL_TYPES)
    rows = schema.validate_predict_body(body([{**GOOD_ROW, "opt": 1}, dict(reversed(list(GOOD_ROW.items())))]))[
        "instances"
    ]
    frame = rows_to_frame(rows, ALL_TYPES)
    assert list(frame.columns) == [c.name for c in ALL_TYPES]
    dtypes = [str(t) for t in frame.dtypes]
    # pandas 3 infers its string dtype ("str") for text columns.
    assert dtypes[:5] + dtypes[6:] == ["float64", "float32", "int64", "int32", "bool", "datetime64[ns]", "float64"]
    assert dtypes[5] in ("str", "object")
    assert np.isnan(frame["opt"].iloc[1])


def test_predictions_equal_model_predict(demo_registry: Any, breast_cancer: Any) -> None:
    from mlserve.checksums import compute_checksums
    from mlserve.scoring import ModelIdentity, load_model_dir, predict_rows

    model = load_model_dir(
        demo_registry.classifier_dir,
        ModelIdentity("demo-classifier", "1", None),
        compute_checksums(demo_registry.classifier_dir),
        allow_pickle=False,
    )
    rows = breast_cancer.head(50).to_dict(orient="records")
    result = predict_rows(model, model.schema.validate_rows(rows, forbid_extra=True), probabilities=True)
    assert result.predictions == model.estimator.predict(breast_cancer.head(50)).tolist()
    expected = model.estimator.predict_proba(breast_cancer.head(50))
    assert result.probabilities is not None
    np.testing.assert_allclose([[p["0"], p["1"]] for p in result.probabilities], expected)


def test_aware_datetimes_become_utc_not_wall_clock() -> None:
    schema = compile_schema("m", ALL_TYPES)
    rows = schema.validate_predict_body(body([{**GOOD_ROW, "t": "2024-01-02T03:04:05+02:00"}]))["instances"]
    frame = rows_to_frame(rows, ALL_TYPES)
    assert str(frame["t"].iloc[0]) == "2024-01-02 01:04:05"
