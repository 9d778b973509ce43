"""Typed deployment settings built from CDK context (``cdk.json`` plus ``-c key=value``).

Everything is validated at synth time, without AWS calls, so a typo fails with a message
that names the context key instead of a CloudFormation error half-way through a deploy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, cast

Architecture = Literal["arm64", "x86_64"]
AuthMode = Literal["api_key", "iam", "none"]
Environment = Literal["dev", "prod"]
BundleDeps = Literal["layer", "function"]

ARCHITECTURES: tuple[Architecture, ...] = ("arm64", "x86_64")
AUTH_MODES: tuple[AuthMode, ...] = ("api_key", "iam", "none")
ENVIRONMENTS: tuple[Environment, ...] = ("dev", "prod")
BUNDLE_DEPS_MODES: tuple[BundleDeps, ...] = ("layer", "function")
FUNCTION_KINDS = ("api", "batch", "promote", "webhook", "stream", "scheduled")
Packaging = Literal["zip", "image"]
PACKAGINGS: tuple[Packaging, ...] = ("zip", "image")

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
    # Big files (docs/batch.md "Fan-out"): plain CSVs larger than fanout_threshold_bytes are
    # split into record-aligned ranges of about fanout_range_bytes, scored by a Step Functions
    # Distributed Map with at most fanout_max_concurrency range functions at once.
    "fanout_threshold_bytes": 256 * 1024 * 1024,
    "fanout_range_bytes": 64 * 1024 * 1024,
    "fanout_max_concurrency": 10,
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
    # Batch input bounds (issue 11): a file past one ends with a `failed` report naming the
    # key. Decompressed bytes, bytes of one CSV record, header columns, and the gzip
    # expansion ratio (checked past 64 MiB decompressed; a higher ratio is a gzip bomb).
    "batch_max_bytes": 10 * 1024**3,
    "batch_max_record_bytes": 1024 * 1024,
    "batch_max_columns": 10_000,
    "batch_max_decompression_ratio": 200,
    # Opt-in: prefix passthrough cells starting with = + - @ with ' (CSV formula injection).
    "batch_escape_formulas": False,
    # Days incoming/ and results/ objects live in the batch bucket (0 = keep forever).
    "batch_retention_days": 30,
    # Streaming (off by default): a Kinesis input stream, a Lambda event source mapping
    # (batch size, batching window, ReportBatchItemFailures, bisect on error, on-failure SQS
    # destination, max record age, retries) and the predictions out to a second Kinesis
    # stream or a Firehose delivery stream into the batch bucket (stream_output).
    "stream": False,
    "stream_output": "kinesis",
    "stream_shards": 1,
    "stream_retention_hours": 24,
    "stream_batch_size": 100,
    "stream_batching_window_seconds": 1,
    "stream_bisect_on_error": True,
    "stream_max_record_age_seconds": 3600,
    "stream_retry_attempts": 3,
    "stream_parallelization_factor": 1,
    # Scheduled batch: EventBridge Scheduler schedules [{name, cron, input_prefix}] that
    # score every CSV under input_prefix with no results for the live version; their time
    # zone, flexible window (0 = off) and the bounds of one run.
    "schedules": [],
    "schedule_timezone": "UTC",
    "schedule_flexible_window_minutes": 0,
    "schedule_max_files": 100,
    "schedule_stop_margin_seconds": 60,
    # Promotion trust (docs/security.md): role ARNs of operators who may put ModelPromoted on
    # the bus (besides the webhook and redeploy roles), role ARNs who may put
    # ModelPromotionForced (force: accept a breaking signature), and URI prefixes artifacts
    # may come from besides the registry's own and the model bucket (s3://bucket/prefix/).
    "promoters": [],
    "force_promoters": [],
    "artifact_locations": [],
    # The registry token from Secrets Manager ("" = none; never a plaintext env var), and
    # whether an http:// registry is acceptable in prod (it is refused unless true).
    "mlflow_token_secret_arn": "",
    "allow_insecure_registry": False,
    # API edge: the webhook route's own throttle (so a flood of bad deliveries cannot use
    # up the API's), and an AWS WAF web ACL with a per-IP rate rule ("auto" = on in prod).
    "webhook_throttle_rate_limit": 5,
    "webhook_throttle_burst_limit": 10,
    "waf": "auto",
    "waf_rate_limit": 1000,
    # Per function: memory, timeout, reserved concurrency (null = the account's unreserved
    # pool; for batch, null falls back to batch_reserved_concurrency), SnapStart (on
    # published versions, behind the `live` alias) and /tmp size (<= 512 MB with SnapStart).
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
        "api": {
            "memory_mb": 2048,
            "timeout_seconds": 29,
            "reserved_concurrency": None,
            "snap_start": True,
            "ephemeral_storage_mb": 512,
        },
        "batch": {
            "memory_mb": 3008,
            "timeout_seconds": 900,
            "reserved_concurrency": None,
            "snap_start": True,
            "ephemeral_storage_mb": 512,
        },
        "promote": {
            "memory_mb": 2048,
            "timeout_seconds": 300,
            "reserved_concurrency": None,
            "snap_start": True,
            "ephemeral_storage_mb": 512,
        },
        "webhook": {
            "memory_mb": 256,
            "timeout_seconds": 10,
            "reserved_concurrency": None,
            "snap_start": False,
            "ephemeral_storage_mb": 512,
        },
        # The stream consumer (event source mapping) and scheduled batch (EventBridge Scheduler)
        # invoke the function unqualified: no published version, so no SnapStart.
        "stream": {
            "memory_mb": 2048,
            "timeout_seconds": 60,
            "reserved_concurrency": None,
            "snap_start": False,
            "ephemeral_storage_mb": 512,
        },
        "scheduled": {
            "memory_mb": 3008,
            "timeout_seconds": 900,
            "reserved_concurrency": None,
            "snap_start": False,
            "ephemeral_storage_mb": 512,
        },
    },
    # SnapStart master switch (the per-function `snap_start` keys apply only while this is
    # true): false for emulators without SnapStart. The API's alternative is provisioned
    # concurrency on its `live` alias; the two are exclusive (refused at synth).
    "snap_start": True,
    "provisioned_concurrency": 0,
}


class ConfigError(ValueError):
    """A context value is missing or invalid; the message names the key."""


@dataclass(frozen=True)
class FunctionSettings:
    memory_mb: int
    timeout_seconds: int


StreamOutput = Literal["kinesis", "firehose"]
STREAM_OUTPUTS: tuple[StreamOutput, ...] = ("kinesis", "firehose")


@dataclass(frozen=True)
class ScheduleSettings:
    """One scheduled batch: ``cron`` is a Scheduler expression (``cron(...)``/``rate(...)``)."""

    name: str
    expression: str
    input_prefix: str


@dataclass(frozen=True)
class StreamSettings:
    output: StreamOutput
    shards: int
    retention_hours: int
    batch_size: int
    batching_window_seconds: int
    bisect_on_error: bool
    max_record_age_seconds: int
    retry_attempts: int
    parallelization_factor: int


# Functions whose triggers invoke the `live` alias, so SnapStart (published versions only)
# can apply; the webhook is small (no numpy), starts fast and is invoked unqualified.
SNAP_START_KINDS = ("api", "batch", "promote")
# Lambda refuses SnapStart with more than 512 MB of ephemeral storage.
SNAP_START_MAX_EPHEMERAL_MB = 512


@dataclass(frozen=True)
class FunctionStartup:
    """How a function starts and scales: reserved concurrency (None = unreserved pool),
    SnapStart on published versions, provisioned concurrency on the `live` alias, /tmp size."""

    reserved_concurrency: int | None = None
    snap_start: bool = False
    provisioned_concurrency: int = 0
    ephemeral_storage_mb: int = 512


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
    batch_max_bytes: int = DEFAULTS["batch_max_bytes"]
    batch_max_record_bytes: int = DEFAULTS["batch_max_record_bytes"]
    batch_max_columns: int = DEFAULTS["batch_max_columns"]
    batch_max_decompression_ratio: float = DEFAULTS["batch_max_decompression_ratio"]
    batch_escape_formulas: bool = DEFAULTS["batch_escape_formulas"]
    batch_retention_days: int = DEFAULTS["batch_retention_days"]
    # None when context 'stream' is false.
    stream: StreamSettings | None = None
    stream_function: FunctionSettings = FunctionSettings(2048, 60)
    schedules: tuple[ScheduleSettings, ...] = ()
    schedule_timezone: str = "UTC"
    schedule_flexible_window_minutes: int = 0
    schedule_max_files: int = 100
    schedule_stop_margin_seconds: int = 60
    scheduled_function: FunctionSettings = FunctionSettings(3008, 900)
    # Keyed by FUNCTION_KINDS; see FunctionStartup. Defaults keep older callers working.
    startup: Mapping[str, FunctionStartup] = field(
        default_factory=lambda: {kind: FunctionStartup() for kind in FUNCTION_KINDS}
    )
    promoters: tuple[str, ...] = ()
    force_promoters: tuple[str, ...] = ()
    artifact_locations: tuple[str, ...] = ()
    mlflow_token_secret_arn: str | None = None
    allow_insecure_registry: bool = False
    webhook_throttle_rate_limit: float = 5
    webhook_throttle_burst_limit: int = 10
    waf_enabled: bool = False
    waf_rate_limit: int = 1000
    fanout_threshold_bytes: int = 256 * 1024 * 1024
    fanout_range_bytes: int = 64 * 1024 * 1024
    fanout_max_concurrency: int = 10
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
        upload_cors_origins = _origins(value("upload_cors_origins"))
        if environment == "prod" and upload_cors_origins == ("*",):
            raise ConfigError(
                "context 'upload_cors_origins' must name the web page's origins with environment prod "
                "(e.g. https://abc123.execute-api.eu-west-1.amazonaws.com or your custom domain), not '*'"
            )
        mlflow_tracking_uri = _optional_url("mlflow_tracking_uri", value("mlflow_tracking_uri"))
        allow_insecure_registry = _bool("allow_insecure_registry", value("allow_insecure_registry"))
        if environment == "prod" and (mlflow_tracking_uri or "").startswith("http://") and not allow_insecure_registry:
            raise ConfigError(
                "context 'mlflow_tracking_uri' is http:// in prod: the registry decides what is deployed and "
                "its token would cross the network in clear; use https:// or set context "
                "'allow_insecure_registry' true"
            )
        return cls(
            promoters=_role_arns("promoters", value("promoters")),
            force_promoters=_role_arns("force_promoters", value("force_promoters")),
            artifact_locations=_artifact_locations(value("artifact_locations")),
            mlflow_token_secret_arn=_optional_secret_arn(value("mlflow_token_secret_arn")),
            allow_insecure_registry=allow_insecure_registry,
            webhook_throttle_rate_limit=_number(
                "webhook_throttle_rate_limit", value("webhook_throttle_rate_limit"), 1, 10_000
            ),
            webhook_throttle_burst_limit=_int(
                "webhook_throttle_burst_limit", value("webhook_throttle_burst_limit"), 1, 5_000
            ),
            waf_enabled=_waf(value("waf"), environment),
            # WAF rate-based rules: 10 .. 2e9 requests per 5-minute window per IP.
            waf_rate_limit=_int("waf_rate_limit", value("waf_rate_limit"), 10, 2_000_000_000),
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
            mlflow_tracking_uri=mlflow_tracking_uri,
            sagemaker_model_package_group=_optional_package_group(value("sagemaker_model_package_group")),
            # S3's single PUT/POST limit is 5 GB.
            upload_max_bytes=_int("upload_max_bytes", value("upload_max_bytes"), 1, 5 * 1024**3),
            upload_cors_origins=upload_cors_origins,
            alarm_email=_optional_email(value("alarm_email")),
            api_function=functions["api"],
            batch_function=functions["batch"],
            promote_function=functions["promote"],
            webhook_function=functions["webhook"],
            # S3's largest object is 5 TiB.
            batch_max_bytes=_int("batch_max_bytes", value("batch_max_bytes"), 1024, 5 * 1024**4),
            batch_max_record_bytes=_int(
                "batch_max_record_bytes", value("batch_max_record_bytes"), 1024, 256 * 1024 * 1024
            ),
            batch_max_columns=_int("batch_max_columns", value("batch_max_columns"), 1, 1_000_000),
            # zlib cannot expand more than ~1032x.
            batch_max_decompression_ratio=_number(
                "batch_max_decompression_ratio", value("batch_max_decompression_ratio"), 1, 2000
            ),
            batch_escape_formulas=_bool("batch_escape_formulas", value("batch_escape_formulas")),
            batch_retention_days=_int("batch_retention_days", value("batch_retention_days"), 0, 36500),
            stream=_stream_settings(value) if _bool("stream", value("stream")) else None,
            stream_function=functions["stream"],
            schedules=_schedules(value("schedules")),
            schedule_timezone=_timezone(value("schedule_timezone")),
            # Scheduler's flexible window is 1-1440 minutes; 0 turns it off.
            schedule_flexible_window_minutes=_int(
                "schedule_flexible_window_minutes", value("schedule_flexible_window_minutes"), 0, 1440
            ),
            schedule_max_files=_int("schedule_max_files", value("schedule_max_files"), 1, 100_000),
            schedule_stop_margin_seconds=_int(
                "schedule_stop_margin_seconds", value("schedule_stop_margin_seconds"), 0, 600
            ),
            scheduled_function=functions["scheduled"],
            startup=_function_startup(
                value("functions"),
                snap_start=_bool("snap_start", value("snap_start")),
                provisioned_concurrency=_int("provisioned_concurrency", value("provisioned_concurrency"), 0, 10_000),
                batch_reserved_concurrency=_reserved_concurrency(value("batch_reserved_concurrency")),
                python_runtime=_python_runtime(value("python_runtime")),
            ),
            # 1 byte and up, so a deployed test can send a small file through the fan-out.
            fanout_threshold_bytes=_int("fanout_threshold_bytes", value("fanout_threshold_bytes"), 1, 5 * 1024**4),
            # >= 8 MiB: every scored part is then a whole multipart part (>= 5 MiB).
            fanout_range_bytes=_int("fanout_range_bytes", value("fanout_range_bytes"), 8 * 1024**2, 5 * 1024**3),
            # Distributed Map runs at most 10,000 child workflows at once.
            fanout_max_concurrency=_int("fanout_max_concurrency", value("fanout_max_concurrency"), 1, 10_000),
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


def _stream_settings(value: Callable[[str], Any]) -> StreamSettings:
    """The event source mapping's limits are Lambda's own (Kinesis source)."""
    age = _int("stream_max_record_age_seconds", value("stream_max_record_age_seconds"), -1, 604_800)
    if age != -1 and age < 60:
        raise ConfigError(f"context 'stream_max_record_age_seconds' must be -1 (no limit) or 60-604800, got {age}")
    output = value("stream_output")
    if output not in STREAM_OUTPUTS:
        raise ConfigError(f"context 'stream_output' must be kinesis or firehose, got {output!r}")
    return StreamSettings(
        output=cast(StreamOutput, output),
        shards=_int("stream_shards", value("stream_shards"), 1, 500),
        retention_hours=_int("stream_retention_hours", value("stream_retention_hours"), 24, 8760),
        batch_size=_int("stream_batch_size", value("stream_batch_size"), 1, 10_000),
        batching_window_seconds=_int("stream_batching_window_seconds", value("stream_batching_window_seconds"), 0, 300),
        bisect_on_error=_bool("stream_bisect_on_error", value("stream_bisect_on_error")),
        max_record_age_seconds=age,
        retry_attempts=_int("stream_retry_attempts", value("stream_retry_attempts"), -1, 10_000),
        parallelization_factor=_int("stream_parallelization_factor", value("stream_parallelization_factor"), 1, 10),
    )


_SCHEDULE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/=-]{0,511}/$")
_RATE = re.compile(r"^rate\(\d+ (minute|minutes|hour|hours|day|days)\)$")
_TIMEZONE = re.compile(r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$")


def _schedule_expression(key: str, raw: Any) -> str:
    """``cron(m h dom mon dow y)`` (six fields, Scheduler's syntax), a bare six-field cron,
    or ``rate(N unit)``."""
    text = _non_empty_str(key, raw)
    if _RATE.match(text):
        return text
    inner = text[5:-1] if text.startswith("cron(") and text.endswith(")") else text
    fields = inner.split()
    if len(fields) != 6 or not all(re.fullmatch(r"[0-9A-Za-z*?,/#L W-]+", f) for f in fields):
        raise ConfigError(
            f"context {key!r} must be a six-field cron like '0 2 * * ? *' (or cron(...)/rate(...)), got {raw!r}"
        )
    if fields[2] != "?" and fields[4] != "?":
        raise ConfigError(f"context {key!r}: day-of-month or day-of-week must be '?' in a Scheduler cron, got {raw!r}")
    return f"cron({' '.join(fields)})"


def _schedules(raw: Any) -> tuple[ScheduleSettings, ...]:
    """``[{"name", "cron", "input_prefix"}]`` (a JSON string with ``-c schedules='[...]'``)."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else []
        except json.JSONDecodeError as error:
            raise ConfigError(f"context 'schedules' is not valid JSON: {error}") from None
    if not isinstance(raw, list | tuple):
        raise ConfigError(f"context 'schedules' must be a list of {{name, cron, input_prefix}}, got {raw!r}")
    result: list[ScheduleSettings] = []
    for index, item in enumerate(raw):
        key = f"schedules[{index}]"
        if not isinstance(item, Mapping) or set(item) != {"name", "cron", "input_prefix"}:
            raise ConfigError(
                f"context {key!r} must be an object with exactly name, cron and input_prefix, got {item!r}"
            )
        name = item["name"]
        if not isinstance(name, str) or not _SCHEDULE_NAME.match(name):
            raise ConfigError(
                f"context '{key}.name' must start with a letter or digit and contain only letters, digits, "
                f"'.', '_' or '-' (max 64), got {name!r}"
            )
        prefix = item["input_prefix"]
        if not isinstance(prefix, str) or not _PREFIX.match(prefix) or ".." in prefix or "//" in prefix:
            raise ConfigError(
                f"context '{key}.input_prefix' must be a key prefix ending in '/', like 'daily/', got {prefix!r}"
            )
        if prefix.startswith("results/"):
            # Scoring results would write more results under the prefix it scores.
            raise ConfigError(f"context '{key}.input_prefix' must not be under results/, got {prefix!r}")
        result.append(ScheduleSettings(name, _schedule_expression(f"{key}.cron", item["cron"]), prefix))
    names = [s.name for s in result]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"context 'schedules' has duplicate name(s) {duplicates}")
    return tuple(result)


def _timezone(raw: Any) -> str:
    zone = _non_empty_str("schedule_timezone", raw)
    if not _TIMEZONE.match(zone):
        raise ConfigError(
            f"context 'schedule_timezone' must be an IANA time zone like Europe/Berlin or UTC, got {raw!r}"
        )
    return zone


# --- drift monitoring (issue 14): its own typed settings, read from the same context ---

DRIFT_TESTS_NUMERIC = ("psi", "ks", "jensenshannon")
DRIFT_TESTS_CATEGORICAL = ("jensenshannon", "chisquare", "psi")
DRIFT_TEST_NAMES = ("ks", "psi", "chisquare", "jensenshannon")
_SCHEDULE = re.compile(r"^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\([^()]+\))$")
_COLUMN_NAME = re.compile(r"^[^,\s][^,]{0,254}$")

DRIFT_DEFAULTS: dict[str, Any] = {
    # Capture (Firehose) + the scheduled drift job + the alarm. Idle cost is ~nothing:
    # Firehose Direct PUT and Lambda are billed per use. Input fields are captured only
    # when named in capture_columns (["*"] = every signature column).
    "monitoring": True,
    "capture_sample_rate": 1.0,
    "capture_max_rows_per_minute": 6000,
    "capture_columns": [],
    "capture_retention_days": 90,
    "drift_schedule": "rate(1 day)",
    "drift_window_days": 1,
    "drift_numeric_test": "psi",
    "drift_categorical_test": "jensenshannon",
    "drift_thresholds": {},
    "drift_share": 0.5,
    "drift_memory_mb": 3008,
    "drift_timeout_seconds": 900,
}


@dataclass(frozen=True)
class DriftConfig:
    enabled: bool
    capture_sample_rate: float
    capture_max_rows_per_minute: int
    capture_columns: tuple[str, ...]
    capture_retention_days: int
    schedule: str
    window_days: float
    numeric_test: str
    categorical_test: str
    thresholds: dict[str, float]
    drift_share: float
    function: FunctionSettings

    @classmethod
    def from_context(cls, get_context: Callable[[str], Any]) -> DriftConfig:
        def value(key: str) -> Any:
            found = get_context(key)
            return DRIFT_DEFAULTS[key] if found is None else found

        return cls(
            enabled=_bool("monitoring", value("monitoring")),
            capture_sample_rate=_number("capture_sample_rate", value("capture_sample_rate"), 0, 1),
            capture_max_rows_per_minute=_int(
                "capture_max_rows_per_minute", value("capture_max_rows_per_minute"), 1, 10**7
            ),
            capture_columns=_capture_columns(value("capture_columns")),
            capture_retention_days=_int("capture_retention_days", value("capture_retention_days"), 1, 3653),
            schedule=_schedule(value("drift_schedule")),
            window_days=_number("drift_window_days", value("drift_window_days"), 0.01, 90),
            numeric_test=_choice("drift_numeric_test", value("drift_numeric_test"), DRIFT_TESTS_NUMERIC),
            categorical_test=_choice(
                "drift_categorical_test", value("drift_categorical_test"), DRIFT_TESTS_CATEGORICAL
            ),
            thresholds=_drift_thresholds(value("drift_thresholds")),
            drift_share=_number("drift_share", value("drift_share"), 0.01, 1),
            function=FunctionSettings(
                memory_mb=_int("drift_memory_mb", value("drift_memory_mb"), 128, 10240),
                timeout_seconds=_int("drift_timeout_seconds", value("drift_timeout_seconds"), 1, 900),
            ),
        )


def _capture_columns(raw: Any) -> tuple[str, ...]:
    key = "capture_columns"
    if isinstance(raw, str):
        stripped = raw.strip()
        try:
            raw = json.loads(stripped) if stripped.startswith("[") else [c for c in stripped.split(",") if c.strip()]
        except json.JSONDecodeError as error:
            raise ConfigError(f"context {key!r} is not valid JSON: {error}") from None
    if not isinstance(raw, list | tuple):
        raise ConfigError(f'context {key!r} must be a list of column names (or ["*"]), got {raw!r}')
    columns = tuple(str(c).strip() for c in raw)
    for column in columns:
        if not _COLUMN_NAME.match(column):
            raise ConfigError(f"context {key!r}: {column!r} is not a column name (no commas, not empty)")
    if "*" in columns and len(columns) > 1:
        raise ConfigError(f"context {key!r}: '*' already captures every signature column; list it alone")
    return columns


def _schedule(raw: Any) -> str:
    text = _non_empty_str("drift_schedule", raw)
    if not _SCHEDULE.match(text):
        raise ConfigError(
            f"context 'drift_schedule' must be an EventBridge Scheduler rate(...) or cron(...) expression, got {raw!r}"
        )
    return text


def _drift_thresholds(raw: Any) -> dict[str, float]:
    raw = _parse_cli_json("drift_thresholds", raw)
    if not isinstance(raw, Mapping):
        raise ConfigError(f"context 'drift_thresholds' must be an object like {{\"psi\": 0.2}}, got {raw!r}")
    unknown = sorted(set(raw) - set(DRIFT_TEST_NAMES))
    if unknown:
        raise ConfigError(f"context 'drift_thresholds' has unknown test(s) {unknown}; known: {list(DRIFT_TEST_NAMES)}")
    return {test: _number(f"drift_thresholds.{test}", value, 0, 10) for test, value in raw.items()}


def _function_startup(
    raw: Any,
    *,
    snap_start: bool,
    provisioned_concurrency: int,
    batch_reserved_concurrency: int | None,
    python_runtime: str,
) -> dict[str, FunctionStartup]:
    """The ``functions.<kind>`` startup keys (already shape-checked by _merge_functions)
    combined with the top-level ``snap_start`` switch and ``provisioned_concurrency`` (the API's)."""
    raw = _parse_cli_json("functions", raw)
    result: dict[str, FunctionStartup] = {}
    for kind in FUNCTION_KINDS:
        merged = {**DEFAULTS["functions"][kind], **(raw.get(kind) or {})}
        prefix = f"functions.{kind}"
        reserved_raw = merged["reserved_concurrency"]
        if reserved_raw is None or (isinstance(reserved_raw, str) and reserved_raw.strip().lower() in {"", "none"}):
            reserved = batch_reserved_concurrency if kind == "batch" else None
        else:
            # 0 would throttle every invocation: the function could never run.
            reserved = _int(f"{prefix}.reserved_concurrency", reserved_raw, 1, 10_000)
        wants_snap_start = _bool(f"{prefix}.snap_start", merged["snap_start"])
        if wants_snap_start and kind not in SNAP_START_KINDS:
            raise ConfigError(
                f"context '{prefix}.snap_start' must be false: only {list(SNAP_START_KINDS)} are invoked "
                "through a published version (the webhook carries no numpy and starts fast without it)"
            )
        ephemeral = _int(f"{prefix}.ephemeral_storage_mb", merged["ephemeral_storage_mb"], 512, 10240)
        on = snap_start and wants_snap_start
        if on and int(python_runtime.removeprefix("python3.")) < 12:
            raise ConfigError(
                f"context 'snap_start' needs python_runtime python3.12 or later (Lambda's SnapStart), got "
                f"{python_runtime!r}; set -c snap_start=false"
            )
        if on and ephemeral > SNAP_START_MAX_EPHEMERAL_MB:
            raise ConfigError(
                f"context '{prefix}.ephemeral_storage_mb' must be <= {SNAP_START_MAX_EPHEMERAL_MB} while SnapStart is "
                f"on (Lambda refuses larger /tmp with SnapStart), got {ephemeral}; or set '{prefix}.snap_start' false"
            )
        provisioned = provisioned_concurrency if kind == "api" else 0
        if on and provisioned:
            raise ConfigError(
                f"context 'provisioned_concurrency' ({provisioned}) and SnapStart ('snap_start' and "
                f"'{prefix}.snap_start' true) are exclusive: Lambda allows one or the other on a version; "
                "set -c snap_start=false (or functions.api.snap_start false) to use provisioned concurrency"
            )
        if reserved is not None and provisioned > reserved:
            raise ConfigError(
                f"context 'provisioned_concurrency' ({provisioned}) cannot exceed "
                f"'{prefix}.reserved_concurrency' ({reserved})"
            )
        result[kind] = FunctionStartup(
            reserved_concurrency=reserved,
            snap_start=on,
            provisioned_concurrency=provisioned,
            ephemeral_storage_mb=ephemeral,
        )
    return result


_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/[\w+=,.@/-]{1,512}$")
_SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[\w/+=.@-]{1,512}$")
_ARTIFACT_LOCATION = re.compile(r"^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/|https://[^\s/]+/)\S*$")


def _string_list(key: str, raw: Any) -> tuple[str, ...]:
    """A JSON list, or a comma-separated string from ``-c key=a,b``."""
    if isinstance(raw, str):
        stripped = raw.strip()
        try:
            raw = json.loads(stripped) if stripped.startswith("[") else [x for x in stripped.split(",") if x.strip()]
        except json.JSONDecodeError as error:
            raise ConfigError(f"context {key!r} is not valid JSON: {error}") from None
    if not isinstance(raw, list | tuple) or not all(isinstance(x, str) for x in raw):
        raise ConfigError(f"context {key!r} must be a list of strings, got {raw!r}")
    return tuple(x.strip() for x in raw)


def _role_arns(key: str, raw: Any) -> tuple[str, ...]:
    arns = _string_list(key, raw)
    for arn in arns:
        if not _ROLE_ARN.match(arn):
            raise ConfigError(f"context {key!r}: {arn!r} is not an IAM role ARN (arn:aws:iam::123456789012:role/name)")
    return arns


def _artifact_locations(raw: Any) -> tuple[str, ...]:
    key = "artifact_locations"
    locations = _string_list(key, raw)
    for location in locations:
        if not _ARTIFACT_LOCATION.match(location) or "/../" in location + "/":
            raise ConfigError(
                f"context {key!r}: {location!r} must be an s3://bucket/prefix/ or https://host/path/ prefix"
            )
    return locations


def _optional_secret_arn(raw: Any) -> str | None:
    arn = _optional_str("mlflow_token_secret_arn", raw)
    if arn is not None and not _SECRET_ARN.match(arn):
        raise ConfigError(
            f"context 'mlflow_token_secret_arn' must be a Secrets Manager secret ARN or empty, got {raw!r}"
        )
    return arn


def _waf(raw: Any, environment: str) -> bool:
    if isinstance(raw, str) and raw.strip().lower() == "auto":
        return environment == "prod"
    try:
        return _bool("waf", raw)
    except ConfigError:
        raise ConfigError(f"context 'waf' must be auto (on in prod), true or false, got {raw!r}") from None


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
