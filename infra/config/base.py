"""The machinery every context model shares: the error type, cdk.json as the one source of
defaults, and ``Check`` markers that validate a field with an error naming its context key.

Models are pydantic dataclasses (frozen): pydantic does the typing and the model-level
checks, while each field's ``Check`` raises :class:`ConfigError` with the exact message a
user sees (``context 'max_rows' must be between 1 and 10000000, got ...``)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ConfigDict, TypeAdapter, ValidationError, ValidationInfo, field_validator

CDK_JSON = Path(__file__).resolve().parents[2] / "cdk.json"

# Settings are validated from a dict of context keys: a field whose attribute name differs
# from its key names the key as its validation_alias.
MODEL_CONFIG = ConfigDict(extra="ignore")


class ConfigError(ValueError):
    """A context value is missing or invalid; the message names the key."""


@cache
def cdk_json_context() -> Mapping[str, Any]:
    """The ``context`` of cdk.json: the defaults of every setting (no second copy in code)."""
    context: dict[str, Any] = json.loads(CDK_JSON.read_text())["context"]
    return context


def cdk_default(key: str) -> Any:
    context = cdk_json_context()
    if key not in context:
        raise ConfigError(f"context {key!r} has no default in {CDK_JSON.name}; add it there")
    return context[key]


class Check:
    """``Annotated[int, Check(integer, 1, 100)]``: validate the raw context value with
    ``check(key, raw, *args)``, ``key`` being the field's context key (its alias)."""

    def __init__(self, check: Callable[..., Any], *args: Any) -> None:
        self.check = check
        self.args = args

    def __call__(self, key: str, raw: Any) -> Any:
        return self.check(key, raw, *self.args)


def context_key(model: type, field_name: str) -> str:
    field = model.__pydantic_fields__[field_name]  # type: ignore[attr-defined]
    alias = field.validation_alias
    return alias if isinstance(alias, str) else field_name


def context_keys(model: type) -> tuple[str, ...]:
    """The context keys a model reads (one per field)."""
    return tuple(context_key(model, name) for name in model.__pydantic_fields__)  # type: ignore[attr-defined]


class ContextChecks:
    """Mixin: runs each field's ``Check`` before pydantic's own type validation."""

    @field_validator("*", mode="before")
    @classmethod
    def _run_check(cls, raw: Any, info: ValidationInfo) -> Any:
        assert info.field_name is not None
        for marker in cls.__pydantic_fields__[info.field_name].metadata:  # type: ignore[attr-defined]
            if isinstance(marker, Check):
                return marker(context_key(cls, info.field_name), raw)
        return raw


Model = TypeVar("Model")


def from_context(model: type[Model], get_context: Callable[[str], Any], keys: tuple[str, ...]) -> Model:
    """Build ``model`` from ``keys`` of the context (``app.node.try_get_context`` or any
    key -> value|None lookup); a key the context lacks takes its cdk.json value."""

    def value(key: str) -> Any:
        found = get_context(key)
        return cdk_default(key) if found is None else found

    return validate(model, {key: value(key) for key in keys})


def validate(model: type[Model], data: Mapping[str, Any]) -> Model:
    """Pydantic validation with the first problem re-raised as the ConfigError it is."""
    try:
        return TypeAdapter(model).validate_python(data)
    except ValidationError as error:
        first = error.errors()[0]
        cause = first.get("ctx", {}).get("error")
        if isinstance(cause, ConfigError):
            raise cause from None
        key = ".".join(str(part) for part in first["loc"]) or model.__name__
        raise ConfigError(f"context {key!r}: {first['msg']}, got {first.get('input')!r}") from None
