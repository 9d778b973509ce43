"""Named deployment environments (``dev``, ``prod``, ...) from the ``environments`` context.

``cdk.json`` holds one entry per environment: where it goes (``account``, ``region``) and the
serving settings that differ there (``model_name``, ``auth``, ``alarm_email``,
``log_retention_days``, any other key of ``infra.config.SERVING_KEYS``). ``-c deploy_env=dev``
synthesizes the stack ``Mlserve-dev`` with that entry laid over the flat context; without
``deploy_env`` the app builds today's single ``Mlserve`` stack from the flat context alone.
Distinct stack names let one account hold dev and prod side by side.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from infra.config import DEFAULTS, ENVIRONMENTS, ConfigError, ServingConfig

ENVIRONMENTS_KEY = "environments"
SELECT_KEY = "deploy_env"
STACK_PREFIX = "Mlserve"
# Keys an entry may carry besides the serving settings.
PLACEMENT_KEYS = ("account", "region")

_NAME = re.compile(r"^[a-z][a-z0-9]{0,15}$")
_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$")


@dataclass(frozen=True)
class DeploymentTarget:
    """One environment, resolved: its stack, where it goes, and its validated settings."""

    name: str
    account: str | None
    region: str | None
    config: ServingConfig

    @property
    def stack_name(self) -> str:
        return stack_name(self.name)


def stack_name(environment: str) -> str:
    return f"{STACK_PREFIX}-{environment}"


def environment_entries(get_context: Callable[[str], Any]) -> dict[str, dict[str, Any]]:
    """The ``environments`` context as name -> entry, validated for shape (not values)."""
    raw = get_context(ENVIRONMENTS_KEY)
    if raw is None:
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as error:
            raise ConfigError(f"context {ENVIRONMENTS_KEY!r} is not valid JSON: {error}") from None
    if not isinstance(raw, Mapping):
        raise ConfigError(f"context {ENVIRONMENTS_KEY!r} must be an object of name -> settings, got {raw!r}")
    allowed = sorted({*DEFAULTS, *PLACEMENT_KEYS})
    entries: dict[str, dict[str, Any]] = {}
    for name, entry in raw.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(
                f"context {ENVIRONMENTS_KEY!r}: environment name {name!r} must be lower-case letters "
                "and digits, starting with a letter (max 16; it becomes the stack name Mlserve-<name>)"
            )
        if not isinstance(entry, Mapping):
            raise ConfigError(f"context '{ENVIRONMENTS_KEY}.{name}' must be an object, got {entry!r}")
        unknown = sorted(set(entry) - set(allowed))
        if unknown:
            raise ConfigError(f"context '{ENVIRONMENTS_KEY}.{name}' has unknown key(s) {unknown}; known: {allowed}")
        entries[name] = dict(entry)
    return entries


def selected_names(get_context: Callable[[str], Any]) -> list[str]:
    """``deploy_env``: "" (none: the flat ``Mlserve`` stack), a name, a comma-separated list,
    or ``all``."""
    raw = get_context(SELECT_KEY)
    if raw in (None, ""):
        return []
    if not isinstance(raw, str):
        raise ConfigError(f"context {SELECT_KEY!r} must be an environment name, a comma list or all, got {raw!r}")
    entries = environment_entries(get_context)
    names = list(entries) if raw.strip() == "all" else [part.strip() for part in raw.split(",") if part.strip()]
    for name in names:
        if name not in entries:
            raise ConfigError(
                f"context {SELECT_KEY!r} names {name!r}, which is not in context {ENVIRONMENTS_KEY!r} "
                f"(known: {sorted(entries)})"
            )
    return names


def resolve(get_context: Callable[[str], Any], name: str) -> DeploymentTarget:
    """The entry laid over the flat context (entry wins), validated like any context."""
    entries = environment_entries(get_context)
    if name not in entries:
        raise ConfigError(f"context {ENVIRONMENTS_KEY!r} has no environment {name!r} (known: {sorted(entries)})")
    entry = entries[name]
    prefix = f"{ENVIRONMENTS_KEY}.{name}"
    if "environment" not in entry and name not in ENVIRONMENTS:
        raise ConfigError(
            f"context '{prefix}.environment' is required for an environment not named dev or prod "
            "(it picks the retention behaviour: dev or prod)"
        )
    overlay = {"environment": name, **entry}

    def lookup(key: str) -> Any:
        return overlay[key] if key in overlay else get_context(key)

    try:
        config = ServingConfig.from_context(lookup)
    except ConfigError as error:
        # Name where the bad value came from when the entry set it.
        raise ConfigError(f"{prefix}: {error}") from None
    return DeploymentTarget(
        name=name,
        account=_optional_match(f"{prefix}.account", entry.get("account"), _ACCOUNT, "a 12-digit AWS account id"),
        region=_optional_match(f"{prefix}.region", entry.get("region"), _REGION, "an AWS region like eu-west-1"),
        config=config,
    )


def selected_targets(get_context: Callable[[str], Any]) -> list[DeploymentTarget]:
    return [resolve(get_context, name) for name in selected_names(get_context)]


def all_targets(get_context: Callable[[str], Any]) -> list[DeploymentTarget]:
    return [resolve(get_context, name) for name in environment_entries(get_context)]


def _optional_match(key: str, raw: Any, pattern: re.Pattern[str], what: str) -> str | None:
    if raw in (None, ""):
        return None
    text = str(raw).strip()
    if not pattern.match(text):
        raise ConfigError(f"context {key!r} must be {what} or empty, got {raw!r}")
    return text
