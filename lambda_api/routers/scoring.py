"""Scoring: /predict, /invocations (MLflow scoring protocol), /health, /model."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from lambda_api.dependencies import JSONBytes, RuntimeDep, read_body
from lambda_api.models import InvocationsResponse, PredictResponse, error_responses
from mlserve.errors import ModelUnavailableError
from mlserve.http import CSV_TYPES, JSON_TYPES, error_body_for
from mlserve.labels import label_fields
from mlserve.monitoring.capture import capture_prediction
from mlserve.observability import record_prediction
from mlserve.protocol import parse_json, rows_from_csv, rows_from_payload
from mlserve.scoring import LoadedModel, predict_rows

router = APIRouter(tags=["scoring"])


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


@router.post(
    "/predict",
    summary="Predict rows with the live model",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}}},
        }
    },
    responses={
        200: {"model": PredictResponse, "description": "predictions, and the model that made them"},
        **error_responses(400, 413, 415, 422, 503),
    },
)
async def predict(request: Request, runtime: RuntimeDep) -> Response:
    body, _ = await read_body(request, runtime, JSON_TYPES)
    model = runtime.model()
    content = await runtime.run(predict_content, model, body)
    return JSONBytes(content, headers=model_headers(model))


@router.post(
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
    responses={
        200: {"model": InvocationsResponse, "description": "one prediction per row"},
        **error_responses(400, 413, 415, 422, 503),
    },
)
async def invocations(request: Request, runtime: RuntimeDep) -> Response:
    body, kind = await read_body(request, runtime, JSON_TYPES + CSV_TYPES)
    model = runtime.model()
    content = await runtime.run(invocations_content, model, body, kind)
    return JSONBytes(content, headers=model_headers(model))


@router.get("/health", summary="200 with the live version; 503 while no model can be loaded")
async def health(runtime: RuntimeDep) -> Response:
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


@router.get("/model", summary="The live model: identity, signature, source, checksums")
async def describe_model(runtime: RuntimeDep) -> Response:
    model = runtime.model()
    return JSONBytes(model.describe(), headers=model_headers(model))
