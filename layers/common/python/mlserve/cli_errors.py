"""One-line CLI errors: what went wrong and how to fix it, never a traceback.

`mlserve` is the first thing a new user runs; a 40-line MLflow or botocore traceback hides
the one fact they need (which variable to set, which file is missing). `describe()` turns
any exception into that one line; `MLSERVE_DEBUG=1` brings the traceback back.
"""

from __future__ import annotations

import os
from pathlib import Path

from mlserve.errors import MlserveError

DEBUG_VARIABLE = "MLSERVE_DEBUG"
REGISTRY_SCHEMES = ("models:/", "runs:/")


def demo_tracking_uri(cwd: Path | None = None) -> str:
    """The registry `make demo` / `python -m examples.train` writes (.data/mlflow.db at the repo root)."""
    return f"sqlite:///{(cwd or Path.cwd()).resolve() / '.data' / 'mlflow.db'}"


def missing_tracking_uri(what: str) -> MlserveError:
    return MlserveError(
        f"{what} needs an MLflow registry: set MLFLOW_TRACKING_URI (or --tracking-uri), "
        f"e.g. the demo's {demo_tracking_uri()}",
        code="no_tracking_uri",
    )


def require_tracking_uri(model_uri: str, tracking_uri: str | None) -> None:
    """Refuse a registry URI without a registry, before MLflow falls back to creating
    ./mlflow.db in the working directory and failing with "Registered Model ... not found"."""
    if model_uri.startswith(REGISTRY_SCHEMES) and not tracking_uri:
        raise missing_tracking_uri(model_uri)


def debug_enabled() -> bool:
    return os.environ.get(DEBUG_VARIABLE, "").strip().lower() in ("1", "true", "yes")


def _first_line(text: str) -> str:
    for line in text.strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


def describe(exc: BaseException) -> str:
    """One line for an exception the command did not turn into an MlserveError itself."""
    kind = type(exc).__name__
    module = type(exc).__module__ or ""
    message = _first_line(str(exc))
    if module.startswith("mlflow"):
        hint = ""
        if "RESOURCE_DOES_NOT_EXIST" in str(getattr(exc, "error_code", "")) or "not found" in message:
            hint = " (check the name/alias and that MLFLOW_TRACKING_URI points at the registry that has it)"
        return f"MLflow: {message}{hint}"
    if kind in ("NoCredentialsError", "PartialCredentialsError"):
        return f"{message}: configure AWS credentials (aws configure, AWS_PROFILE or AWS_ACCESS_KEY_ID/...)"
    if kind == "NoRegionError":
        return f"{message}: set AWS_REGION (or --region)"
    if kind == "EndpointConnectionError":
        return f"{message}: is the endpoint (AWS_ENDPOINT_URL / --endpoint-url) reachable?"
    if kind == "ClientError":
        return f"AWS: {message}"
    if isinstance(exc, FileNotFoundError) and exc.filename:
        return f"no such file: {exc.filename}"
    if isinstance(exc, PermissionError) and exc.filename:
        return f"permission denied: {exc.filename}"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}" + (f": {exc.filename}" if exc.filename else "")
    return f"{kind}: {message}" if message else kind
