"""Packaging (context ``packaging`` and ``image_*``): zip or one container image (docs/image.md)."""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from infra.config.base import ConfigError
from infra.config.checks import optional_matching

Packaging = Literal["zip", "image"]
PACKAGINGS: tuple[Packaging, ...] = ("zip", "image")

_IMAGE_REFERENCE = re.compile(r"^[a-z0-9][a-z0-9._/:@-]{0,254}$")


def optional_image_reference(key: str, raw: Any) -> str | None:
    return optional_matching(key, raw, _IMAGE_REFERENCE, "a container image reference (or empty)")


def image_extra_requirements(key: str, raw: Any) -> tuple[str, ...] | str:
    """A list of requirement strings (or one comma-separated string), or the path of a
    requirements file (a string ending in .txt). Content is checked in infra/image.py."""
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
