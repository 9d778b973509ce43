"""Pydantic models of the API's fixed bodies, published in the OpenAPI schema.

The request rows of /predict and /invocations depend on the live model's signature, so
their schemas are built per version in `lambda_api.app` (components PredictRequest and
InvocationsRequest); everything else has a fixed shape and is described here once.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ModelInfo(BaseModel):
    name: str
    version: str
    run_id: str | None = None


class PredictResponse(BaseModel):
    predictions: list[Any] = Field(description="one prediction per instance, in request order")
    probabilities: list[dict[str, float]] | None = Field(
        default=None, description="per-class probabilities, only when the request asked for them"
    )
    model: ModelInfo = Field(description="the model version that made these predictions")
    labels: list[str] | None = Field(
        default=None, description="each prediction's class display name, when the model logged class_labels"
    )


class InvocationsResponse(BaseModel):
    predictions: list[Any]


class ErrorDetailBody(BaseModel):
    loc: list[str | int] = Field(description="where: e.g. ['body', 'instances', 3, 'age']")
    msg: str


class ErrorInfo(BaseModel):
    code: str = Field(description="stable machine-readable code, e.g. validation_error, body_too_large")
    message: str
    details: list[ErrorDetailBody]


class ErrorResponse(BaseModel):
    error: ErrorInfo


class UploadRequest(BaseModel):
    """POST /batch/uploads. Checked by `mlserve.uploads.create_upload`, whose errors name the
    field and carry a specific code (invalid_filename, file_too_large, ...)."""

    filename: str = Field(examples=["customers.csv"], description="a .csv or .csv.gz file name")
    size: int | None = Field(default=None, description="file size in bytes")
    content_type: str | None = Field(default=None, examples=["text/csv"])


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries: these statuses answer with the error body."""
    described = {
        400: "malformed body (e.g. invalid JSON)",
        404: "not found",
        413: "body larger than the limit",
        415: "unsupported content type",
        422: "the input does not match the model's signature (details name the field/row)",
        503: "no model can be served right now",
    }
    return {status: {"model": ErrorResponse, "description": described.get(status, "error")} for status in statuses}
