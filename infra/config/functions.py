"""Per-function settings (context ``functions.<kind>``) and how each function starts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic.dataclasses import dataclass

from infra.config.base import MODEL_CONFIG, ConfigError, cdk_default
from infra.config.checks import boolean, integer, mapping

FUNCTION_KINDS = ("api", "batch", "promote", "webhook", "stream", "scheduled")
# Functions whose triggers invoke the `live` alias, so SnapStart (published versions only)
# can apply; the webhook is small (no numpy), starts fast and is invoked unqualified.
SNAP_START_KINDS = ("api", "batch", "promote")
# Lambda refuses SnapStart with more than 512 MB of ephemeral storage.
SNAP_START_MAX_EPHEMERAL_MB = 512
# API Gateway's integration timeout is 29 s: a longer timeout of a function behind the
# API only hides a 504 the client has already received.
BEHIND_API_KINDS = ("api", "webhook")
API_GATEWAY_TIMEOUT_SECONDS = 29


@dataclass(frozen=True, config=MODEL_CONFIG)
class FunctionSettings:
    memory_mb: int
    timeout_seconds: int


@dataclass(frozen=True, config=MODEL_CONFIG)
class FunctionStartup:
    """How a function starts and scales: reserved concurrency (None = unreserved pool),
    SnapStart on published versions, provisioned concurrency on the `live` alias, /tmp size."""

    reserved_concurrency: int | None = None
    snap_start: bool = False
    provisioned_concurrency: int = 0
    ephemeral_storage_mb: int = 512


@dataclass(frozen=True, config=MODEL_CONFIG)
class FunctionContext:
    """One ``functions.<kind>`` entry, each key checked on its own (cross-key rules that
    involve top-level context live in ServingConfig)."""

    memory_mb: int
    timeout_seconds: int
    # None: the unreserved pool (for batch: batch_reserved_concurrency).
    reserved_concurrency: int | None
    snap_start: bool
    ephemeral_storage_mb: int

    @property
    def settings(self) -> FunctionSettings:
        return FunctionSettings(memory_mb=self.memory_mb, timeout_seconds=self.timeout_seconds)


def function_contexts(key: str, raw: Any) -> dict[str, FunctionContext]:
    """``functions``: an object of kind -> partial entry, each laid over cdk.json's entry."""
    given_all = mapping(key, raw, "an object")
    unknown = sorted(set(given_all) - set(FUNCTION_KINDS))
    if unknown:
        raise ConfigError(f"context {key!r} has unknown function(s) {unknown}; known: {list(FUNCTION_KINDS)}")
    merged: dict[str, dict[str, Any]] = {}
    sizes: dict[str, FunctionSettings] = {}
    for kind in FUNCTION_KINDS:
        defaults: Mapping[str, Any] = cdk_default(key)[kind]
        given = given_all.get(kind) or {}
        prefix = f"{key}.{kind}"
        if not isinstance(given, Mapping):
            raise ConfigError(f"context {prefix!r} must be an object, got {given!r}")
        unknown_keys = sorted(set(given) - set(defaults))
        if unknown_keys:
            raise ConfigError(f"context {prefix!r} has unknown key(s) {unknown_keys}; known: {sorted(defaults)}")
        merged[kind] = {**defaults, **given}
        sizes[kind] = FunctionSettings(
            # Lambda's own limits: 128 MB..10240 MB memory, 1..900 s timeout.
            memory_mb=integer(f"{prefix}.memory_mb", merged[kind]["memory_mb"], 128, 10240),
            timeout_seconds=integer(f"{prefix}.timeout_seconds", merged[kind]["timeout_seconds"], 1, 900),
        )
    for kind in BEHIND_API_KINDS:
        if sizes[kind].timeout_seconds > API_GATEWAY_TIMEOUT_SECONDS:
            raise ConfigError(
                f"context '{key}.{kind}.timeout_seconds' must be <= {API_GATEWAY_TIMEOUT_SECONDS} (API Gateway's "
                f"integration timeout), got {sizes[kind].timeout_seconds}"
            )
    return {kind: _function_context(f"{key}.{kind}", kind, merged[kind], sizes[kind]) for kind in FUNCTION_KINDS}


def _function_context(prefix: str, kind: str, merged: Mapping[str, Any], size: FunctionSettings) -> FunctionContext:
    reserved_raw = merged["reserved_concurrency"]
    reserved: int | None = None
    if not (reserved_raw is None or (isinstance(reserved_raw, str) and reserved_raw.strip().lower() in {"", "none"})):
        # 0 would throttle every invocation: the function could never run.
        reserved = integer(f"{prefix}.reserved_concurrency", reserved_raw, 1, 10_000)
    wants_snap_start = boolean(f"{prefix}.snap_start", merged["snap_start"])
    if wants_snap_start and kind not in SNAP_START_KINDS:
        raise ConfigError(
            f"context '{prefix}.snap_start' must be false: only {list(SNAP_START_KINDS)} are invoked "
            "through a published version (the webhook carries no numpy and starts fast without it)"
        )
    return FunctionContext(
        memory_mb=size.memory_mb,
        timeout_seconds=size.timeout_seconds,
        reserved_concurrency=reserved,
        snap_start=wants_snap_start,
        ephemeral_storage_mb=integer(f"{prefix}.ephemeral_storage_mb", merged["ephemeral_storage_mb"], 512, 10240),
    )


def function_startup(
    functions: Mapping[str, FunctionContext],
    *,
    snap_start: bool,
    provisioned_concurrency: int,
    batch_reserved_concurrency: int | None,
    python_runtime: str,
) -> dict[str, FunctionStartup]:
    """Each ``functions.<kind>`` entry combined with the top-level ``snap_start`` switch and
    ``provisioned_concurrency`` (the API's); raises on combinations Lambda refuses."""
    result: dict[str, FunctionStartup] = {}
    for kind in FUNCTION_KINDS:
        entry = functions[kind]
        prefix = f"functions.{kind}"
        reserved = entry.reserved_concurrency
        if reserved is None and kind == "batch":
            reserved = batch_reserved_concurrency
        on = snap_start and entry.snap_start
        if on and int(python_runtime.removeprefix("python3.")) < 12:
            raise ConfigError(
                f"context 'snap_start' needs python_runtime python3.12 or later (Lambda's SnapStart), got "
                f"{python_runtime!r}; set -c snap_start=false"
            )
        if on and entry.ephemeral_storage_mb > SNAP_START_MAX_EPHEMERAL_MB:
            raise ConfigError(
                f"context '{prefix}.ephemeral_storage_mb' must be <= {SNAP_START_MAX_EPHEMERAL_MB} while SnapStart is "
                f"on (Lambda refuses larger /tmp with SnapStart), got {entry.ephemeral_storage_mb}; "
                f"or set '{prefix}.snap_start' false"
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
            ephemeral_storage_mb=entry.ephemeral_storage_mb,
        )
    return result
