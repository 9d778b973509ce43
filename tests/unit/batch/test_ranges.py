"""Record-aligned byte ranges: quoted newlines, CRLF, BOM, gzip."""

from __future__ import annotations

import csv
import gzip
import io
import random

import pytest

from mlserve.batch.ranges import NotSplittable, RangePlan, plan_ranges


def quoted_csv(rows: int, *, line_end: str = "\n", bom: bool = False, seed: int = 7) -> bytes:
    """A CSV whose `note` column often holds quoted newlines, quotes and commas."""
    rng = random.Random(seed)
    notes = ['"a\nb"', '"say ""hi"", ok"', "plain", '"x\r\ny"', '""', '"\n"', '"line1\nline2\n"']
    out = io.StringIO()
    out.write(("\ufeff" if bom else "") + 'id,"multi\nline header",note' + line_end)
    for i in range(rows):
        out.write(f"{i},{rng.random():.6f},{rng.choice(notes)}{line_end}")
    return out.getvalue().encode()


def record_starts(data: bytes) -> set[int]:
    """Offsets where the csv module starts a record (the reference, slow and simple)."""
    text = data.decode("utf-8")
    starts = set()
    inside = False
    position = 0
    starts.add(0)
    for ch in text:
        position += len(ch.encode())
        if ch == '"':
            inside = not inside
        elif ch == "\n" and not inside:
            starts.add(position)
    return starts


def check_plan(data: bytes, plan: RangePlan, range_bytes: int) -> None:
    starts = record_starts(data)
    assert plan.size == len(data)
    assert plan.header_end in starts
    assert plan.ranges[0].start == plan.header_end
    for previous, current in zip(plan.ranges, plan.ranges[1:], strict=False):
        assert previous.end == current.start  # contiguous, nothing lost or repeated
        assert current.start in starts  # never inside a quoted field
        assert data[current.start - 1 : current.start] == b"\n"
        assert previous.end - previous.start >= range_bytes
    assert plan.ranges[-1].end == len(data)
    for item in plan.ranges:
        assert item.lines_before == data[: item.start].count(b"\n")
    assert plan.header_lines == data[: plan.header_end].count(b"\n")


@pytest.mark.parametrize("range_bytes", [1, 37, 500, 4096, 10**9])
@pytest.mark.parametrize("block_bytes", [7, 64, 1 << 20])
def test_cuts_land_on_record_boundaries_with_quoted_newlines(range_bytes: int, block_bytes: int) -> None:
    data = quoted_csv(400)
    plan = plan_ranges(io.BytesIO(data), range_bytes, block_bytes=block_bytes)
    check_plan(data, plan, range_bytes)
    # Every range parses to whole records: the csv module sees the same rows as in the file.
    header = data[: plan.header_end]
    rows = []
    for item in plan.ranges:
        rows.extend(list(csv.reader(io.StringIO((header + data[item.start : item.end]).decode(), newline="")))[1:])
    assert rows == list(csv.reader(io.StringIO(data.decode(), newline="")))[1:]


def test_crlf_and_bom() -> None:
    data = quoted_csv(300, line_end="\r\n", bom=True)
    plan = plan_ranges(io.BytesIO(data), 300, block_bytes=100)
    check_plan(data, plan, 300)
    assert len(plan.ranges) > 5
    assert data[: plan.header_end].startswith(b"\xef\xbb\xbf") and data[: plan.header_end].endswith(b"\r\n")


def test_a_quoted_newline_at_every_target_is_never_cut() -> None:
    # Each record is 20 bytes with a quoted newline in the middle: targets fall inside quotes.
    record = b'1,"aaaa\nbbbbbbb",cc\n'
    data = b"a,b,c\n" + record * 200
    for range_bytes in range(1, 45):
        plan = plan_ranges(io.BytesIO(data), range_bytes, block_bytes=13)
        for item in plan.ranges:
            assert (item.start - 6) % len(record) == 0


def test_no_trailing_newline_and_header_only() -> None:
    data = b"a,b\n1,2\n3,4"
    plan = plan_ranges(io.BytesIO(data), 1)
    assert [(r.start, r.end) for r in plan.ranges] == [(4, 8), (8, 11)]
    only = plan_ranges(io.BytesIO(b"a,b\n"), 1)
    assert [(r.start, r.end) for r in only.ranges] == [(4, 4)]
    never_ends = plan_ranges(io.BytesIO(b'a,"b\n1,2\n'), 1)
    assert len(never_ends.ranges) == 1


def test_gzip_is_not_splittable() -> None:
    with pytest.raises(NotSplittable):
        plan_ranges(io.BytesIO(gzip.compress(quoted_csv(10))), 10)
