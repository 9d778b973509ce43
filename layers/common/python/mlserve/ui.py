"""The web page for business users: static files shipped inside the package, and the
small bits of configuration the page reads before it builds its form."""

from __future__ import annotations

import html
import os
import re
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import urlparse

from mlserve.config import env_number
from mlserve.contract import Env
from mlserve.errors import InputError, MlserveError
from mlserve.mlmodel import read_input_example
from mlserve.scoring import LoadedModel
from mlserve.uploads import DEFAULT_UPLOAD_MAX_BYTES, auth_mode, s3_endpoint, upload_origin

BASE_PLACEHOLDER = b"__MLSERVE_ROOT__"
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


@cache
def _assets() -> dict[str, bytes]:
    """Every file of mlserve/static, read once per process (they are a few kB)."""
    root = resources.files("mlserve") / "static"
    return {
        entry.name: entry.read_bytes()
        for entry in root.iterdir()
        if entry.is_file() and os.path.splitext(entry.name)[1] in MEDIA_TYPES
    }


def static_asset(name: str, root_path: str = "") -> tuple[bytes, str]:
    """(content, media type) of a shipped file; only names that exist, no paths. The page's
    `<base href>` placeholder becomes the API's root path (e.g. an API Gateway stage)."""
    content = _assets().get(name)
    if content is None:
        raise InputError(f"no static file {name!r}", code="not_found", status=404)
    if name == "index.html":
        content = content.replace(BASE_PLACEHOLDER, html.escape(root_path.rstrip("/"), quote=True).encode())
    return content, MEDIA_TYPES[os.path.splitext(name)[1]]


def page_csp() -> str:
    """Everything comes from the API itself; only uploads may leave it, and only to the
    upload bucket's own endpoint (MLSERVE_UPLOAD_ORIGIN, set by the stack; or the emulator's
    endpoint when one is configured) - never to any https: host."""
    connect = "'self'"
    origin = upload_origin()
    if origin and re.fullmatch(r"https://[A-Za-z0-9.-]+(:\d+)?", origin):
        connect += f" {origin}"
    endpoint = s3_endpoint()
    if endpoint:
        parsed = urlparse(endpoint)
        if parsed.scheme in ("http", "https") and parsed.netloc and re.fullmatch(r"[A-Za-z0-9.:\[\]-]+", parsed.netloc):
            connect += f" {parsed.scheme}://{parsed.netloc} {parsed.scheme}://*.{parsed.netloc}"
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src {connect}; form-action 'self'; frame-ancestors 'none'; base-uri 'self'"
    )


SWAGGER_JS = "swagger-ui-bundle.js"
SWAGGER_CSS = "swagger-ui.css"


def docs_html(root_path: str, openapi_url: str, title: str) -> bytes:
    """FastAPI's Swagger UI page with its assets served from this package (vendored
    swagger-ui-dist, see static/swagger-ui-dist.VERSION.txt) instead of a CDN, under the
    API's root path (an API Gateway stage)."""
    from fastapi.openapi.docs import get_swagger_ui_html

    base = root_path.rstrip("/")
    page = get_swagger_ui_html(
        openapi_url=base + openapi_url,
        title=title,
        swagger_js_url=f"{base}/ui/static/{SWAGGER_JS}",
        swagger_css_url=f"{base}/ui/static/{SWAGGER_CSS}",
        swagger_favicon_url="data:,",
    )
    return bytes(page.body)


def ui_config() -> dict[str, Any]:
    return {
        "auth": auth_mode(),
        "upload_max_bytes": int(env_number(Env.UPLOAD_MAX_BYTES, DEFAULT_UPLOAD_MAX_BYTES, minimum=1)),
    }


def ui_example(model: LoadedModel) -> dict[str, Any]:
    """The first row of the model's logged input example, or none."""
    try:
        rows = read_input_example(model.model_dir, model.spec)
    except MlserveError:
        rows = []
    return {"row": rows[0] if rows else None, "model": model.identity.to_dict()}
