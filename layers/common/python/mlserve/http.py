"""HTTP mapping shared by the API app: error bodies, JSON encoding, request body checks."""

from __future__ import annotations

from typing import Any

import orjson

from mlserve.errors import ErrorDetail, InputError, MlserveError

JSON_TYPES = ("application/json",)
CSV_TYPES = ("text/csv", "application/csv")


def error_body(code: str, message: str, details: list[ErrorDetail] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": [d.to_dict() for d in details or []]}}


def error_body_for(exc: MlserveError) -> dict[str, Any]:
    return error_body(exc.code, exc.message, exc.details)


def dumps(payload: Any) -> bytes:
    # numpy scalars/arrays and datetimes serialize natively; NaN becomes null.
    return orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def require_media_type(content_type: str | None, accepted: tuple[str, ...]) -> str:
    kind = media_type(content_type)
    if kind not in accepted:
        shown = kind or "none"
        raise InputError(
            f"unsupported content type {shown!r}; send {' or '.join(accepted)}",
            code="unsupported_media_type",
            status=415,
            details=[ErrorDetail(["header", "content-type"], f"expected {' or '.join(accepted)}")],
        )
    return kind


def check_body_size(size: int, limit: int) -> None:
    if size > limit:
        raise InputError(
            f"request body is {size} bytes, the limit is {limit} (MLSERVE_MAX_BODY_BYTES)",
            code="body_too_large",
            status=413,
            details=[ErrorDetail(["body"], f"at most {limit} bytes")],
        )
