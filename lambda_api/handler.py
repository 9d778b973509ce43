"""Lambda entry point: API Gateway (REST v1 or HTTP API v2) -> Mangum -> FastAPI."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from mangum import Mangum
from mangum.types import LambdaContext, LambdaEvent

from lambda_api.app import app
from mlserve import snapstart
from mlserve.observability import API_GATEWAY_REQUEST_ID, instrument

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


class ObservedMangum(Mangum):
    """Mangum wrapped in Powertools: JSON logs with the API Gateway request id as the
    correlation id (never the event or body), EMF metrics flushed per invocation with the
    cold start metric, X-Ray when enabled. ``self.app`` stays swappable (tests do)."""

    def __init__(self, asgi: Any, **kwargs: Any) -> None:
        super().__init__(asgi, **kwargs)
        self._observed = instrument(super().__call__, correlation_id_path=API_GATEWAY_REQUEST_ID)

    def __call__(self, event: LambdaEvent, context: LambdaContext) -> dict[str, Any]:
        if context is None:  # called outside Lambda (tools, some tests): no context to log
            return super().__call__(event, context)
        result: dict[str, Any] = self._observed(event, context)
        return result


handler = ObservedMangum(StagePrefix(app), lifespan="off")


def _api_state() -> Any:
    """The FastAPI app's state behind the handler (tests swap ``handler.app``)."""
    asgi: Any = handler.app
    return (asgi.asgi if isinstance(asgi, StagePrefix) else asgi).state


def before_snapshot() -> None:
    """SnapStart: load the live model and score its input example through the /predict
    validation path (no metric is recorded: that would count a request nobody made)."""
    runtime = _api_state().runtime
    try:
        live = runtime.live
    except Exception as exc:  # not configured: the first request reports it, as without SnapStart
        snapstart.log_hook("before_snapshot", f"no runtime: {exc}")
        return
    outcome = snapstart.warm_live_model(live)
    snapstart.log_hook("before_snapshot", outcome)


def after_restore() -> None:
    """SnapStart: fresh AWS clients, fresh randomness, live.json re-read on the first request."""
    state = _api_state()
    state.batch_s3 = None  # the page's presigning client: made again on first use
    built = state.runtime._built
    if built is not None:
        snapstart.restore_live_model(built[0])
    snapstart.reseed_random()
    snapstart.log_hook("after_restore", "clients reset, pointer check forced")


snapstart.register(before_snapshot=before_snapshot, after_restore=after_restore)
