"""ServingConfig: the stack's settings, one field per context key (defaults in cdk.json).

Checks of one key live beside the feature they configure (functions, stream, schedules,
trust, image); rules that span keys (prod refuses an open API, SnapStart vs provisioned
concurrency, ...) run once every key is valid, in ``_cross_key_rules``."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Annotated, Any, Literal, cast

from pydantic import Field, model_validator
from pydantic.dataclasses import dataclass

from infra.config.base import MODEL_CONFIG, Check, ConfigError, ContextChecks, context_keys, from_context
from infra.config.checks import boolean, choice, integer, non_empty_str, number, optional_matching
from infra.config.functions import (
    FunctionContext,
    FunctionSettings,
    FunctionStartup,
    function_contexts,
    function_startup,
)
from infra.config.image import PACKAGINGS, Packaging, image_extra_requirements, optional_image_reference
from infra.config.schedules import ScheduleSettings, schedules, timezone
from infra.config.stream import StreamSettings
from infra.config.trust import artifact_locations, optional_secret_arn, role_arns, waf_switch

Architecture = Literal["arm64", "x86_64"]
AuthMode = Literal["api_key", "iam", "none"]
Environment = Literal["dev", "prod"]
BundleDeps = Literal["layer", "function"]

ARCHITECTURES: tuple[Architecture, ...] = ("arm64", "x86_64")
AUTH_MODES: tuple[AuthMode, ...] = ("api_key", "iam", "none")
ENVIRONMENTS: tuple[Environment, ...] = ("dev", "prod")
BUNDLE_DEPS_MODES: tuple[BundleDeps, ...] = ("layer", "function")

# Values CloudWatch Logs accepts for a log group's retention.
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192,
    2557, 2922, 3288, 3653,
)  # fmt: skip

# The MLflow registered-model names the store layout (models/<name>/) can hold safely.
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_PYTHON_RUNTIME = re.compile(r"^python3\.(\d{1,2})$")
_URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?$")
_PACKAGE_GROUP = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def model_name(key: str, raw: Any) -> str:
    name = non_empty_str(key, raw)
    if not _MODEL_NAME.match(name):
        raise ConfigError(
            f"context {key!r} must start with a letter or digit and contain only "
            f"letters, digits, '.', '_' or '-' (max 128), got {raw!r}"
        )
    return name


def python_runtime(key: str, raw: Any) -> str:
    runtime = non_empty_str(key, raw)
    match = _PYTHON_RUNTIME.match(runtime)
    if not match or int(match.group(1)) < 11:
        raise ConfigError(f"context {key!r} must look like python3.N with N >= 11, got {raw!r}")
    return runtime


def python_version_override(key: str, raw: Any) -> str | None:
    if raw in ("", None):
        return None
    text = str(raw).strip()
    if not re.fullmatch(r"3\.\d{1,2}", text):
        raise ConfigError(f"context {key!r} must look like 3.11 (or be empty), got {raw!r}")
    return text


def bundle_deps(key: str, raw: Any) -> BundleDeps:
    if raw not in BUNDLE_DEPS_MODES:
        raise ConfigError(
            f"context {key!r} must be layer (shared Lambda layers, the default) or "
            f"function (deps copied into each function's code, for LocalStack's free edition), got {raw!r}"
        )
    return cast(BundleDeps, raw)


def log_retention(key: str, raw: Any) -> int:
    days = integer(key, raw, 1, 3653)
    if days not in LOG_RETENTION_DAYS:
        raise ConfigError(f"context {key!r} must be one of {list(LOG_RETENTION_DAYS)}, got {raw!r}")
    return days


def reserved_concurrency(key: str, raw: Any) -> int | None:
    """An integer cap, or ``none`` for no reservation. 0 is refused: Lambda would throttle
    every event (the function could never run)."""
    if isinstance(raw, str) and raw.strip().lower() == "none":
        return None
    if isinstance(raw, bool):
        raise ConfigError(f"context {key!r} must be an integer or none, got {raw!r}")
    return integer(key, raw, 1, 1000)


def origins(key: str, raw: Any) -> tuple[str, ...]:
    """``["*"]`` or browser origins (scheme://host[:port], no path); a comma-separated
    string works too (``-c upload_cors_origins=https://a.example,https://b.example``)."""
    if isinstance(raw, str):
        stripped = raw.strip()
        try:
            raw = json.loads(stripped) if stripped.startswith("[") else stripped.split(",")
        except json.JSONDecodeError as error:
            raise ConfigError(f"context {key!r} is not valid JSON: {error}") from None
    if not isinstance(raw, list | tuple) or not raw:
        raise ConfigError(f"context {key!r} must be a non-empty list of origins, got {raw!r}")
    result = tuple(str(origin).strip().rstrip("/") for origin in raw)
    for origin in result:
        if origin != "*" and not _ORIGIN.match(origin):
            raise ConfigError(f"context {key!r}: {origin!r} is not '*' or an origin like https://app.example.com")
    if "*" in result and len(result) > 1:
        raise ConfigError(f"context {key!r}: '*' already allows every origin; list it alone, got {raw!r}")
    return result


def stream_switch(key: str, raw: Any) -> Any:
    """``stream``: false, or (after ``_nest_stream``) the stream_* keys of the context."""
    return raw if isinstance(raw, Mapping) else None


Bool = Check(boolean)


@dataclass(frozen=True, kw_only=True, config=MODEL_CONFIG)
class ServingConfig(ContextChecks):
    model_name: Annotated[str, Check(model_name)]
    registry_alias: Annotated[str, Check(non_empty_str)]
    architecture: Annotated[Architecture, Check(choice, ARCHITECTURES)]
    python_runtime: Annotated[str, Check(python_runtime)]
    # Python X.Y the dependency layer's wheels are built for (None = the runtime's).
    layer_python_override: Annotated[str | None, Check(python_version_override)] = Field(
        validation_alias="layer_python_version"
    )
    bundle_deps: Annotated[BundleDeps, Check(bundle_deps)]
    environment: Annotated[Environment, Check(choice, ENVIRONMENTS)]
    auth: Annotated[AuthMode, Check(choice, AUTH_MODES)]
    refresh_seconds: Annotated[int, Check(integer, 0, 3600)]
    allow_pickle: Annotated[bool, Bool]
    max_rows: Annotated[int, Check(integer, 1, 10_000_000)]
    # Lambda's synchronous payload limit is 6 MB; a larger setting could never apply.
    max_body_bytes: Annotated[int, Check(integer, 1, 6 * 1024 * 1024)]
    throttle_rate_limit: Annotated[float, Check(number, 1, 10_000)]
    throttle_burst_limit: Annotated[int, Check(integer, 1, 5_000)]
    quota_requests_per_day: Annotated[int, Check(integer, 1, 10**9)]
    log_retention_days: Annotated[int, Check(log_retention)]
    batch_reserved_concurrency: Annotated[int | None, Check(reserved_concurrency)]
    # Lambda allows 0-2 retries for asynchronous invocations.
    batch_retry_attempts: Annotated[int, Check(integer, 0, 2)]
    batch_probabilities: Annotated[bool, Bool]
    mlflow_tracking_uri: Annotated[str | None, Check(optional_matching, _URL, "an http(s) URL or empty")]
    sagemaker_model_package_group: Annotated[
        str | None, Check(optional_matching, _PACKAGE_GROUP, "a SageMaker model package group name or empty")
    ]
    # S3's single PUT/POST limit is 5 GB.
    upload_max_bytes: Annotated[int, Check(integer, 1, 5 * 1024**3)]
    upload_cors_origins: Annotated[tuple[str, ...], Check(origins)]
    alarm_email: Annotated[str | None, Check(optional_matching, _EMAIL, "an e-mail address or empty")]
    # S3's largest object is 5 TiB.
    batch_max_bytes: Annotated[int, Check(integer, 1024, 5 * 1024**4)]
    batch_max_record_bytes: Annotated[int, Check(integer, 1024, 256 * 1024 * 1024)]
    batch_max_columns: Annotated[int, Check(integer, 1, 1_000_000)]
    # zlib cannot expand more than ~1032x.
    batch_max_decompression_ratio: Annotated[float, Check(number, 1, 2000)]
    batch_escape_formulas: Annotated[bool, Bool]
    batch_retention_days: Annotated[int, Check(integer, 0, 36500)]
    # None when context 'stream' is false.
    stream: Annotated[StreamSettings | None, Check(stream_switch)]
    schedules: Annotated[tuple[ScheduleSettings, ...], Check(schedules)]
    schedule_timezone: Annotated[str, Check(timezone)]
    # Scheduler's flexible window is 1-1440 minutes; 0 turns it off.
    schedule_flexible_window_minutes: Annotated[int, Check(integer, 0, 1440)]
    schedule_max_files: Annotated[int, Check(integer, 1, 100_000)]
    schedule_stop_margin_seconds: Annotated[int, Check(integer, 0, 600)]
    promoters: Annotated[tuple[str, ...], Check(role_arns)]
    force_promoters: Annotated[tuple[str, ...], Check(role_arns)]
    artifact_locations: Annotated[tuple[str, ...], Check(artifact_locations)]
    mlflow_token_secret_arn: Annotated[str | None, Check(optional_secret_arn)]
    allow_insecure_registry: Annotated[bool, Bool]
    webhook_throttle_rate_limit: Annotated[float, Check(number, 1, 10_000)]
    webhook_throttle_burst_limit: Annotated[int, Check(integer, 1, 5_000)]
    waf: Annotated[Literal["auto"] | bool, Check(waf_switch)]
    # WAF rate-based rules: 10 .. 2e9 requests per 5-minute window per IP.
    waf_rate_limit: Annotated[int, Check(integer, 10, 2_000_000_000)]
    # 1 byte and up, so a deployed test can send a small file through the fan-out.
    fanout_threshold_bytes: Annotated[int, Check(integer, 1, 5 * 1024**4)]
    # >= 8 MiB: every scored part is then a whole multipart part (>= 5 MiB).
    fanout_range_bytes: Annotated[int, Check(integer, 8 * 1024**2, 5 * 1024**3)]
    # Distributed Map runs at most 10,000 child workflows at once.
    fanout_max_concurrency: Annotated[int, Check(integer, 1, 10_000)]
    packaging: Annotated[Packaging, Check(choice, PACKAGINGS)]
    image_extra_requirements: Annotated[tuple[str, ...] | str, Check(image_extra_requirements)]
    image_base: Annotated[str | None, Check(optional_image_reference)]
    image_uri: Annotated[str | None, Check(optional_image_reference)]
    function_context: Annotated[dict[str, FunctionContext], Check(function_contexts)] = Field(
        validation_alias="functions"
    )
    # SnapStart master switch (the per-function snap_start keys apply only while true).
    snap_start: Annotated[bool, Bool]
    provisioned_concurrency: Annotated[int, Check(integer, 0, 10_000)]

    @model_validator(mode="before")
    @classmethod
    def _nest_stream(cls, data: Any) -> Any:
        """The stream_* keys become StreamSettings only while ``stream`` is true."""
        if isinstance(data, Mapping) and "stream" in data and not isinstance(data["stream"], Mapping | None):
            return {**data, "stream": data if boolean("stream", data["stream"]) else None}
        return data

    @model_validator(mode="after")
    def _cross_key_rules(self) -> ServingConfig:
        if self.auth == "none" and self.is_prod:
            raise ConfigError(
                "context 'auth' none leaves the API open and is for local emulators only; "
                "use api_key or iam with environment prod"
            )
        if self.is_prod and self.upload_cors_origins == ("*",):
            raise ConfigError(
                "context 'upload_cors_origins' must name the web page's origins with environment prod "
                "(e.g. https://abc123.execute-api.eu-west-1.amazonaws.com or your custom domain), not '*'"
            )
        if self.is_prod and (self.mlflow_tracking_uri or "").startswith("http://") and not self.allow_insecure_registry:
            raise ConfigError(
                "context 'mlflow_tracking_uri' is http:// in prod: the registry decides what is deployed and "
                "its token would cross the network in clear; use https:// or set context "
                "'allow_insecure_registry' true"
            )
        _ = self.startup  # SnapStart/provisioned/reserved combinations fail at synth, not on access
        return self

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

    @property
    def waf_enabled(self) -> bool:
        """``waf`` auto means on in prod."""
        return self.is_prod if self.waf == "auto" else bool(self.waf)

    @property
    def api_function(self) -> FunctionSettings:
        return self.function_context["api"].settings

    @property
    def batch_function(self) -> FunctionSettings:
        return self.function_context["batch"].settings

    @property
    def promote_function(self) -> FunctionSettings:
        return self.function_context["promote"].settings

    @property
    def webhook_function(self) -> FunctionSettings:
        return self.function_context["webhook"].settings

    @property
    def stream_function(self) -> FunctionSettings:
        return self.function_context["stream"].settings

    @property
    def scheduled_function(self) -> FunctionSettings:
        return self.function_context["scheduled"].settings

    @cached_property
    def startup(self) -> Mapping[str, FunctionStartup]:
        """Keyed by FUNCTION_KINDS; see FunctionStartup."""
        return function_startup(
            self.function_context,
            snap_start=self.snap_start,
            provisioned_concurrency=self.provisioned_concurrency,
            batch_reserved_concurrency=self.batch_reserved_concurrency,
            python_runtime=self.python_runtime,
        )

    @classmethod
    def from_context(cls, get_context: Callable[[str], Any]) -> ServingConfig:
        """Build from ``app.node.try_get_context`` (or any key -> value|None lookup)."""
        return from_context(cls, get_context, SERVING_KEYS)

    @classmethod
    def from_mapping(cls, context: Mapping[str, Any]) -> ServingConfig:
        return cls.from_context(context.get)


# Every context key ServingConfig reads (the stream_* keys through StreamSettings).
SERVING_KEYS: tuple[str, ...] = context_keys(ServingConfig) + context_keys(StreamSettings)
