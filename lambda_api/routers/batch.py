"""Batch uploads from the web page: upload slots, local receive, job status, download."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import FileResponse, Response

from lambda_api.dependencies import BatchS3Dep, JSONBytes, RuntimeDep, UploadsDep, get_batch_s3, read_body
from lambda_api.models import UploadRequest, error_responses
from mlserve.errors import InputError
from mlserve.http import JSON_TYPES
from mlserve.uploads import (
    create_upload,
    job_status,
    local_download_path,
    parse_upload_request,
    receive_local_upload,
    score_local_upload_safely,
)

router = APIRouter(prefix="/batch", tags=["batch"])


@router.post(
    "/uploads",
    summary="Start a CSV batch job: returns where to upload the file (a presigned S3 POST when deployed)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": UploadRequest.model_json_schema()}},
        }
    },
    status_code=201,
    responses=error_responses(400, 413, 415, 422),
)
async def batch_upload(request: Request, runtime: RuntimeDep) -> Response:
    body, _ = await read_body(request, runtime, JSON_TYPES)  # media type first: a 415 needs no settings
    uploads = runtime.uploads
    client = get_batch_s3(request, uploads)
    return JSONBytes(create_upload(uploads, parse_upload_request(body), client), status_code=201)


@router.post("/local-uploads/{job_id}", summary="Local mode only: receive the CSV and score it in the background")
async def batch_local_upload(
    job_id: str,
    request: Request,
    background: BackgroundTasks,
    runtime: RuntimeDep,
    uploads: UploadsDep,
) -> Response:
    if not uploads.local:
        raise InputError("local uploads are off: upload with the presigned S3 POST", code="not_found", status=404)
    await receive_local_upload(
        uploads,
        job_id,
        request.headers.get("content-type"),
        request.headers.get("content-length"),
        request.stream(),
    )
    background.add_task(score_local_upload_safely, uploads, job_id, runtime.live)
    return JSONBytes({"job_id": job_id, "status": "pending", "status_url": f"batch/jobs/{job_id}"}, status_code=202)


@router.get("/jobs/{job_id}", summary="A batch job: pending, or done with report, preview, summary, download")
async def batch_job(job_id: str, uploads: UploadsDep, client: BatchS3Dep) -> Response:
    return JSONBytes(job_status(uploads, job_id, client), headers={"cache-control": "no-store"})


@router.get("/jobs/{job_id}/download", summary="Local mode: the predictions CSV (deployed: a presigned GET)")
async def batch_download(job_id: str, uploads: UploadsDep) -> Response:
    if not uploads.local:
        raise InputError("download with the presigned URL from GET /batch/jobs/{id}", code="not_found", status=404)
    path, filename = local_download_path(uploads, job_id)
    return FileResponse(path, media_type="text/csv; charset=utf-8", filename=filename)
