"""Issue 11, Medium 7 (second half): /invocations counts rows before building them.

A 5 MB CSV of tiny rows is ~2.5 M records; they used to become 2.5 M dicts (and cells) before
the row limit said no. Now the count comes first, over the raw bytes, and the answer is a
413 `too_many_rows` with no per-row object built.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from mlserve import protocol


@pytest.fixture
def counted_cells(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = protocol.csv_cell

    def counting(value: str, column_type: str | None) -> Any:
        calls.append(1)
        return real(value, column_type)

    monkeypatch.setattr(protocol, "csv_cell", counting)
    return calls


def test_five_mb_of_tiny_rows_is_refused_before_any_row_is_built(counted_cells: list[int]) -> None:
    body = b"a\n" + b"1\n" * (5 * 1024 * 1024 // 2)
    with pytest.raises(protocol.InputError) as caught:
        protocol.rows_from_csv(body, {"a": "double"}, max_rows=10_000)
    assert caught.value.code == "too_many_rows" and caught.value.status == 413
    assert f"{5 * 1024 * 1024 // 2} > MLSERVE_MAX_ROWS=10000" in caught.value.message
    assert counted_cells == []


def test_row_count_is_quote_aware_and_skips_blank_lines() -> None:
    body = b'a,b\n1,"two\nlines"\n\n3,4\n'
    assert protocol.count_csv_records(body) == 2
    assert len(protocol.rows_from_csv(body, {}, max_rows=2)) == 2
    with pytest.raises(protocol.InputError):
        protocol.rows_from_csv(body, {}, max_rows=1)


@pytest.mark.parametrize(
    "payload",
    [
        {"dataframe_split": {"columns": ["a"], "data": [[1]] * 20}},
        {"instances": [[1]] * 20},
        {"inputs": {"a": [1] * 20}},
        {"dataframe_records": [{"a": 1}] * 20},
    ],
)
def test_json_formats_check_the_count_before_building_rows(payload: dict[str, Any]) -> None:
    with pytest.raises(protocol.InputError) as caught:
        protocol.rows_from_payload(orjson.loads(orjson.dumps(payload)), ["a"], max_rows=10)
    assert caught.value.code == "too_many_rows"
