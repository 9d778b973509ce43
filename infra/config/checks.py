"""Field checks shared by the feature models: ``check(key, raw, ...)`` returns the typed
value or raises ConfigError naming the key. Values from ``-c key=value`` arrive as strings;
values from cdk.json arrive typed — both are accepted."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, TypeVar, cast

from infra.config.base import ConfigError

T = TypeVar("T", bound=str)


def parse_cli_json(key: str, raw: Any) -> Any:
    """``-c functions='{...}'`` arrives as a string; cdk.json values arrive typed."""
    if isinstance(raw, str) and raw.strip().startswith("{"):
        try:
            return json.loads(raw)
        except json.JSONDecodeError as error:
            raise ConfigError(f"context {key!r} is not valid JSON: {error}") from None
    return raw


def choice(key: str, raw: Any, allowed: tuple[T, ...]) -> T:
    if raw not in allowed:
        options = " or ".join([", ".join(allowed[:-1]), allowed[-1]] if len(allowed) > 2 else allowed)
        raise ConfigError(f"context {key!r} must be {options}, got {raw!r}")
    return cast(T, raw)


def non_empty_str(key: str, raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigError(f"context {key!r} must be a non-empty string, got {raw!r}")
    return raw.strip()


def boolean(key: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in {"true", "false"}:
        return raw.strip().lower() == "true"
    raise ConfigError(f"context {key!r} must be true or false, got {raw!r}")


def number(key: str, raw: Any, minimum: float, maximum: float) -> float:
    if isinstance(raw, bool):
        raise ConfigError(f"context {key!r} must be a number, got {raw!r}")
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"context {key!r} must be a number, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise ConfigError(f"context {key!r} must be between {minimum} and {maximum}, got {raw!r}")
    return value


def integer(key: str, raw: Any, minimum: int, maximum: int) -> int:
    if isinstance(raw, bool):
        raise ConfigError(f"context {key!r} must be an integer, got {raw!r}")
    try:
        value = int(raw) if not isinstance(raw, float) or raw.is_integer() else None
    except (TypeError, ValueError):
        value = None
    if value is None:
        raise ConfigError(f"context {key!r} must be an integer, got {raw!r}")
    if not minimum <= value <= maximum:
        raise ConfigError(f"context {key!r} must be between {minimum} and {maximum}, got {raw!r}")
    return value


def optional_str(key: str, raw: Any) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise ConfigError(f"context {key!r} must be a string, got {raw!r}")
    return raw.strip() or None


def optional_matching(key: str, raw: Any, pattern: re.Pattern[str], what: str) -> str | None:
    """An optional string that, when given, must match ``pattern`` (``what`` names the form)."""
    text = optional_str(key, raw)
    if text is not None and not pattern.match(text):
        raise ConfigError(f"context {key!r} must be {what}, got {raw!r}")
    return text


def string_list(key: str, raw: Any) -> tuple[str, ...]:
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


def mapping(key: str, raw: Any, what: str) -> Mapping[str, Any]:
    raw = parse_cli_json(key, raw)
    if not isinstance(raw, Mapping):
        raise ConfigError(f"context {key!r} must be {what}, got {raw!r}")
    return raw
