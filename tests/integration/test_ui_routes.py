"""The web page's routes: static files, /batch/uploads (presigned S3 POST when deployed,
a same-origin upload locally), job status, previews, summaries and downloads."""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from fastapi.testclient import TestClient

from tests.apigw_events import FakeLambdaContext, rest_v1_event
from tests.conftest import MODEL_BUCKET, publish

BATCH_BUCKET = "mlserve-batch-test"
JSON = {"Content-Type": "application/json"}


def csv_bytes(features: Any, bad_lines: bool = True) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", *features.columns])
    for i, values in enumerate(features.iloc[::50].head(8).itertuples(index=False)):
        row = [f"r{i}", *(repr(float(v)) for v in values)]
        if bad_lines and i == 1:
            row[1] = "abc"
        writer.writerow(row)
    return out.getvalue().encode()


@pytest.fixture
def local_client(
    local_store: Any, demo_registry: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    publish(local_store, demo_registry.classifier_dir, version="1", run_id=demo_registry.classifier_run_id)
    monkeypatch.setenv("MLSERVE_STORE", local_store.uri)
    monkeypatch.setenv("MLSERVE_MODEL_NAME", "demo-classifier")
    monkeypatch.setenv("MLSERVE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MLSERVE_UPLOAD_MAX_BYTES", "20000")
    monkeypatch.delenv("MLSERVE_BATCH_BUCKET", raising=False)
    monkeypatch.delenv("MLSERVE_AUTH", raising=False)
    from lambda_api.app import create_app

    with TestClient(create_app()) as client:
        yield client


def test_page_and_assets(local_client: TestClient) -> None:
    for path in ("/", "/ui"):
        response = local_client.get(path)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in response.headers["content-security-policy"]
        assert '<base href="/">' in response.text
    js = local_client.get("/ui/static/app.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert local_client.get("/ui/static/app.css").headers["content-type"].startswith("text/css")
    missing = local_client.get("/ui/static/nope.js")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert local_client.get("/ui/config").json() == {"auth": "none", "upload_max_bytes": 20000}
    example = local_client.get("/ui/example").json()
    assert example["model"]["version"] == "1" and len(example["row"]) == 30
    # Page routes stay out of the API reference; batch routes are in it.
    paths = local_client.get("/openapi.json").json()["paths"]
    assert "/" not in paths and "/ui/static/{name}" not in paths
    assert {"/batch/uploads", "/batch/jobs/{job_id}"} <= set(paths)


def test_auth_mode_is_announced(local_client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLSERVE_AUTH", "api_key")
    assert local_client.get("/ui/config").json()["auth"] == "api_key"
    monkeypatch.setenv("MLSERVE_AUTH", "IAM")
    assert local_client.get("/ui/config").json()["auth"] == "iam"


def test_local_upload_end_to_end(local_client: TestClient, breast_cancer: Any, local_store: Any) -> None:
    body = csv_bytes(breast_cancer)
    created = local_client.post(
        "/batch/uploads", json={"filename": "leads.csv", "size": len(body), "content_type": "text/csv"}
    )
    assert created.status_code == 201, created.text
    job = created.json()
    job_id = job["job_id"]
    assert job["key"] == f"incoming/{job_id}/leads.csv"
    assert job["upload"] == {
        "mode": "local",
        "method": "POST",
        "url": f"batch/local-uploads/{job_id}",
        "headers": {"Content-Type": "text/csv"},
    }
    assert local_client.get(f"/batch/jobs/{job_id}").json() == {
        "job_id": job_id,
        "status": "pending",
        "uploaded": False,
    }

    uploaded = local_client.post(f"/{job['upload']['url']}", content=body, headers={"Content-Type": "text/csv"})
    assert uploaded.status_code == 202, uploaded.text
    root = Path(local_store.root) / "batch"
    assert (root / "incoming" / job_id / "leads.csv").read_bytes() == body  # the input is kept as sent

    status = local_client.get(f"/batch/jobs/{job_id}")
    assert status.status_code == 200 and status.headers["cache-control"] == "no-store"
    done = status.json()
    assert done["status"] == "done"
    report = done["report"]
    assert report["status"] == "succeeded"
    assert (report["rows_read"], report["rows_scored"], report["rows_rejected"]) == (8, 7, 1)
    rejected = report["rejected_rows"][0]
    assert rejected["line"] == 3 and rejected["errors"][0]["column"] == breast_cancer.columns[0]
    assert report["model"]["name"] == "demo-classifier" and report["model"]["version"] == "1"
    assert done["preview"]["columns"][:3] == ["prediction", "model_version", "id"]
    assert [row[2] for row in done["preview"]["rows"]] == ["r0", "r2", "r3", "r4", "r5", "r6", "r7"]
    assert done["summary"]["kind"] == "counts" and sum(done["summary"]["counts"].values()) == 7
    assert done["download"] == {"filename": "leads.csv.predictions.csv", "url": f"batch/jobs/{job_id}/download"}

    download = local_client.get(f"/{done['download']['url']}")
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    assert 'filename="leads.csv.predictions.csv"' in download.headers["content-disposition"]
    records = list(csv.DictReader(io.StringIO(download.text)))
    assert len(records) == 7 and {r["prediction"] for r in records} <= {"0", "1"}

    again = local_client.post(f"/batch/local-uploads/{job_id}", content=body, headers={"Content-Type": "text/csv"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_uploaded"


def test_local_upload_rejected_file_has_a_report(local_client: TestClient) -> None:
    job = local_client.post("/batch/uploads", json={"filename": "wrong.csv", "content_type": "text/csv"}).json()
    local_client.post(f"/{job['upload']['url']}", content=b"a,b\n1,2\n", headers={"Content-Type": "text/csv"})
    done = local_client.get(f"/batch/jobs/{job['job_id']}").json()
    assert done["status"] == "done"
    assert done["report"]["status"] == "rejected"
    assert "missing" in done["report"]["error"]["message"]
    assert "download" not in done and "preview" not in done


@pytest.mark.parametrize(
    ("payload", "status", "code", "loc"),
    [
        ({"filename": "x.xlsx"}, 422, "invalid_filename", ["body", "filename"]),
        ({}, 422, "invalid_filename", ["body", "filename"]),
        ({"filename": "x.csv", "size": 20001}, 413, "file_too_large", ["body", "size"]),
        ({"filename": "x.csv", "size": 0}, 422, "empty_file", ["body", "size"]),
        ({"filename": "x.csv", "content_type": "image/png"}, 415, "unsupported_media_type", ["body", "content_type"]),
    ],
)
def test_upload_request_errors(
    local_client: TestClient, payload: dict[str, Any], status: int, code: str, loc: list[str]
) -> None:
    response = local_client.post("/batch/uploads", json=payload)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code and error["details"][0]["loc"] == loc


def test_upload_request_needs_json(local_client: TestClient) -> None:
    response = local_client.post("/batch/uploads", content=b"filename=x.csv", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
    broken = local_client.post("/batch/uploads", content=b"{", headers=JSON)
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "malformed_json"


def test_local_upload_enforces_the_slot(local_client: TestClient) -> None:
    job = local_client.post("/batch/uploads", json={"filename": "x.csv", "content_type": "text/csv"}).json()
    url = f"/{job['upload']['url']}"
    wrong_type = local_client.post(url, content=b"a\n1\n", headers={"Content-Type": "application/json"})
    assert wrong_type.status_code == 415
    assert wrong_type.json()["error"]["details"][0]["loc"] == ["header", "content-type"]
    too_big = local_client.post(url, content=b"a\n" + b"1\n" * 15000, headers={"Content-Type": "text/csv"})
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "file_too_large"
    empty = local_client.post(url, content=b"", headers={"Content-Type": "text/csv"})
    assert empty.status_code == 422 and empty.json()["error"]["code"] == "empty_file"
    # Nothing was kept from the refused attempts: the slot is still open.
    assert local_client.get(f"/batch/jobs/{job['job_id']}").json()["uploaded"] is False
    unknown = local_client.post(
        "/batch/local-uploads/" + "0" * 32, content=b"a\n1\n", headers={"Content-Type": "text/csv"}
    )
    assert unknown.status_code == 404
    assert local_client.get("/batch/jobs/not-a-job").status_code == 404
    assert local_client.get("/batch/jobs/" + "f" * 32).status_code == 404
    assert local_client.get("/batch/jobs/" + "f" * 32 + "/download").status_code == 404


# --- deployed: S3 (moto) ------------------------------------------------------------------


@pytest.fixture
def s3_client_app(
    s3: Any, s3_store: Any, demo_registry: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[TestClient, Any]]:
    s3.create_bucket(Bucket=BATCH_BUCKET)
    publish(s3_store, demo_registry.classifier_dir, version="1", run_id=demo_registry.classifier_run_id)
    monkeypatch.setenv("MLSERVE_STORE", f"s3://{MODEL_BUCKET}")
    monkeypatch.setenv("MLSERVE_MODEL_NAME", "demo-classifier")
    monkeypatch.setenv("MLSERVE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MLSERVE_BATCH_BUCKET", BATCH_BUCKET)
    monkeypatch.setenv("MLSERVE_UPLOAD_MAX_BYTES", "5000000")
    import lambda_api.app

    with TestClient(lambda_api.app.create_app()) as client:
        yield client, s3


def test_presigned_post_shape(s3_client_app: tuple[TestClient, Any]) -> None:
    client, _ = s3_client_app
    response = client.post("/batch/uploads", json={"filename": "leads.csv", "size": 1234, "content_type": "text/csv"})
    assert response.status_code == 201, response.text
    job = response.json()
    upload = job["upload"]
    assert upload["mode"] == "s3" and upload["method"] == "POST"
    assert BATCH_BUCKET in upload["url"] and upload["url"].startswith("https://")
    fields = upload["fields"]
    assert fields["key"] == f"incoming/{job['job_id']}/leads.csv"
    assert fields["Content-Type"] == "text/csv"
    assert fields["x-amz-algorithm"] == "AWS4-HMAC-SHA256" and "x-amz-signature" in fields
    policy = json.loads(base64.b64decode(fields["policy"]))
    conditions = policy["conditions"]
    assert ["content-length-range", 1, 5000000] in conditions
    assert {"Content-Type": "text/csv"} in conditions
    assert {"key": fields["key"]} in conditions
    assert {"bucket": BATCH_BUCKET} in conditions
    assert "expiration" in policy
    gz = client.post("/batch/uploads", json={"filename": "big.csv.gz", "content_type": "application/gzip"}).json()
    assert gz["upload"]["fields"]["Content-Type"] == "application/gzip"
    # No local upload route when deployed.
    assert client.post(f"/batch/local-uploads/{job['job_id']}", content=b"a\n1\n").status_code == 404


def test_s3_job_status_and_presigned_download(s3_client_app: tuple[TestClient, Any]) -> None:
    client, s3 = s3_client_app
    job_id = client.post("/batch/uploads", json={"filename": "leads.csv"}).json()["job_id"]
    assert client.get(f"/batch/jobs/{job_id}").json()["status"] == "pending"
    s3.put_object(Bucket=BATCH_BUCKET, Key=f"incoming/{job_id}/leads.csv", Body=b"a\n1\n")
    assert client.get(f"/batch/jobs/{job_id}").json() == {"job_id": job_id, "status": "pending", "uploaded": True}
    # What the batch Lambda writes (issue 4): predictions, then the report.
    predictions = b"a,prediction,model_version\n" + b"".join(f"{i},{i % 2},1\n".encode() for i in range(50))
    s3.put_object(Bucket=BATCH_BUCKET, Key=f"results/{job_id}/leads.csv.predictions.csv", Body=predictions)
    report = {"status": "succeeded", "rows_read": 51, "rows_scored": 50, "rows_rejected": 1, "rejected_rows": []}
    s3.put_object(Bucket=BATCH_BUCKET, Key=f"results/{job_id}/leads.csv.report.json", Body=json.dumps(report))
    done = client.get(f"/batch/jobs/{job_id}").json()
    assert done["status"] == "done" and done["report"] == report
    assert done["preview"]["columns"] == ["prediction", "model_version", "a"]
    assert len(done["preview"]["rows"]) == 20
    assert done["summary"] == {"kind": "counts", "rows": 50, "counts": {"0": 25, "1": 25}, "partial": False}
    url = urlparse(done["download"]["url"])
    assert url.scheme == "https" and url.path.endswith(f"results/{job_id}/leads.csv.predictions.csv")
    query = parse_qs(url.query)
    assert query["response-content-disposition"] == ["attachment; filename*=UTF-8''leads.csv.predictions.csv"]
    assert "X-Amz-Signature" in query
    # The presigned URL really fetches the object (moto answers the signed GET).
    import requests

    fetched = requests.get(done["download"]["url"], timeout=10)
    assert fetched.status_code == 200 and fetched.content == predictions


def test_page_under_an_api_gateway_stage(
    s3_client_app: tuple[TestClient, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import lambda_api.app
    import lambda_api.handler as module

    monkeypatch.setattr(module.handler, "app", module.StagePrefix(lambda_api.app.create_app()))
    handler: Any = module.handler
    response = handler(rest_v1_event("GET", "/ui"), FakeLambdaContext())
    assert response["statusCode"] == 200
    body = response["body"] if not response.get("isBase64Encoded") else base64.b64decode(response["body"]).decode()
    assert '<base href="/prod/">' in body
    script = handler(rest_v1_event("GET", "/ui/static/app.js"), FakeLambdaContext())
    assert script["statusCode"] == 200


def test_local_scoring_crash_still_ends_the_job(local_client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlserve.uploads.local
    from mlserve.errors import ModelUnavailableError

    def broken(*args: Any) -> None:
        raise ModelUnavailableError("no live model for demo-classifier")

    monkeypatch.setattr(mlserve.uploads.local, "score_local_upload", broken)
    job = local_client.post("/batch/uploads", json={"filename": "x.csv", "content_type": "text/csv"}).json()
    local_client.post(f"/{job['upload']['url']}", content=b"a\n1\n", headers={"Content-Type": "text/csv"})
    done = local_client.get(f"/batch/jobs/{job['job_id']}").json()
    assert done["status"] == "done"
    assert done["report"]["status"] == "failed"
    assert done["report"]["error"] == {"code": "model_unavailable", "message": "no live model for demo-classifier"}
