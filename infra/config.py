"""Typed deployment settings built from CDK context (``cdk.json`` plus ``-c key=value``).

Everything is validated at synth time, without AWS calls, so a typo fails with a message
that names the context key instead of a CloudFormation error half-way through a deploy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, cast

Architecture = Literal["arm64", "x86_64"]
AuthMode = Literal["api_key", "iam", "none"]
Environment = Literal["dev", "prod"]
BundleDeps = Literal["layer", "function"]

ARCHITECTURES: tuple[Architecture, ...] = ("arm64", "x86_64")
AUTH_MODES: tuple[AuthMode, ...] = ("api_key", "iam", "none")
ENVIRONMENTS: tuple[Environment, ...] = ("dev", "prod")
BUNDLE_DEPS_MODES: tuple[BundleDeps, ...] = ("layer", "function")
Packaging = Literal["zip", "image"]
PACKAGINGS: tuple[Packaging, ...] = ("zip", "image")
FUNCTION_KINDS = ("api", "batch", "promote", "webhook")

# Values CloudWatch Logs accepts for a log group's retention.
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192,
    2557, 2922, 3288, 3653,
)  # fmt: skip

# The MLflow registered-model names the store layout (models/<name>/) can hold safely.
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_PYTHON_RUNTIME = re.compile(r"^python3\.(\d{1,2})$")

DEFAULTS: dict[str, Any] = {
    "model_name": "demo-classifier",
    "registry_alias": "champion",
    "architecture": "arm64",
    "python_runtime": "python3.14",
    # Python X.Y the dependency layer's wheels are built for ("" = the runtime's). Only for
    # emulators that run functions with their own interpreter (MiniStack): the declared
    # runtime stays python3.14, but the wheels must load in the emulator's Python.
    "layer_python_version": "",
    # Where the third-party deps and the mlserve package go: "layer" (two shared Lambda
    # layers; AWS, MiniStack, LocalStack Pro) or "function" (copied into every function's
    # code asset, no layers; LocalStack's free edition, where layers are a paid feature).
    "bundle_deps": "layer",
    "environment": "dev",
    "auth": "api_key",
    "refresh_seconds": 15,
    "allow_pickle": False,
    "max_rows": 10000,
    # Below Lambda's 6 MB synchronous payload limit, which also counts the event's headers
    # and JSON escaping: an oversized body gets the app's clear 413, not a gateway 502.
    "max_body_bytes": 5 * 1024 * 1024,
    "throttle_rate_limit": 50,
    "throttle_burst_limit": 100,
    "quota_requests_per_day": 100000,
    "log_retention_days": 30,
    # Batch scoring (S3-triggered): parallel scoring runs at most (an integer, or "none" to
    # use the account's unreserved pool), Lambda's async retries (0-2) before an event goes
    # to the dead-letter queue, and whether results carry class probabilities.
    "batch_reserved_concurrency": 2,
    "batch_retry_attempts": 2,
    "batch_probabilities": False,
    # Promotion: the MLflow tracking server the redeploy asks which version the alias names
    # and where its artifacts are ("" = no registry: events must carry an s3:// artifact_uri,
    # as SageMaker approvals and `mlserve promote --artifact-uri` do), and an optional
    # SageMaker model package group whose approvals redeploy ("" = no SageMaker rule).
    "mlflow_tracking_uri": "",
    "sagemaker_model_package_group": "",
    # Web page uploads: largest CSV a browser may upload (in the presigned POST policy) and
    # the origins allowed by the batch bucket's CORS rule (POST upload, GET download).
    "upload_max_bytes": 50 * 1024 * 1024,
    "upload_cors_origins": ["*"],
    # Monitoring: the e-mail address subscribed to the alarm topic ("" = no subscription).
    "alarm_email": "",
    # How the API, batch and redeploy functions ship: "zip" (code + layers) or "image" (one
    # container image, 10 GB limit, for models whose libraries exceed the zip budget, e.g.
    # LightGBM/XGBoost/CatBoost; docs/image.md). The webhook always stays zip.
    "packaging": "zip",
    # image only: the model's own requirements (pinned "pkg==version" strings, or the path of
    # a requirements.txt such as the one MLflow logged beside MLmodel), filtered through the
    # allow-list in infra/image.py; "" = the serving set only.
    "image_extra_requirements": "",
    # image only: base image ("" = the official Lambda Python base for python_runtime and
    # architecture) and an already-built image URI to deploy instead of building one ("").
    "image_base": "",
    "image_uri": "",
    "functions": {
        "api": {"memory_mb": 2048, "timeout_seconds": 29},
        "batch": {"memory_mb": 3008, "timeout_seconds": 900},
        "promote": {"memory_mb": 2048, "timeout_seconds": 300},
        "webhook": {"memory_mb": 256, "timeout_seconds": 10},
    },
}


class ConfigError(ValueError):
    """A context value is missing or invalid; the message names the key."""


@dataclass(frozen=True)
class FunctionSettings:
    memory_mb: int
    timeout_seconds: int


@dataclass(frozen=True)
class ServingConfig:
    model_name: str
    registry_alias: str
    architecture: Architecture
    python_runtime: str
    layer_python_override: str | None
    bundle_deps: BundleDeps
    environment: Environment
    auth: AuthMode
    refresh_seconds: int
    allow_pickle: bool
    max_rows: int
    max_body_bytes: int
    throttle_rate_limit: float
    throttle_burst_limit: int
    quota_requests_per_day: int
    log_retention_days: int
    batch_reserved_concurrency: int | None
    batch_retry_attempts: int
    batch_probabilities: bool
    mlflow_tracking_uri: str | None
    sagemaker_model_package_group: str | None
    upload_max_bytes: int
    upload_cors_origins: tuple[str, ...]
    alarm_email: str | None
    api_function: FunctionSettings
    batch_function: FunctionSettings
    promote_function: FunctionSettings
    webhook_function: FunctionSettings
    packaging: Packaging = "zip"
    image_extra_requirements: tuple[str, ...] | str = ()
    image_base: str | None = None
    image_uri: str | None = None

    @property
    def python_version(self) -> str:
        """``python3.14`` -> ``3.14`` (what pip's --python-version wants)."""
        return self.python_runtime.removeprefix("python")

    @property
    def layer_python_version(self) -> str:
        """The Python X.Y the dependency layer is built for: the runtime's unless overridden."""
        return self.layer_python_override or self.python_version

    @property
    def is_prod(self) -> bool:
        return self.environment == "prod"

    @classmethod
    def from_context(cls, get_context: Callable[[str], Any]) -> ServingConfig:
        """Build from ``app.node.try_get_context`` (or any key -> value|None lookup)."""

        def value(key: str) -> Any:
            found = get_context(key)
            return DEFAULTS[key] if found is None else found

        functions = _merge_functions(value("functions"))
        environment = _choice("environment", value("environment"), ENVIRONMENTS)
        auth = _choice("auth", value("auth"), AUTH_MODES)
        if auth == "none" and environment == "prod":
            raise ConfigError(
                "context 'auth' none leaves the API open and is for local emulators only; "
                "use api_key or iam with environment prod"
            )
        return cls(
            model_name=_model_name(value("model_name")),
            registry_alias=_non_empty_str("registry_alias", value("registry_alias")),
            architecture=_choice("architecture", value("architecture"), ARCHITECTURES),
            python_runtime=_python_runtime(value("python_runtime")),
            layer_python_override=_layer_python_version(value("layer_python_version")),
            bundle_deps=_bundle_deps(value("bundle_deps")),
            environment=environment,
            auth=auth,
            refresh_seconds=_int("refresh_seconds", value("refresh_seconds"), 0, 3600),
            allow_pickle=_bool("allow_pickle", value("allow_pickle")),
            max_rows=_int("max_rows", value("max_rows"), 1, 10_000_000),
            # Lambda's synchronous payload limit is 6 MB; a larger setting could never apply.
            max_body_bytes=_int("max_body_bytes", value("max_body_bytes"), 1, 6 * 1024 * 1024),
            throttle_rate_limit=_number("throttle_rate_limit", value("throttle_rate_limit"), 1, 10_000),
            throttle_burst_limit=_int("throttle_burst_limit", value("throttle_burst_limit"), 1, 5_000),
            quota_requests_per_day=_int("quota_requests_per_day", value("quota_requests_per_day"), 1, 10**9),
            log_retention_days=_log_retention(value("log_retention_days")),
            batch_reserved_concurrency=_reserved_concurrency(value("batch_reserved_concurrency")),
            # Lambda allows 0-2 retries for asynchronous invocations.
            batch_retry_attempts=_int("batch_retry_attempts", value("batch_retry_attempts"), 0, 2),
            batch_probabilities=_bool("batch_probabilities", value("batch_probabilities")),
            mlflow_tracking_uri=_optional_url("mlflow_tracking_uri", value("mlflow_tracking_uri")),
            sagemaker_model_package_group=_optional_package_group(value("sagemaker_model_package_group")),
            # S3's single PUT/POST limit is 5 GB.
            upload_max_bytes=_int("upload_max_bytes", value("upload_max_bytes"), 1, 5 * 1024**3),
            upload_cors_origins=_origins(value("upload_cors_origins")),
            alarm_email=_optional_email(value("alarm_email")),
            api_function=functions["api"],
            batch_function=functions["batch"],
            promote_function=functions["promote"],
            webhook_function=functions["webhook"],
            packaging=_choice("packaging", value("packaging"), PACKAGINGS),
            image_extra_requirements=_image_extra_requirements(value("image_extra_requirements")),
            image_base=_optional_image_reference("image_base", value("image_base")),
            image_uri=_optional_image_reference("image_uri", value("image_uri")),
        )

    @classmethod
    def from_mapping(cls, context: Mapping[str, Any]) -> ServingConfig:
        return cls.from_context(context.get)


def _parse_cli_json(key: str, raw: Any) -> Any:
    """``-c functions='{...}'`` arrives as a string; cdk.json values arrive typed."""
    if isinstance(raw, str) and raw.strip().startswith("{"):
        try:
            return json.loads(raw)
        except json.JSONDecodeError as error:
            raise ConfigError(f"context {key!r} is not valid JSON: {error}") from None
    return raw


def _merge_functions(raw: Any) -> dict[str, FunctionSettings]:
    raw = _parse_cli_json("functions", raw)
    if not isinstance(raw, Mapping):
        raise ConfigError(f"context 'functions' must be an object, got {raw!r}")
    unknown = sorted(set(raw) - set(FUNCTION_KINDS))
    if unknown:
        raise ConfigError(f"context 'functions' has unknown function(s) {unknown}; known: {list(FUNCTION_KINDS)}")
    result: dict[str, FunctionSettings] = {}
    for kind in FUNCTION_KINDS:
        defaults = DEFAULTS["functions"][kind]
        given = raw.get(kind) or {}
        if not isinstance(given, Mapping):
            raise ConfigError(f"context 'functions.{kind}' must be an object, got {given!r}")
        unknown_keys = sorted(set(given) - set(defaults))
        if unknown_keys:
            raise ConfigError(
                f"context 'functions.{kind}' has unknown key(s) {unknown_keys}; known: {sorted(defaults)}"
            )
        merged = {**defaults, **given}
        result[kind] = FunctionSettings(
            # Lambda's own limits: 128 MB..10240 MB memory, 1..900 s timeout.
            memory_mb=_int(f"functions.{kind}.memory_mb", merged["memory_mb"], 128, 10240),
            timeout_seconds=_int(f"functions.{kind}.timeout_seconds", merged["timeout_seconds"], 1, 900),
        )
    # API Gateway's integration timeout is 29 s: a longer timeout of a function behind the
    # API only hides a 504 the client has already received.
    for kind in ("api", "webhook"):
        if result[kind].timeout_seconds > 29:
            raise ConfigError(
                f"context 'functions.{kind}.timeout_seconds' must be <= 29 (API Gateway's "
                f"integration timeout), got {result[kind].timeout_seconds}"
            )
    return result


T = TypeVar("T", bound=str)


def _choice(key: str, raw: Any, allowed: tuple[T, ...]) -> T:
    if raw not in allowed:
        options = " or ".join([", ".join(allowed[:-1]), allowed[-1]] if len(allowed) > 2 else allowed)
        raise ConfigError(f"context {key!r} must be {options}, got {raw!r}")
    return cast(T, raw)


def _non_empty_str(key: str, raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigError(f"context {key!r} must be a non-empty string, got {raw!r}")
    return raw.strip()


def _model_name(raw: Any) -> str:
    name = _non_empty_str("model_name", raw)
    if not _MODEL_NAME.match(name):
        raise ConfigError(
            "context 'model_name' must start with a letter or digit and contain only "
            f"letters, digits, '.', '_' or '-' (max 128), got {raw!r}"
        )
    return name


def _python_runtime(raw: Any) -> str:
    runtime = _non_empty_str("python_runtime", raw)
    match = _PYTHON_RUNTIME.match(runtime)
    if not match or int(match.group(1)) < 11:
        raise ConfigError(f"context 'python_runtime' must look like python3.N with N >= 11, got {raw!r}")
    return runtime


def _bool(key: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in {"true", "false"}:
        return raw.strip().lower() == "true"
    raise ConfigError(f"context {key!r} must be true or false, got {raw!r}")


def _number(key: str, raw: Any, minimum: float, maximum: float) -> float:
    if isinstance(raw, bool):
        raise ConfigError(f"context {key!r} must be a number, got {raw!r}")
    try:
        number = float(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"context {key!r} must be a number, got {raw!r}") from None
    if not minimum <= number <= maximum:
        raise ConfigError(f"context {key!r} must be between {minimum} and {maximum}, got {raw!r}")
    return number


def _int(key: str, raw: Any, minimum: int, maximum: int) -> int:
    if isinstance(raw, bool):
        raise ConfigError(f"context {key!r} must be an integer, got {raw!r}")
    try:
        number = int(raw) if not isinstance(raw, float) or raw.is_integer() else None
    except (TypeError, ValueError):
        number = None
    if number is None:
        raise ConfigError(f"context {key!r} must be an integer, got {raw!r}")
    if not minimum <= number <= maximum:
        raise ConfigError(f"context {key!r} must be between {minimum} and {maximum}, got {raw!r}")
    return number


def _log_retention(raw: Any) -> int:
    days = _int("log_retention_days", raw, 1, 3653)
    if days not in LOG_RETENTION_DAYS:
        raise ConfigError(f"context 'log_retention_days' must be one of {list(LOG_RETENTION_DAYS)}, got {raw!r}")
    return days


def _reserved_concurrency(raw: Any) -> int | None:
    """An integer cap, or ``none`` for no reservation. 0 is refused: Lambda would throttle
    every event (the function could never run)."""
    key = "batch_reserved_concurrency"
    if isinstance(raw, str) and raw.strip().lower() == "none":
        return None
    if isinstance(raw, bool):
        raise ConfigError(f"context {key!r} must be an integer or none, got {raw!r}")
    return _int(key, raw, 1, 1000)


_URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?$")
_PACKAGE_GROUP = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _optional_str(key: str, raw: Any) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise ConfigError(f"context {key!r} must be a string, got {raw!r}")
    return raw.strip() or None


def _optional_url(key: str, raw: Any) -> str | None:
    url = _optional_str(key, raw)
    if url is not None and not _URL.match(url):
        raise ConfigError(f"context {key!r} must be an http(s) URL or empty, got {raw!r}")
    return url


def _optional_package_group(raw: Any) -> str | None:
    key = "sagemaker_model_package_group"
    name = _optional_str(key, raw)
    if name is not None and not _PACKAGE_GROUP.match(name):
        raise ConfigError(f"context {key!r} must be a SageMaker model package group name or empty, got {raw!r}")
    return name


def _optional_email(raw: Any) -> str | None:
    email = _optional_str("alarm_email", raw)
    if email is not None and not _EMAIL.match(email):
        raise ConfigError(f"context 'alarm_email' must be an e-mail address or empty, got {raw!r}")
    return email


def _origins(raw: Any) -> tuple[str, ...]:
    """``["*"]`` or browser origins (scheme://host[:port], no path); a comma-separated
    string works too (``-c upload_cors_origins=https://a.example,https://b.example``)."""
    key = "upload_cors_origins"
    if isinstance(raw, str):
        stripped = raw.strip()
        try:
            raw = json.loads(stripped) if stripped.startswith("[") else stripped.split(",")
        except json.JSONDecodeError as error:
            raise ConfigError(f"context {key!r} is not valid JSON: {error}") from None
    if not isinstance(raw, list | tuple) or not raw:
        raise ConfigError(f"context {key!r} must be a non-empty list of origins, got {raw!r}")
    origins = tuple(str(origin).strip().rstrip("/") for origin in raw)
    for origin in origins:
        if origin != "*" and not _ORIGIN.match(origin):
            raise ConfigError(f"context {key!r}: {origin!r} is not '*' or an origin like https://app.example.com")
    if "*" in origins and len(origins) > 1:
        raise ConfigError(f"context {key!r}: '*' already allows every origin; list it alone, got {raw!r}")
    return origins


def _layer_python_version(raw: Any) -> str | None:
    if raw in ("", None):
        return None
    text = str(raw).strip()
    if not re.fullmatch(r"3\.\d{1,2}", text):
        raise ConfigError(f"context 'layer_python_version' must look like 3.11 (or be empty), got {raw!r}")
    return text


def _bundle_deps(raw: Any) -> BundleDeps:
    if raw not in BUNDLE_DEPS_MODES:
        raise ConfigError(
            "context 'bundle_deps' must be layer (shared Lambda layers, the default) or "
            f"function (deps copied into each function's code, for LocalStack's free edition), got {raw!r}"
        )
    return cast(BundleDeps, raw)


_IMAGE_REFERENCE = re.compile(r"^[a-z0-9][a-z0-9._/:@-]{0,254}$")


def _optional_image_reference(key: str, raw: Any) -> str | None:
    reference = _optional_str(key, raw)
    if reference is not None and not _IMAGE_REFERENCE.match(reference):
        raise ConfigError(f"context {key!r} must be a container image reference (or empty), got {raw!r}")
    return reference


def _image_extra_requirements(raw: Any) -> tuple[str, ...] | str:
    """A list of requirement strings (or one comma-separated string), or the path of a
    requirements file (a string ending in .txt). Content is checked in infra/image.py."""
    key = "image_extra_requirements"
    if raw in ("", None, []):
        return ()
    if isinstance(raw, str):
        text = raw.strip()
        if text.startswith("["):
            try:
                raw = json.loads(text)
            except json.JSONDecodeError as error:
                raise ConfigError(f"context {key!r} is not valid JSON: {error}") from None
        elif text.endswith(".txt"):
            return text
        else:
            raw = [part for part in text.split(",") if part.strip()]
    if not isinstance(raw, list | tuple) or not all(isinstance(item, str) for item in raw):
        raise ConfigError(f"context {key!r} must be a list of requirements or a requirements.txt path, got {raw!r}")
    return tuple(item.strip() for item in raw)
