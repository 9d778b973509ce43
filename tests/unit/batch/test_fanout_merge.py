"""Assembling parts with multipart UploadPartCopy (moto enforces S3's 5 MiB part minimum),
and summing range reports."""

from __future__ import annotations

from typing import Any

import pytest

from mlserve.batch.fanout import assemble_parts, merge_reports

MIB = 1024 * 1024
BUCKET = "merge-test"


def pattern(size: int, seed: int) -> bytes:
    return bytes((seed + i) % 251 for i in range(min(size, 251))) * (size // 251 + 1)


@pytest.fixture
def bucket(s3: Any) -> Any:
    s3.create_bucket(Bucket=BUCKET)
    return s3


@pytest.mark.parametrize(
    "sizes",
    [
        [6 * MIB, 7 * MIB, 1],  # the usual case: every part copied, the last may be tiny
        [6 * MIB, 1 * MIB, 0, 2 * MIB, 7 * MIB, 3 * MIB, 1 * MIB],  # small parts combined
        [1 * MIB, 1 * MIB],  # everything small: one uploaded part
        [2 * MIB, 6 * MIB],  # a small part topped up from a part too small to split
        [2 * MIB, 12 * MIB],  # topped up from the head of the next part, its rest copied
    ],
)
def test_assembled_object_is_the_concatenation(bucket: Any, sizes: list[int]) -> None:
    parts = []
    expected = b""
    for index, size in enumerate(sizes):
        body = pattern(size, index)[:size]
        key = f"parts/{index:05d}.csv"
        bucket.put_object(Bucket=BUCKET, Key=key, Body=body)
        parts.append((key, size))
        expected += body
    copied: list[dict[str, Any]] = []
    original = bucket.upload_part_copy

    def spy(**kwargs: Any) -> Any:
        copied.append(kwargs)
        return original(**kwargs)

    bucket.upload_part_copy = spy
    count = assemble_parts(bucket, BUCKET, "results/out.csv", parts)
    got = bucket.get_object(Bucket=BUCKET, Key="results/out.csv")["Body"].read()
    assert got == expected
    assert count >= 1
    # Big parts are never downloaded: they (or their tail) are copied server-side.
    if sizes[0] >= 5 * MIB:
        assert copied[0]["CopySource"]["Key"] == "parts/00000.csv"
    if sizes == [2 * MIB, 12 * MIB]:
        assert copied[0]["CopySourceRange"] == f"bytes={3 * MIB}-{12 * MIB - 1}"


def test_a_failed_merge_leaves_no_object_and_no_upload(bucket: Any) -> None:
    bucket.put_object(Bucket=BUCKET, Key="parts/00000.csv", Body=pattern(6 * MIB, 0)[: 6 * MIB])

    def refuse() -> None:
        raise RuntimeError("superseded")

    from botocore.exceptions import ClientError

    with pytest.raises(ClientError):  # a part object is gone
        assemble_parts(bucket, BUCKET, "results/out.csv", [("parts/00000.csv", 6 * MIB), ("missing", 6 * MIB)])
    with pytest.raises(RuntimeError, match="superseded"):
        assemble_parts(bucket, BUCKET, "results/out.csv", [("parts/00000.csv", 6 * MIB)], before_commit=refuse)
    assert "Contents" not in bucket.list_objects_v2(Bucket=BUCKET, Prefix="results/")
    assert not bucket.list_multipart_uploads(Bucket=BUCKET).get("Uploads")


def test_merge_reports_sums_and_renumbers_records() -> None:
    first = {
        "rows_read": 10,
        "rows_scored": 9,
        "rows_rejected": 1,
        "rejected_by_reason": {"missing_value": 1},
        "rejected_rows": [{"line": 5, "record": 4, "errors": [], "raw": "x"}],
        "output_columns": ["a", "prediction"],
        "bytes_read": 100,
    }
    second = {
        "rows_read": 7,
        "rows_scored": 5,
        "rows_rejected": 2,
        "rejected_by_reason": {"missing_value": 1, "invalid_number": 2},
        "rejected_rows": [
            {"line": 20, "record": 1, "errors": [], "raw": "y"},
            {"line": 23, "record": 3, "errors": [], "raw": "z"},
        ],
        "output_columns": ["a", "prediction"],
        "bytes_read": 50,
    }
    total, columns = merge_reports([first, second], max_listed=2)
    assert (total.rows_read, total.rows_scored, total.rows_rejected) == (17, 14, 3)
    assert dict(total.rejected_by_reason) == {"missing_value": 2, "invalid_number": 2}
    # Records count from the start of the file; lines were already the file's; listing capped.
    assert [(r["line"], r["record"]) for r in total.rejected_rows] == [(5, 4), (20, 11)]
    assert columns == ["a", "prediction"]
