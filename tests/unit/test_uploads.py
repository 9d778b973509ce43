"""Browser-upload helpers: names, limits, content types, previews and summaries."""

from __future__ import annotations

import pytest

from mlserve.errors import InputError
from mlserve.ui import static_asset
from mlserve.uploads import (
    UploadSettings,
    check_content_type,
    check_size,
    histogram,
    preview,
    safe_filename,
    summarize,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("customers.csv", ("customers.csv", ".csv")),
        ("C:\\Users\\ana\\Q3 leads.CSV", ("Q3 leads.csv", ".csv")),
        ("Export.CSV.GZ", ("Export.csv.gz", ".csv.gz")),
        ("../../etc/x.csv.gz", ("x.csv.gz", ".csv.gz")),
        ("weird<>|name?.csv", ("weird_name_.csv", ".csv")),
    ],
)
def test_safe_filename(raw: str, expected: tuple[str, str]) -> None:
    assert safe_filename(raw) == expected


@pytest.mark.parametrize("raw", ["", None, 3, "report.xlsx", "data.csv.zip"])
def test_safe_filename_refuses(raw: object) -> None:
    with pytest.raises(InputError) as caught:
        safe_filename(raw)
    assert caught.value.details[0].loc == ["body", "filename"]


def test_size_limits() -> None:
    assert check_size(None, 10) is None
    assert check_size(10, 10) == 10
    with pytest.raises(InputError) as too_big:
        check_size(11, 10)
    assert (too_big.value.status, too_big.value.code) == (413, "file_too_large")
    for bad in (0, -1, "12", True, 1.5):
        with pytest.raises(InputError):
            check_size(bad, 10)


def test_content_types() -> None:
    assert check_content_type("text/csv", ".csv") == "text/csv"
    assert check_content_type("application/vnd.ms-excel", ".csv") == "text/csv"  # what Windows browsers send
    assert check_content_type("", ".csv") == "text/csv"
    assert check_content_type("application/gzip", ".csv.gz") == "application/gzip"
    with pytest.raises(InputError) as caught:
        check_content_type("image/png", ".csv")
    assert caught.value.status == 415


def test_local_mode() -> None:
    assert UploadSettings("file:///tmp/store", None).local
    assert UploadSettings("file:///tmp/store", "bucket").local  # a local store never uploads to S3
    assert UploadSettings("s3://models", None).local
    assert not UploadSettings("s3://models", "bucket").local
    assert str(UploadSettings("file:///tmp/store", None).local_root) == "/tmp/store/batch"


CSV = b"id,x,prediction,probability_0,model_version\n1,2.5,a,0.9,3\n2,3.5,b,0.2,3\n3,1,a,0.7,3\n4,1,a"


def test_preview_puts_predictions_first_and_drops_a_cut_line() -> None:
    result = preview(CSV, 10)
    assert result["columns"] == ["prediction", "probability_0", "model_version", "id", "x"]
    assert result["rows"] == [["a", "0.9", "3", "1", "2.5"], ["b", "0.2", "3", "2", "3.5"], ["a", "0.7", "3", "3", "1"]]
    assert len(preview(CSV, 2)["rows"]) == 2


def test_summary_counts_classes() -> None:
    assert summarize(CSV) == {"kind": "counts", "rows": 3, "counts": {"a": 2, "b": 1}, "partial": False}
    integers = b"prediction\n0\n1\n1\n"
    assert summarize(integers, partial=True)["counts"] == {"1": 2, "0": 1}
    assert summarize(b"x\n1\n")["kind"] == "none"


def test_summary_histogram_for_regressions() -> None:
    data = b"prediction\n" + b"".join(f"{v / 10}\n".encode() for v in range(100))
    summary = summarize(data)
    assert summary["kind"] == "histogram" and summary["rows"] == 100
    assert [b["count"] for b in summary["bins"]] == [10] * 10
    assert histogram([2.0, 2.0]) == [{"from": 2.0, "to": 2.0, "count": 2}]


def test_static_assets() -> None:
    page, media_type = static_asset("index.html", root_path="/prod")
    assert media_type.startswith("text/html")
    assert b'<base href="/prod/">' in page
    assert b"__MLSERVE_ROOT__" not in page
    assert b'<base href="/">' in static_asset("index.html")[0]
    script, media_type = static_asset("app.js")
    assert media_type.startswith("text/javascript") and b"mlserveUI" in script
    for name in ("../ui.py", "missing.js", "ui.py"):
        with pytest.raises(InputError) as caught:
            static_asset(name)
        assert caught.value.status == 404


def test_page_has_no_third_party_resources() -> None:
    for name in ("index.html", "app.js", "app.css"):
        content = static_asset(name)[0].decode()
        assert "http://" not in content and "https://" not in content, name


def test_csp_allows_an_emulator_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlserve.ui import page_csp

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.delenv("MLSERVE_UPLOAD_ORIGIN", raising=False)
    monkeypatch.delenv("MLSERVE_BATCH_BUCKET", raising=False)
    # Issue 11: no blanket `https:`; only the upload bucket's endpoint when there is one.
    assert "connect-src 'self';" in page_csp()
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://localhost.localstack.cloud:4566")
    assert "http://localhost.localstack.cloud:4566 http://*.localhost.localstack.cloud:4566;" in page_csp()
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://x; script-src *")
    assert "script-src *" not in page_csp()
