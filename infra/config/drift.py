"""Drift monitoring (issue 14): capture, the scheduled drift job and its thresholds."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import Field
from pydantic.dataclasses import dataclass

from infra.config.base import MODEL_CONFIG, Check, ConfigError, ContextChecks, context_keys, from_context
from infra.config.checks import boolean, choice, integer, mapping, non_empty_str, number
from infra.config.functions import FunctionSettings

DRIFT_TESTS_NUMERIC = ("psi", "ks", "jensenshannon")
DRIFT_TESTS_CATEGORICAL = ("jensenshannon", "chisquare", "psi")
DRIFT_TEST_NAMES = ("ks", "psi", "chisquare", "jensenshannon")
_SCHEDULE = re.compile(r"^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\([^()]+\))$")
_COLUMN_NAME = re.compile(r"^[^,\s][^,]{0,254}$")


def capture_columns(key: str, raw: Any) -> tuple[str, ...]:
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


def drift_schedule(key: str, raw: Any) -> str:
    text = non_empty_str(key, raw)
    if not _SCHEDULE.match(text):
        raise ConfigError(
            f"context {key!r} must be an EventBridge Scheduler rate(...) or cron(...) expression, got {raw!r}"
        )
    return text


def drift_thresholds(key: str, raw: Any) -> dict[str, float]:
    given = mapping(key, raw, 'an object like {"psi": 0.2}')
    unknown = sorted(set(given) - set(DRIFT_TEST_NAMES))
    if unknown:
        raise ConfigError(f"context {key!r} has unknown test(s) {unknown}; known: {list(DRIFT_TEST_NAMES)}")
    return {test: number(f"{key}.{test}", value, 0, 10) for test, value in given.items()}


@dataclass(frozen=True, kw_only=True, config=MODEL_CONFIG)
class DriftConfig(ContextChecks):
    """Capture (Firehose) + the scheduled drift job + the alarm (context ``monitoring``)."""

    enabled: Annotated[bool, Check(boolean)] = Field(validation_alias="monitoring")
    capture_sample_rate: Annotated[float, Check(number, 0, 1)]
    capture_max_rows_per_minute: Annotated[int, Check(integer, 1, 10**7)]
    capture_columns: Annotated[tuple[str, ...], Check(capture_columns)]
    capture_retention_days: Annotated[int, Check(integer, 1, 3653)]
    schedule: Annotated[str, Check(drift_schedule)] = Field(validation_alias="drift_schedule")
    window_days: Annotated[float, Check(number, 0.01, 90)] = Field(validation_alias="drift_window_days")
    numeric_test: Annotated[str, Check(choice, DRIFT_TESTS_NUMERIC)] = Field(validation_alias="drift_numeric_test")
    categorical_test: Annotated[str, Check(choice, DRIFT_TESTS_CATEGORICAL)] = Field(
        validation_alias="drift_categorical_test"
    )
    thresholds: Annotated[dict[str, float], Check(drift_thresholds)] = Field(validation_alias="drift_thresholds")
    drift_share: Annotated[float, Check(number, 0.01, 1)]
    memory_mb: Annotated[int, Check(integer, 128, 10240)] = Field(validation_alias="drift_memory_mb")
    timeout_seconds: Annotated[int, Check(integer, 1, 900)] = Field(validation_alias="drift_timeout_seconds")

    @property
    def function(self) -> FunctionSettings:
        return FunctionSettings(memory_mb=self.memory_mb, timeout_seconds=self.timeout_seconds)

    @classmethod
    def from_context(cls, get_context: Callable[[str], Any]) -> DriftConfig:
        return from_context(cls, get_context, DRIFT_KEYS)


DRIFT_KEYS = context_keys(DriftConfig)
