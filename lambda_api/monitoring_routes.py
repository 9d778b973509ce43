"""The "Monitoring" view's API: the latest drift report of the served model (routes and
HTTP mapping only; the report is written by the drift job, ``mlserve.monitoring.job``)."""

from __future__ import annotations

import json
import os
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from mlserve.contract import Env
from mlserve.errors import InputError, StoreError
from mlserve.store import ModelStore, open_store

router = APIRouter(prefix="/monitoring", tags=["monitoring"])

# The report is a static page with inline CSS and SVG: no script, nothing fetched.
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'"


def _monitoring_store(request: Request) -> tuple[ModelStore, str]:
    runtime = request.app.state.runtime
    cached = getattr(request.app.state, "monitoring_store", None)
    if cached is None:
        settings = runtime.settings
        uri = os.environ.get(Env.MONITORING_STORE, "").strip() or settings.store_uri
        cached = (open_store(uri), settings.model_name)
        request.app.state.monitoring_store = cached
    return cached


def _json(content: Any, status: int = 200) -> Response:
    return Response(
        json.dumps(content, default=str).encode(),
        status_code=status,
        media_type="application/json",
        headers={"cache-control": "no-store"},
    )


@router.get("/latest", summary="The latest drift report (JSON) of the served model, or status no_report")
async def latest(request: Request) -> Response:
    from mlserve.monitoring.job import latest_report  # scipy: imported on first use, not at cold start

    store, model = _monitoring_store(request)
    try:
        report = latest_report(store, model)
    except StoreError as exc:
        raise InputError(
            f"cannot read the drift report: {exc.message}", code="monitoring_unavailable", status=503
        ) from None
    if report is None:
        return _json({"status": "no_report", "model": model, "message": "the drift job has not written a report yet"})
    return _json(report)


@router.get("/latest.html", summary="The latest drift report as a self-contained HTML page")
async def latest_html(request: Request) -> Response:
    from mlserve.monitoring.job import drift_prefix, latest_report

    store, model = _monitoring_store(request)
    report = latest_report(store, model)
    html_key = (report or {}).get("html_key")
    if not html_key or not str(html_key).startswith(drift_prefix(model)):
        raise InputError("no HTML drift report yet", code="not_found", status=404)
    try:
        body = store.read_bytes(str(html_key))
    except KeyError:
        raise InputError("no HTML drift report yet", code="not_found", status=404) from None
    return Response(
        body,
        media_type="text/html; charset=utf-8",
        headers={
            "cache-control": "no-store",
            "content-security-policy": REPORT_CSP,
            "x-content-type-options": "nosniff",
            "referrer-policy": "no-referrer",
        },
    )
