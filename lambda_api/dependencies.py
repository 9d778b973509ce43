"""What every router shares: the runtime (settings + live model, built on first use), the
JSON response class, and the body reader that enforces the media type and size limit.

Routers get the runtime with ``Depends(get_runtime)`` (FastAPI's "bigger applications"
layout); the app stores one `Runtime` in ``app.state.runtime``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from mlserve.config import Settings
from mlserve.errors import MlserveError, ModelUnavailableError
from mlserve.http import check_body_size, dumps, require_media_type
from mlserve.live import LiveModel, build_live_model
from mlserve.scoring import LoadedModel
from mlserve.uploads import UploadSettings, s3_client

T = TypeVar("T")

RuntimeFactory = Callable[[], tuple[LiveModel, Settings]]


class JSONBytes(JSONResponse):
    """orjson-encoded JSON (numpy values native). A JSONResponse, so OpenAPI documents the
    routes' bodies as JSON and not as a string."""

    def render(self, content: Any) -> bytes:
        return dumps(content)


def live_from_env() -> tuple[LiveModel, Settings]:
    settings = Settings.from_env()
    return build_live_model(settings), settings


def live_from(settings: Settings) -> RuntimeFactory:
    """A runtime factory for settings given in code (`mlserve serve`, tests)."""
    return lambda: (build_live_model(settings), settings)


class Runtime:
    """Built on first use, so importing the app (cold start) does no I/O."""

    def __init__(self, factory: RuntimeFactory) -> None:
        self._factory = factory
        self._built: tuple[LiveModel, Settings] | None = None
        self._uploads: tuple[Settings, UploadSettings] | None = None

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

    @property
    def uploads(self) -> UploadSettings:
        """Where browser uploads go (read once per settings object)."""
        settings = self.settings
        if self._uploads is None or self._uploads[0] is not settings:
            self._uploads = (settings, UploadSettings.from_env(settings))
        return self._uploads[1]

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


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_uploads(runtime: RuntimeDep) -> UploadSettings:
    return runtime.uploads


UploadsDep = Annotated[UploadSettings, Depends(get_uploads)]


def get_batch_s3(request: Request, uploads: UploadsDep) -> Any:
    """The presigning S3 client (deployed mode only): one per app, made on first use; the
    SnapStart restore hook clears it so a restored snapshot makes a fresh one."""
    if uploads.local:
        return None
    if getattr(request.app.state, "batch_s3", None) is None:
        request.app.state.batch_s3 = s3_client()
    return request.app.state.batch_s3


BatchS3Dep = Annotated[Any, Depends(get_batch_s3)]


async def read_body(request: Request, runtime: Runtime, accepted: tuple[str, ...]) -> tuple[bytes, str]:
    kind = require_media_type(request.headers.get("content-type"), accepted)
    declared = request.headers.get("content-length")
    limit = runtime.settings.max_body_bytes
    if declared and declared.isdigit():
        check_body_size(int(declared), limit)
    body = await request.body()
    check_body_size(len(body), limit)
    return body, kind
