"""The web page and /docs: static assets from the package (no CDN), and what the page needs."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from lambda_api.dependencies import JSONBytes, RuntimeDep
from mlserve.ui import docs_html, page_csp, static_asset, ui_config, ui_example

router = APIRouter(tags=["page"])


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


@router.get("/", include_in_schema=False)
@router.get("/ui", include_in_schema=False)
async def page(request: Request) -> Response:
    # <base> = the API's root, so the page's relative URLs work under a stage path too.
    return static_response("index.html", root_path=request.scope.get("root_path", ""))


@router.get("/docs", include_in_schema=False)
async def docs(request: Request) -> Response:
    app = request.app
    html = docs_html(request.scope.get("root_path", ""), app.openapi_url or "/openapi.json", f"{app.title} - docs")
    return Response(html, media_type="text/html; charset=utf-8", headers={"referrer-policy": "no-referrer"})


@router.get("/ui/static/{name}", include_in_schema=False)
async def static_file(name: str) -> Response:
    return static_response(name)


@router.get("/ui/config", summary="What the web page needs before anything else: auth mode, upload limit")
async def page_config() -> Response:
    return JSONBytes(ui_config())


@router.get("/ui/example", summary="The live model's logged input example (one row), to prefill the form")
async def page_example(runtime: RuntimeDep) -> Response:
    return JSONBytes(ui_example(runtime.model()))
