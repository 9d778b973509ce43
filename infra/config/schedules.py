"""Scheduled batch (context ``schedules`` and ``schedule_*``): EventBridge Scheduler
schedules that score every CSV under a prefix with no results for the live version."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from pydantic.dataclasses import dataclass

from infra.config.base import MODEL_CONFIG, ConfigError
from infra.config.checks import non_empty_str

_SCHEDULE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/=-]{0,511}/$")
_RATE = re.compile(r"^rate\(\d+ (minute|minutes|hour|hours|day|days)\)$")
_TIMEZONE = re.compile(r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$")


@dataclass(frozen=True, config=MODEL_CONFIG)
class ScheduleSettings:
    """One scheduled batch: ``cron`` is a Scheduler expression (``cron(...)``/``rate(...)``)."""

    name: str
    expression: str
    input_prefix: str


def schedule_expression(key: str, raw: Any) -> str:
    """``cron(m h dom mon dow y)`` (six fields, Scheduler's syntax), a bare six-field cron,
    or ``rate(N unit)``."""
    text = non_empty_str(key, raw)
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


def schedules(key: str, raw: Any) -> tuple[ScheduleSettings, ...]:
    """``[{"name", "cron", "input_prefix"}]`` (a JSON string with ``-c schedules='[...]'``)."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else []
        except json.JSONDecodeError as error:
            raise ConfigError(f"context {key!r} is not valid JSON: {error}") from None
    if not isinstance(raw, list | tuple):
        raise ConfigError(f"context {key!r} must be a list of {{name, cron, input_prefix}}, got {raw!r}")
    result: list[ScheduleSettings] = []
    for index, item in enumerate(raw):
        item_key = f"{key}[{index}]"
        if not isinstance(item, Mapping) or set(item) != {"name", "cron", "input_prefix"}:
            raise ConfigError(
                f"context {item_key!r} must be an object with exactly name, cron and input_prefix, got {item!r}"
            )
        name = item["name"]
        if not isinstance(name, str) or not _SCHEDULE_NAME.match(name):
            raise ConfigError(
                f"context '{item_key}.name' must start with a letter or digit and contain only letters, digits, "
                f"'.', '_' or '-' (max 64), got {name!r}"
            )
        prefix = item["input_prefix"]
        if not isinstance(prefix, str) or not _PREFIX.match(prefix) or ".." in prefix or "//" in prefix:
            raise ConfigError(
                f"context '{item_key}.input_prefix' must be a key prefix ending in '/', like 'daily/', got {prefix!r}"
            )
        if prefix.startswith("results/"):
            # Scoring results would write more results under the prefix it scores.
            raise ConfigError(f"context '{item_key}.input_prefix' must not be under results/, got {prefix!r}")
        result.append(ScheduleSettings(name, schedule_expression(f"{item_key}.cron", item["cron"]), prefix))
    names = [s.name for s in result]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"context {key!r} has duplicate name(s) {duplicates}")
    return tuple(result)


def timezone(key: str, raw: Any) -> str:
    zone = non_empty_str(key, raw)
    if not _TIMEZONE.match(zone):
        raise ConfigError(f"context {key!r} must be an IANA time zone like Europe/Berlin or UTC, got {raw!r}")
    return zone
