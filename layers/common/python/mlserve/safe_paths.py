"""Names, versions and local paths that come from remote data, checked in one place.

Every model name and version that arrives from data (live.json, manifests, events, the
webhook, the CLI, a redeploy) goes through `check_model_name` / `check_version` before it
becomes part of a store key or a local path; every local path built from a remote key or
an archive member goes through `contained_path`, which refuses anything that would
resolve outside its root (``..``, absolute paths, symlinked parents).
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from mlserve.errors import MlserveError

# The MLflow registered-model names and versions the store layout (models/<name>/versions/<v>/)
# can hold safely: no separators, no leading dot, no "..", at most 128 characters.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class UnsafeNameError(MlserveError):
    """A model name or version that could not safely become part of a key or a path."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="unsafe_name")


class UnsafePathError(MlserveError):
    """A remote key or relative path that would leave its local root."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="unsafe_path")


def _check(kind: str, value: object) -> str:
    text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    if text is None or not NAME_PATTERN.fullmatch(text) or ".." in text:
        raise UnsafeNameError(
            f"{kind} {value!r} is not allowed: use 1-128 characters of letters, digits, '.', '_' "
            "and '-', starting with a letter or digit, without '..'"
        )
    return text


def check_model_name(name: object) -> str:
    """The name, or UnsafeNameError."""
    return _check("model name", name)


def check_version(version: object) -> str:
    """The version as a string, or UnsafeNameError."""
    return _check("model version", version)


def check_relative_path(rel: str, *, what: str = "path") -> str:
    """A '/'-separated relative path with no empty, '.' or '..' parts (from MLmodel, keys)."""
    parts = PurePosixPath(rel).parts if rel else ()
    if (
        not parts
        or rel.startswith("/")
        or "\\" in rel
        or "\x00" in rel
        or any(part in ("", ".", "..") for part in rel.split("/"))
    ):
        raise UnsafePathError(f"{what} {rel!r} is not a plain relative path")
    return rel


def contained_path(root: Path, rel: str, *, what: str = "path") -> Path:
    """`root / rel`, resolved, and guaranteed to stay inside `root` (else UnsafePathError)."""
    check_relative_path(rel, what=what)
    base = root.resolve()
    target = (base / rel).resolve()
    if target == base or not target.is_relative_to(base):
        raise UnsafePathError(f"{what} {rel!r} resolves outside {base}")
    return target
