"""Hypothesis properties of the signature -> request-schema mapping and the CSV cells.

- any signature of supported column types compiles; its JSON schema lists every column
  and requires exactly the required ones;
- rows generated from the signature validate (as parsed rows and as /predict JSON bytes),
  and become a frame of the signature's dtypes without error;
- a value of the wrong type, out of the column dtype's range, a missing required column
  or an unknown column is refused with an InputError whose loc names the column;
- csv_cell never raises, converts what the column type can hold, and leaves the rest as
  text for validation to report.

The batch CSV validator (lambda_batch / the batch scorer) lives on the ``batch`` branch;
once merged, add a property here: a CSV of generated rows plus injected bad cells scores
every good row and lists every bad row with its row number and column.
"""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mlserve.errors import InputError
from mlserve.mlmodel import ColumnSpec
from mlserve.protocol import csv_cell, rows_from_csv
from mlserve.schema import DATETIME_MAX, DATETIME_MIN, FLOAT32_MAX, NUMPY_DTYPES, compile_schema
from mlserve.scoring import rows_to_frame

TYPES = sorted(NUMPY_DTYPES)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

names = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=12)


@st.composite
def signatures(draw: Any) -> tuple[ColumnSpec, ...]:
    column_names = draw(st.lists(names, min_size=1, max_size=6, unique=True))
    return tuple(ColumnSpec(name, draw(st.sampled_from(TYPES)), draw(st.booleans())) for name in column_names)


def value_for(column_type: str) -> st.SearchStrategy[Any]:
    if column_type == "double":
        return st.floats(allow_nan=False, allow_infinity=False)
    if column_type == "float":
        return st.floats(min_value=-FLOAT32_MAX, max_value=FLOAT32_MAX, allow_nan=False, width=32)
    if column_type == "long":
        return st.integers(min_value=-(2**63), max_value=2**63 - 1)
    if column_type == "integer":
        return st.integers(min_value=-(2**31), max_value=2**31 - 1)
    if column_type == "boolean":
        return st.booleans()
    if column_type == "string":
        return st.text(max_size=20)
    if column_type == "datetime":
        return st.datetimes(min_value=DATETIME_MIN, max_value=DATETIME_MAX).map(lambda d: d.isoformat())
    raise AssertionError(column_type)


def invalid_for(column_type: str) -> st.SearchStrategy[Any]:
    """Values JSON can carry that this column type must refuse."""
    wrong_type: dict[str, st.SearchStrategy[Any]] = {
        "double": st.sampled_from(["1.5", "abc", None, [1.0], {"x": 1}]),
        "float": st.sampled_from(["1.5", None, [], 1e300, -1e39]),
        "long": st.sampled_from(["1", 1.5, None, 2**63, -(2**63) - 1, True]),
        "integer": st.sampled_from(["1", 1.5, None, 2**31, -(2**31) - 1, 2**40]),
        "boolean": st.sampled_from(["true", "maybe", 2, None, 1.5]),
        "string": st.sampled_from([1, 1.5, True, None, ["a"]]),
        "datetime": st.sampled_from(["not a date", "9999-01-01", "1000-01-01T00:00:00", None, [1]]),
    }
    return wrong_type[column_type]


@st.composite
def signature_and_rows(draw: Any) -> tuple[tuple[ColumnSpec, ...], list[dict[str, Any]]]:
    columns = draw(signatures())
    rows = []
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        row: dict[str, Any] = {}
        for column in columns:
            if not column.required and draw(st.integers(0, 3)) == 0:
                if draw(st.booleans()):
                    row[column.name] = None
                continue
            row[column.name] = draw(value_for(column.type))
        rows.append(row)
    return columns, rows


@SETTINGS
@given(columns=signatures())
def test_any_signature_compiles_to_a_schema_naming_every_column(columns: tuple[ColumnSpec, ...]) -> None:
    schema = compile_schema("fuzz model", columns)
    row_schema = schema.row_schema
    assert list(row_schema["properties"]) == [c.name for c in columns]
    assert sorted(row_schema.get("required", [])) == sorted(c.name for c in columns if c.required)
    assert row_schema.get("additionalProperties") is False
    assert schema.column_names == [c.name for c in columns]


@SETTINGS
@given(case=signature_and_rows())
def test_generated_valid_rows_validate_and_become_a_frame(case: Any) -> None:
    columns, rows = case
    schema = compile_schema("fuzz", columns)
    validated = schema.validate_rows(rows, forbid_extra=True)
    assert len(validated) == len(rows)
    body = json.dumps({"instances": rows}).encode()
    assert len(schema.validate_predict_body(body)["instances"]) == len(rows)
    frame = rows_to_frame(validated, columns)
    assert list(frame.columns) == [c.name for c in columns]
    assert len(frame) == len(rows)


@SETTINGS
@given(case=signature_and_rows(), data=st.data())
def test_invalid_value_is_refused_naming_the_column(case: Any, data: Any) -> None:
    columns, rows = case
    column = data.draw(st.sampled_from(columns))
    bad = data.draw(invalid_for(column.type))
    assume(not (bad is None and not column.required))  # None is a fine optional value
    index = data.draw(st.integers(0, len(rows) - 1))
    rows = [dict(row) for row in rows]
    rows[index][column.name] = bad
    schema = compile_schema("fuzz", columns)
    with pytest.raises(InputError) as raised:
        schema.validate_rows(rows, forbid_extra=True)
    error = raised.value
    assert error.status == 422
    assert any(detail.loc[:2] == [index, column.name] for detail in error.details), error.details
    with pytest.raises(InputError) as raised_json:
        schema.validate_predict_body(json.dumps({"instances": rows}).encode())
    assert any(detail.loc[:3] == ["instances", index, column.name] for detail in raised_json.value.details)


@SETTINGS
@given(case=signature_and_rows(), data=st.data())
def test_missing_required_or_unknown_column_is_refused(case: Any, data: Any) -> None:
    columns, rows = case
    schema = compile_schema("fuzz", columns)
    required = [c for c in columns if c.required]
    rows = [dict(row) for row in rows]
    if required and data.draw(st.booleans()):
        column = data.draw(st.sampled_from(required))
        rows[0].pop(column.name, None)
        expected = column.name
    else:
        expected = data.draw(names.filter(lambda n: n not in {c.name for c in columns}))
        rows[0][expected] = 1
    with pytest.raises(InputError) as raised:
        schema.validate_rows(rows, forbid_extra=True)
    assert any(detail.loc[:2] == [0, expected] for detail in raised.value.details), raised.value.details


@SETTINGS
@given(value=st.text(max_size=30), column_type=st.sampled_from([*TYPES, None]))
def test_csv_cell_never_raises(value: str, column_type: str | None) -> None:
    csv_cell(value, column_type)


@SETTINGS
@given(number=st.floats(allow_nan=False, allow_infinity=False))
def test_csv_cell_round_trips_doubles(number: float) -> None:
    assert csv_cell(repr(number), "double") == number


@SETTINGS
@given(number=st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_csv_cell_round_trips_integers(number: int) -> None:
    assert csv_cell(str(number), "long") == number
    assert csv_cell(str(number), "integer") == number


@SETTINGS
@given(flag=st.booleans(), spelling=st.sampled_from([str, lambda b: str(b).lower(), lambda b: str(int(b))]))
def test_csv_cell_booleans(flag: bool, spelling: Any) -> None:
    assert csv_cell(spelling(flag), "boolean") is flag


@SETTINGS
@given(value=st.text(max_size=20), column_type=st.sampled_from(TYPES))
def test_csv_cell_empty_is_missing_except_strings(value: str, column_type: str) -> None:
    assert csv_cell("", column_type) == ("" if column_type == "string" else None)
    if column_type == "string":
        assert csv_cell(value, column_type) == value


@SETTINGS
@given(case=signature_and_rows())
def test_csv_of_valid_rows_validates_to_the_same_values(case: Any) -> None:
    columns, rows = case
    # CSV has no null distinct from "": empty strings in string columns read back as "".
    assume(all(c.type != "string" or c.required for c in columns))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([c.name for c in columns])
    for row in rows:
        writer.writerow(["" if row.get(c.name) is None else row[c.name] for c in columns])
    types = {c.name: c.type for c in columns}
    assume(all(c.name.strip() and "\n" not in c.name and "\r" not in c.name for c in columns))
    assume(not any(c.name.startswith("\ufeff") for c in columns))
    parsed = rows_from_csv(buffer.getvalue().encode(), types)
    schema = compile_schema("fuzz", columns)
    validated = schema.validate_rows(parsed, forbid_extra=False)
    for original, got in zip(rows, validated, strict=True):
        for column in columns:
            want = original.get(column.name)
            have: Any = got.get(column.name)
            if want is None:
                assert have is None
            elif column.type == "double":
                assert math.isclose(have, want, rel_tol=0, abs_tol=0) or have == want
            elif column.type == "float":
                assert have == want
            elif column.type == "datetime":
                parsed_want = datetime.fromisoformat(want)
                if parsed_want.tzinfo is None:
                    assert have.replace(tzinfo=None) == parsed_want
                else:
                    assert have.astimezone(UTC) == parsed_want.astimezone(UTC) + timedelta(0)
            else:
                assert have == want, (column, want, have)
