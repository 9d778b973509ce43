"""Typed deployment settings built from CDK context (``cdk.json`` plus ``-c key=value``).

Everything is validated at synth time, without AWS calls, so a typo fails with a message
that names the context key instead of a CloudFormation error half-way through a deploy.
cdk.json's ``context`` holds every default; the models here hold none.

One module per concern: ``base`` (ConfigError, cdk.json, the Check machinery), ``checks``
(shared field checks), ``functions``, ``stream``, ``schedules``, ``trust`` (promotion
trust, WAF), ``image``, ``drift`` and ``serving`` (ServingConfig, the stack's settings)."""

from __future__ import annotations

from typing import Any

from infra.config.base import ConfigError, cdk_default
from infra.config.drift import DRIFT_KEYS, DRIFT_TEST_NAMES, DRIFT_TESTS_CATEGORICAL, DRIFT_TESTS_NUMERIC, DriftConfig
from infra.config.functions import (
    FUNCTION_KINDS,
    SNAP_START_KINDS,
    SNAP_START_MAX_EPHEMERAL_MB,
    FunctionSettings,
    FunctionStartup,
)
from infra.config.image import PACKAGINGS, Packaging
from infra.config.schedules import ScheduleSettings
from infra.config.serving import (
    ARCHITECTURES,
    AUTH_MODES,
    BUNDLE_DEPS_MODES,
    ENVIRONMENTS,
    LOG_RETENTION_DAYS,
    SERVING_KEYS,
    Architecture,
    AuthMode,
    BundleDeps,
    Environment,
    ServingConfig,
)
from infra.config.stream import STREAM_OUTPUTS, StreamOutput, StreamSettings

# The defaults of ServingConfig's and DriftConfig's keys, read from cdk.json (a view for
# callers that list the known keys, e.g. the per-environment overlay; not a second copy).
DEFAULTS: dict[str, Any] = {key: cdk_default(key) for key in SERVING_KEYS}
DRIFT_DEFAULTS: dict[str, Any] = {key: cdk_default(key) for key in DRIFT_KEYS}

__all__ = [
    "ARCHITECTURES",
    "AUTH_MODES",
    "BUNDLE_DEPS_MODES",
    "DEFAULTS",
    "DRIFT_DEFAULTS",
    "DRIFT_KEYS",
    "DRIFT_TESTS_CATEGORICAL",
    "DRIFT_TESTS_NUMERIC",
    "DRIFT_TEST_NAMES",
    "ENVIRONMENTS",
    "FUNCTION_KINDS",
    "LOG_RETENTION_DAYS",
    "PACKAGINGS",
    "SERVING_KEYS",
    "SNAP_START_KINDS",
    "SNAP_START_MAX_EPHEMERAL_MB",
    "STREAM_OUTPUTS",
    "Architecture",
    "AuthMode",
    "BundleDeps",
    "ConfigError",
    "DriftConfig",
    "Environment",
    "FunctionSettings",
    "FunctionStartup",
    "Packaging",
    "ScheduleSettings",
    "ServingConfig",
    "StreamOutput",
    "StreamSettings",
]
