from __future__ import annotations

import json

import pytest

from mlserve.errors import InputError
from mlserve.protocol import parse_json, rows_from_csv, rows_from_payload

COLUMNS = ["a", "b"]
EXPECTED = [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]


@pytest.mark.parametrize(
    "payload",
    [
        {"dataframe_split": {"columns": ["a", "b"], "data": [[1, "x"], [2, "y"]]}},
        {"dataframe_split": {"data": [[1, "x"], [2, "y"]], "index": [0, 1]}},
        {"dataframe_records": EXPECTED},
        {"instances": EXPECTED},
        {"instances": [[1, "x"], [2, "y"]]},
        {"inputs": EXPECTED},
        {"inputs": {"a": [1, 2], "b": ["x", "y"]}},
    ],
)
def test_every_mlflow_format_gives_the_same_rows(payload: dict[str, object]) -> None:
    assert rows_from_payload(parse_json(json.dumps(payload).encode()), COLUMNS) == EXPECTED


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([1, 2], "JSON object"),
        ({}, "exactly one of"),
        ({"instances": [], "inputs": []}, "exactly one of"),
        ({"dataframe_split": [1]}, "'columns' and 'data'"),
        ({"dataframe_split": {"columns": "a", "data": []}}, "list of column names"),
        ({"dataframe_split": {"columns": ["a"], "data": [[1, 2]]}}, "row has 2 values"),
        ({"instances": "x"}, "must be a list"),
        ({"inputs": {"a": [1], "b": [1, 2]}}, "same length"),
        ({"dataframe_records": {"a": 1}}, "list of objects"),
    ],
)
def test_bad_payloads_are_explained(payload: object, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        rows_from_payload(payload, COLUMNS)
    assert info.value.status == 422


def test_empty_and_malformed_json() -> None:
    with pytest.raises(InputError, match="empty") as empty:
        parse_json(b"  ")
    with pytest.raises(InputError, match="malformed JSON") as bad:
        parse_json(b"{'a': 1}")
    assert empty.value.status == bad.value.status == 400


def test_csv_cells_follow_signature_types() -> None:
    types = {"a": "long", "b": "string", "c": "double", "d": "boolean"}
    body = '\ufeffa,b,c,d\r\n1,"x, y",2.5,true\r\n2,007,,0\r\n3,z,abc,false\r\n'.encode()
    assert rows_from_csv(body, types) == [
        {"a": 1, "b": "x, y", "c": 2.5, "d": True},
        {"a": 2, "b": "007", "c": None, "d": False},
        {"a": 3, "b": "z", "c": "abc", "d": False},
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [(b"", "empty"), (b"a,b\n1\n", "line 2 has 1 fields"), (b"a\n\xff\xfe\n", "not UTF-8")],
)
def test_bad_csv_bodies(body: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message):
        rows_from_csv(body, {"a": "long", "b": "long"})


def test_csv_numbers_with_underscores_stay_text_and_fail_validation() -> None:
    rows = rows_from_csv(b"a,c\n1_000,2_5.0\n", {"a": "long", "c": "double"})
    assert rows == [{"a": "1_000", "c": "2_5.0"}]
