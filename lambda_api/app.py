"""The online prediction API: the app, its error mapping and OpenAPI document; routes live in
`lambda_api.routers` (scoring, page, batch) and `lambda_api.monitoring_routes`, logic in `mlserve`."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from lambda_api.dependencies import JSONBytes, Runtime, RuntimeFactory, live_from, live_from_env
from lambda_api.monitoring_routes import router as monitoring_router
from lambda_api.routers import batch, page, scoring
from mlserve.config import Settings
from mlserve.errors import ErrorDetail, InputError, MlserveError, ModelUnavailableError
from mlserve.http import BodyLimitMiddleware, error_body, error_body_for
from mlserve.observability import record_validation_error
from mlserve.scoring import LoadedModel

logger = logging.getLogger(__name__)

HTTP_ERROR_CODES = {404: "not_found", 405: "method_not_allowed", 400: "bad_request", 413: "body_too_large"}

__all__ = ["JSONBytes", "Runtime", "app", "create_app", "invocations_schema", "live_from_env"]


def create_app(settings: Settings | None = None, *, factory: RuntimeFactory | None = None) -> FastAPI:
    """The API for `settings` (None: read MLSERVE_* on first use, as in Lambda). `factory`
    builds the (live model, settings) pair itself (tests)."""
    runtime = Runtime(factory or (live_from(settings) if settings is not None else live_from_env))
    app = FastAPI(
        title="mlserve prediction API",
        description="Predictions from the live MLflow model version. Request fields come from its signature.",
        version="1",
        default_response_class=JSONBytes,
        # /docs is served by the page router with Swagger UI's assets from the package (no
        # CDN); ReDoc would load from a CDN, so it is not offered.
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
    app.include_router(scoring.router)
    app.include_router(page.router)
    app.include_router(batch.router)
    app.include_router(monitoring_router)
    add_error_handlers(app, runtime)
    app.openapi = lambda: openapi(app, runtime)  # type: ignore[method-assign]
    return app


def add_error_handlers(app: FastAPI, runtime: Runtime) -> None:
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


def openapi(app: FastAPI, runtime: Runtime) -> dict[str, Any]:
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
