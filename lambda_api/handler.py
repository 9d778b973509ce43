"""Lambda entry point: API Gateway (REST v1 or HTTP API v2) -> Mangum -> FastAPI."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from mangum import Mangum

from lambda_api.app import app

Scope = MutableMapping[str, Any]


class StagePrefix:
    """Tell FastAPI the URL prefix API Gateway put before our routes (the stage, or a
    custom domain's base path), so /docs loads /<stage>/openapi.json and not /openapi.json."""

    def __init__(self, asgi: Any) -> None:
        self.asgi = asgi

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope = {**scope, **_prefix_scope(scope)}
        await self.asgi(scope, receive, send)


def _prefix_scope(scope: Scope) -> Scope:
    event = scope.get("aws.event") or {}
    context = event.get("requestContext") or {}
    path = scope.get("path", "")
    if event.get("version") == "2.0":
        stage = context.get("stage") or "$default"
        prefix = f"/{stage}"
        if stage != "$default" and (path == prefix or path.startswith(prefix + "/")):
            return {"root_path": prefix, "path": path[len(prefix) :] or "/"}
        return {}
    full_path = context.get("path") or ""
    if full_path and full_path != path and full_path.endswith(path):
        return {"root_path": full_path[: len(full_path) - len(path)].rstrip("/")}
    return {}


handler = Mangum(StagePrefix(app), lifespan="off")
