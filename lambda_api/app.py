"""The online prediction API: routes and HTTP mapping only; logic lives in `mlserve`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import BackgroundTasks, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from lambda_api.monitoring_routes import router as monitoring_router
from mlserve.config import Settings
from mlserve.errors import ErrorDetail, InputError, MlserveError, ModelUnavailableError
from mlserve.http import (
    CSV_TYPES,
    JSON_TYPES,
    BodyLimitMiddleware,
    check_body_size,
    dumps,
    error_body,
    error_body_for,
    require_media_type,
)
from mlserve.labels import label_fields
from mlserve.live import LiveModel
from mlserve.monitoring.capture import capture_prediction
from mlserve.observability import on_model_swap, record_prediction, record_validation_error
from mlserve.protocol import parse_json, rows_from_csv, rows_from_payload
from mlserve.scoring import LoadedModel, predict_rows
from mlserve.store import open_store
from mlserve.ui import docs_html, page_csp, static_asset, ui_config, ui_example
from mlserve.uploads import (
    UploadSettings,
    create_upload,
    job_status,
    local_download_path,
    parse_upload_request,
    receive_local_upload,
    s3_client,
    score_local_upload_safely,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

HTTP_ERROR_CODES = {404: "not_found", 405: "method_not_allowed", 400: "bad_request", 413: "body_too_large"}


class JSONBytes(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)


def live_from_env() -> tuple[LiveModel, Settings]:
    settings = Settings.from_env()
    live = LiveModel(
        open_store(settings.store_uri),
        settings.model_name,
        refresh_seconds=settings.refresh_seconds,
        allow_pickle=settings.allow_pickle,
        max_rows=settings.max_rows,
        cache_dir=settings.cache_dir,
        on_swap=on_model_swap,
    )
    return live, settings


class Runtime:
    """Built on first use, so importing the app (cold start) does no I/O."""

    def __init__(self, factory: Callable[[], tuple[LiveModel, Settings]]) -> None:
        self._factory = factory
        self._built: tuple[LiveModel, Settings] | None = None

    def _get(self) -> tuple[LiveModel, Settings]:
        if self._built is None:
            try:
                self._built = self._factory()
            except MlserveError as exc:
                raise ModelUnavailableError(f"the API is not configured: {exc.message}") from None
        return self._built

    @property
    def live(self) -> LiveModel:
        return self._get()[0]

    @property
    def settings(self) -> Settings:
        return self._get()[1]

    def model(self) -> LoadedModel:
        return self.live.get()

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        """Run CPU-bound request work inline (Lambda) or in a worker thread (servers)."""
        if self.settings.score_in_threads:
            return await run_in_threadpool(work, *args)
        return work(*args)

    def current_model(self) -> LoadedModel | None:
        """The model being served, without loading or refreshing anything."""
        return self._built[0].current if self._built is not None else None


def predict_content(model: LoadedModel, body: bytes) -> dict[str, Any]:
    """/predict: validate the body against the model's schema, score, shape the answer."""
    payload = model.schema.validate_predict_body(body)
    result = predict_rows(model, payload["instances"], probabilities=payload.get("probabilities", False))
    record_prediction(model, len(payload["instances"]))
    capture_prediction(model, payload["instances"], result.predictions)
    content: dict[str, Any] = {"predictions": result.predictions, "model": result.model.to_dict()}
    content.update(label_fields(model.spec, result.predictions))  # display names, when logged
    if result.probabilities is not None:
        content["probabilities"] = result.probabilities
    return content


def invocations_content(model: LoadedModel, body: bytes, kind: str) -> dict[str, Any]:
    """/invocations: any MLflow scoring-protocol body (JSON formats or CSV) -> predictions."""
    if kind in CSV_TYPES:
        types = {column.name: column.type for column in model.spec.inputs}
        raw_rows = rows_from_csv(body, types, max_rows=model.schema.max_rows)
    else:
        raw_rows = rows_from_payload(parse_json(body), model.schema.column_names, max_rows=model.schema.max_rows)
    rows = model.schema.validate_rows(raw_rows, forbid_extra=False)
    result = predict_rows(model, rows)
    record_prediction(model, len(rows))
    capture_prediction(model, rows, result.predictions)
    return {"predictions": result.predictions}


def model_headers(model: LoadedModel) -> dict[str, str]:
    identity = model.identity
    return {
        "x-mlserve-model-name": identity.name,
        "x-mlserve-model-version": identity.version,
        "x-mlserve-model-run-id": identity.run_id or "",
    }


async def read_body(request: Request, runtime: Runtime, accepted: tuple[str, ...]) -> tuple[bytes, str]:
    kind = require_media_type(request.headers.get("content-type"), accepted)
    declared = request.headers.get("content-length")
    limit = runtime.settings.max_body_bytes
    if declared and declared.isdigit():
        check_body_size(int(declared), limit)
    body = await request.body()
    check_body_size(len(body), limit)
    return body, kind


def create_app(factory: Callable[[], tuple[LiveModel, Settings]] = live_from_env) -> FastAPI:
    runtime = Runtime(factory)
    app = FastAPI(
        title="mlserve prediction API",
        description="Predictions from the live MLflow model version. Request fields come from its signature.",
        version="1",
        default_response_class=JSONBytes,
        # /docs is served below with Swagger UI's assets from the package (no CDN); ReDoc
        # would load from a CDN, so it is not offered.
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = runtime
    # The byte limit while reading (chunked bodies included), not after buffering the body.
    app.add_middleware(
        BodyLimitMiddleware,
        limit=lambda: runtime.settings.max_body_bytes,
        exempt=("/batch/local-uploads/",),  # streamed to disk under MLSERVE_UPLOAD_MAX_BYTES
    )
    app.include_router(monitoring_router)

    @app.exception_handler(MlserveError)
    async def mlserve_error(request: Request, exc: MlserveError) -> Response:
        status = exc.status if isinstance(exc, InputError) else 503 if isinstance(exc, ModelUnavailableError) else 500
        if isinstance(exc, InputError):
            record_validation_error(runtime.current_model(), exc.code)
        if status >= 500 and status != 503:
            logger.error("request failed: %s", exc)
        return JSONBytes(error_body_for(exc), status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = HTTP_ERROR_CODES.get(exc.status_code, "http_error")
        message = str(exc.detail)
        if exc.status_code == 404:
            message = f"no route {request.method} {request.url.path}"
        elif exc.status_code == 405:
            message = f"method {request.method} is not allowed on {request.url.path}"
        return JSONBytes(error_body(code, message), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        details = [ErrorDetail(list(e.get("loc", [])), str(e.get("msg"))) for e in exc.errors()]
        record_validation_error(runtime.current_model(), "validation_error")
        return JSONBytes(error_body("validation_error", "invalid request", details), status_code=422)

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> Response:
        # Never a stack trace to the caller; the log has it.
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONBytes(
            error_body("internal_error", "internal error; the server log has the details"), status_code=500
        )

    @app.post(
        "/predict",
        summary="Predict rows with the live model",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}}},
            }
        },
        responses={200: {"description": "predictions, and the model that made them"}},
    )
    async def predict(request: Request) -> Response:
        body, _ = await read_body(request, runtime, JSON_TYPES)
        model = runtime.model()
        content = await runtime.run(predict_content, model, body)
        return JSONBytes(content, headers=model_headers(model))

    @app.post(
        "/invocations",
        summary="MLflow scoring protocol (dataframe_split, dataframe_records, instances, inputs; JSON or CSV)",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/InvocationsRequest"}},
                    "text/csv": {"schema": {"type": "string"}},
                },
            }
        },
    )
    async def invocations(request: Request) -> Response:
        body, kind = await read_body(request, runtime, JSON_TYPES + CSV_TYPES)
        model = runtime.model()
        content = await runtime.run(invocations_content, model, body, kind)
        return JSONBytes(content, headers=model_headers(model))

    @app.get("/health", summary="200 with the live version; 503 while no model can be loaded")
    async def health() -> Response:
        try:
            model = runtime.model()
        except ModelUnavailableError as exc:
            return JSONBytes({"status": "unavailable", **error_body_for(exc)}, status_code=503)
        degraded = runtime.live.degraded_reason
        if degraded:
            # Still serving the older model (so 200, not 503), but the newest pointer could
            # not be loaded: say so, with the reason (docs/security.md, "Model cache").
            return JSONBytes({"status": "degraded", "reason": degraded, "model": model.identity.to_dict()})
        return JSONBytes({"status": "ok", "model": model.identity.to_dict()})

    @app.get("/model", summary="The live model: identity, signature, source, checksums")
    async def describe_model() -> Response:
        model = runtime.model()
        return JSONBytes(model.describe(), headers=model_headers(model))

    def uploads() -> UploadSettings:
        settings = runtime.settings
        cached = getattr(app.state, "upload_settings", None)
        if cached is None or cached[0] is not settings:
            cached = (settings, UploadSettings.from_env(settings))
            app.state.upload_settings = cached
        return cached[1]

    def batch_s3() -> Any:
        # One client per app (container), made on first deployed-mode use.
        if getattr(app.state, "batch_s3", None) is None:
            app.state.batch_s3 = s3_client()
        return app.state.batch_s3

    @app.get("/", include_in_schema=False)
    @app.get("/ui", include_in_schema=False)
    async def page(request: Request) -> Response:
        # <base> = the API's root, so the page's relative URLs work under a stage path too.
        return static_response("index.html", root_path=request.scope.get("root_path", ""))

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> Response:
        html = docs_html(request.scope.get("root_path", ""), app.openapi_url or "/openapi.json", f"{app.title} - docs")
        return Response(html, media_type="text/html; charset=utf-8", headers={"referrer-policy": "no-referrer"})

    @app.get("/ui/static/{name}", include_in_schema=False)
    async def static_file(name: str) -> Response:
        return static_response(name)

    @app.get("/ui/config", summary="What the web page needs before anything else: auth mode, upload limit")
    async def page_config() -> Response:
        return JSONBytes(ui_config())

    @app.get("/ui/example", summary="The live model's logged input example (one row), to prefill the form")
    async def page_example() -> Response:
        return JSONBytes(ui_example(runtime.model()))

    @app.post(
        "/batch/uploads",
        summary="Start a CSV batch job: returns where to upload the file (a presigned S3 POST when deployed)",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["filename"],
                            "properties": {
                                "filename": {"type": "string", "example": "customers.csv"},
                                "size": {"type": "integer", "description": "file size in bytes"},
                                "content_type": {"type": "string", "example": "text/csv"},
                            },
                        }
                    }
                },
            }
        },
    )
    async def batch_upload(request: Request) -> Response:
        body, _ = await read_body(request, runtime, JSON_TYPES)
        settings = uploads()
        client = None if settings.local else batch_s3()
        return JSONBytes(create_upload(settings, parse_upload_request(body), client), status_code=201)

    @app.post(
        "/batch/local-uploads/{job_id}", summary="Local mode only: receive the CSV and score it in the background"
    )
    async def batch_local_upload(job_id: str, request: Request, background: BackgroundTasks) -> Response:
        settings = uploads()
        if not settings.local:
            raise InputError("local uploads are off: upload with the presigned S3 POST", code="not_found", status=404)
        await receive_local_upload(
            settings,
            job_id,
            request.headers.get("content-type"),
            request.headers.get("content-length"),
            request.stream(),
        )
        background.add_task(score_local_upload_safely, settings, job_id, runtime.live)
        return JSONBytes({"job_id": job_id, "status": "pending", "status_url": f"batch/jobs/{job_id}"}, status_code=202)

    @app.get("/batch/jobs/{job_id}", summary="A batch job: pending, or done with report, preview, summary, download")
    async def batch_job(job_id: str) -> Response:
        settings = uploads()
        client = None if settings.local else batch_s3()
        return JSONBytes(job_status(settings, job_id, client), headers={"cache-control": "no-store"})

    @app.get("/batch/jobs/{job_id}/download", summary="Local mode: the predictions CSV (deployed: a presigned GET)")
    async def batch_download(job_id: str) -> Response:
        settings = uploads()
        if not settings.local:
            raise InputError("download with the presigned URL from GET /batch/jobs/{id}", code="not_found", status=404)
        path, filename = local_download_path(settings, job_id)
        return FileResponse(path, media_type="text/csv; charset=utf-8", filename=filename)

    def openapi() -> dict[str, Any]:
        # Rebuilt per live version so /docs always shows the serving model's fields.
        try:
            model: LoadedModel | None = runtime.model()
        except MlserveError:
            model = None
        version = model.identity.version if model else None
        cached = getattr(app.state, "openapi_cache", None)
        if cached and cached[0] == version:
            return dict(cached[1])
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        if model is not None:
            schema["info"]["description"] = (
                f"{app.description}\n\nServing **{model.identity.name}** version **{model.identity.version}**."
            )
            request_schema = dict(model.schema.predict_request_schema)
            components.update(request_schema.pop("$defs", {}))
            components["PredictRequest"] = request_schema
            components["InvocationsRequest"] = invocations_schema(model)
        else:
            components["PredictRequest"] = {"type": "object", "description": "no model is live yet"}
            components["InvocationsRequest"] = {"type": "object", "description": "no model is live yet"}
        app.state.openapi_cache = (version, schema)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def static_response(name: str, root_path: str = "") -> Response:
    content, media_type = static_asset(name, root_path=root_path)
    return Response(
        content,
        media_type=media_type,
        headers={
            "cache-control": "no-cache",
            "x-content-type-options": "nosniff",
            "content-security-policy": page_csp(),
            "referrer-policy": "no-referrer",
        },
    )


def invocations_schema(model: LoadedModel) -> dict[str, Any]:
    row_ref = {"$ref": f"#/components/schemas/{model.schema.row_schema.get('title', 'Row')}"}
    columns = model.schema.column_names
    return {
        "title": "InvocationsRequest",
        "description": "MLflow scoring protocol: exactly one of these keys.",
        "type": "object",
        "properties": {
            "dataframe_split": {
                "type": "object",
                "properties": {
                    "columns": {"type": "array", "items": {"type": "string"}, "example": columns},
                    "data": {"type": "array", "items": {"type": "array", "items": {}}},
                },
                "required": ["data"],
            },
            "dataframe_records": {"type": "array", "items": row_ref},
            "instances": {"type": "array", "items": row_ref},
            "inputs": {"oneOf": [{"type": "array", "items": row_ref}, {"type": "object"}]},
        },
        "minProperties": 1,
        "maxProperties": 1,
    }


app = create_app()
