"""HTTP mapping shared by the API app: error bodies, JSON encoding, request body checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from mlserve.errors import ErrorDetail, InputError, MlserveError

JSON_TYPES = ("application/json",)
CSV_TYPES = ("text/csv", "application/csv")
# MLSERVE_MAX_BODY_BYTES' default, the one value (cdk.json's max_body_bytes matches it): Lambda's
# 6 MB synchronous payload counts the whole API Gateway event (headers, base64), so the body
# itself gets 5 MiB and the envelope the rest.
DEFAULT_BODY_LIMIT = 5 * 1024 * 1024


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


class BodyLimitMiddleware:
    """Enforce the request body limit WHILE reading, as raw ASGI: a declared Content-Length
    over the limit is answered 413 before any byte is read, and a body without one (chunked)
    fails with 413 as soon as the bytes received pass the limit - the server never holds more
    than the limit plus one chunk. Routes that stream their body to disk under their own,
    larger limit (the local CSV upload) are exempt by path fragment."""

    def __init__(self, app: Any, limit: Callable[[], int], exempt: tuple[str, ...] = ()) -> None:
        self.app = app
        self.limit = limit
        self.exempt = exempt

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = str(scope.get("path", ""))
        if scope.get("type") != "http" or any(fragment in path for fragment in self.exempt):
            await self.app(scope, receive, send)
            return
        try:
            limit = self.limit()
        except Exception:  # no settings yet (the route will say why): keep the default bound
            limit = DEFAULT_BODY_LIMIT
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await send_error(send, body_too_large(int(declared), limit))
            return
        received = 0

        async def limited_receive() -> dict[str, Any]:
            nonlocal received
            message: dict[str, Any] = await receive()
            if message.get("type") == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Raised into the route's body read; the app's MlserveError handler
                    # answers 413 and the rest of the body is never read.
                    raise body_too_large(None, limit)
            return message

        await self.app(scope, limited_receive, send)


def body_too_large(size: int | None, limit: int) -> InputError:
    shown = f"is {size} bytes" if size is not None else f"passed {limit} bytes while being read"
    return InputError(
        f"request body {shown}, the limit is {limit} (MLSERVE_MAX_BODY_BYTES)",
        code="body_too_large",
        status=413,
        details=[ErrorDetail(["body"], f"at most {limit} bytes")],
    )


async def send_error(send: Any, exc: InputError) -> None:
    body = dumps(error_body_for(exc))
    await send(
        {
            "type": "http.response.start",
            "status": exc.status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
