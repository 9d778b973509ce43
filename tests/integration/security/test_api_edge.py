"""Issue 11 at the API edge, through the real Mangum handler and API Gateway event shapes:
the /invocations row count (Medium 7), /docs without a CDN (Low), the page's CSP naming the
upload bucket's endpoint instead of `https:` (Low)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.apigw_events import http_v2_event, rest_v1_event
from tests.integration.test_lambda_api import call, handler  # noqa: F401  (fixture)


def test_invocations_csv_over_the_row_limit_is_413_before_rows_are_built(
    handler: Any,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mlserve import protocol

    built: list[int] = []
    real = protocol.csv_cell

    def counting(value: str, column_type: str | None) -> Any:
        built.append(1)
        return real(value, column_type)

    monkeypatch.setattr(protocol, "csv_cell", counting)
    body = "mean radius\n" + "1\n" * 50_000  # MLSERVE_MAX_ROWS is 100 in this fixture
    status, _, answer = call(handler, rest_v1_event("POST", "/invocations", body, {"Content-Type": "text/csv"}))
    assert status == 413 and answer["error"]["code"] == "too_many_rows"
    assert "50000 > MLSERVE_MAX_ROWS=100" in answer["error"]["message"]
    assert built == []


@pytest.mark.parametrize(("builder", "stage"), [(rest_v1_event, "prod"), (http_v2_event, "dev")])
def test_docs_load_swagger_ui_from_the_package_not_a_cdn(handler: Any, builder: Any, stage: str) -> None:  # noqa: F811
    status, headers, html = call(handler, builder("GET", "/docs", stage=stage))
    assert status == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources, html
    for source in sources:
        assert not source.startswith(("http:", "https:", "//")), f"/docs loads {source} from another origin"
    assert f"/{stage}/ui/static/swagger-ui-bundle.js" in sources
    assert f"/{stage}/ui/static/swagger-ui.css" in sources
    assert f"/{stage}/openapi.json" in html
    # The assets are really served, from the package.
    status, headers, script = call(handler, builder("GET", "/ui/static/swagger-ui-bundle.js", stage=stage))
    assert status == 200 and headers["content-type"].startswith("text/javascript")
    assert "SwaggerUIBundle" in script
    status, _, _ = call(handler, builder("GET", "/redoc", stage=stage))
    assert status == 404  # ReDoc would load from a CDN: not offered


def test_page_csp_names_the_upload_bucket_not_any_https(
    handler: Any,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLSERVE_UPLOAD_ORIGIN", "https://uploads-bucket.s3.eu-west-1.amazonaws.com")
    status, headers, _ = call(handler, rest_v1_event("GET", "/ui", stage="prod"))
    assert status == 200
    csp = headers["content-security-policy"]
    connect = next(d for d in csp.split(";") if d.strip().startswith("connect-src")).split()[1:]
    assert "https:" not in connect
    assert connect == ["'self'", "https://uploads-bucket.s3.eu-west-1.amazonaws.com"]


def test_page_csp_derives_the_regional_bucket_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlserve.ui import page_csp
    from mlserve.uploads import s3_client

    for name in ("MLSERVE_UPLOAD_ORIGIN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLSERVE_BATCH_BUCKET", "page-uploads")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    assert "connect-src 'self' https://page-uploads.s3.us-east-1.amazonaws.com;" in page_csp()
    # ...which is exactly where the presigned POST sends the browser.
    url = s3_client().generate_presigned_post(Bucket="page-uploads", Key="incoming/x/y.csv")["url"]
    assert url.rstrip("/") == "https://page-uploads.s3.us-east-1.amazonaws.com"
    monkeypatch.delenv("MLSERVE_BATCH_BUCKET")
    assert "connect-src 'self';" in page_csp()  # local mode: uploads go to the API itself
