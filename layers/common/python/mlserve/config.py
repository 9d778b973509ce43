"""Runtime settings, read from MLSERVE_* environment variables."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mlserve.contract import RESULTS_PREFIX, Env
from mlserve.errors import MlserveError
from mlserve.http import DEFAULT_BODY_LIMIT
from mlserve.schema import DEFAULT_MAX_ROWS

TRUE_VALUES = {"1", "true", "yes", "on"}
FALSE_VALUES = {"0", "false", "no", "off", ""}


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in TRUE_VALUES:
        return True
    if value in FALSE_VALUES:
        return False
    raise MlserveError(f"{name}={raw!r} is not a boolean (use true or false)", code="bad_config")


def env_number(name: str, default: float, minimum: float = 0) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise MlserveError(f"{name}={raw!r} is not a number", code="bad_config") from None
    if value < minimum:
        raise MlserveError(f"{name}={raw!r} must be >= {minimum}", code="bad_config")
    return value


class Settings(BaseModel):
    """The API's and the batch functions' settings (pydantic: typed, frozen, validated)."""

    model_config = ConfigDict(frozen=True)

    store_uri: str = Field(min_length=1)
    model_name: str = Field(min_length=1)
    refresh_seconds: float = Field(default=15.0, ge=0)
    max_rows: int = Field(default=DEFAULT_MAX_ROWS, ge=1)
    max_body_bytes: int = Field(default=DEFAULT_BODY_LIMIT, ge=1)
    allow_pickle: bool = False
    cache_dir: Path = Path(tempfile.gettempdir()) / "mlserve"
    results_prefix: str = RESULTS_PREFIX
    # Score in a worker thread so a multi-request server (uvicorn) overlaps numpy work on
    # other cores; off in Lambda, where a sandbox serves one request at a time.
    score_in_threads: bool = False

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        """Read MLSERVE_* variables; `overrides` (e.g. `mlserve serve`'s flags) win over them.
        Errors name the variable."""
        store = str(overrides.pop("store_uri", None) or os.environ.get(Env.STORE, "")).strip()
        name = str(overrides.pop("model_name", None) or os.environ.get(Env.MODEL_NAME, "")).strip()
        missing = [var for var, value in ((Env.STORE, store), (Env.MODEL_NAME, name)) if not value]
        if missing:
            raise MlserveError(f"missing required setting(s): {', '.join(missing)}", code="bad_config")
        values: dict[str, Any] = {
            "refresh_seconds": env_number(Env.REFRESH_SECONDS, 15.0),
            "max_rows": int(env_number(Env.MAX_ROWS, DEFAULT_MAX_ROWS, minimum=1)),
            "max_body_bytes": int(env_number(Env.MAX_BODY_BYTES, DEFAULT_BODY_LIMIT, minimum=1)),
            "allow_pickle": env_bool(Env.ALLOW_PICKLE, False),
            "cache_dir": Path(os.environ.get(Env.CACHE_DIR) or Path(tempfile.gettempdir()) / "mlserve"),
            "results_prefix": os.environ.get(Env.RESULTS_PREFIX, RESULTS_PREFIX) or RESULTS_PREFIX,
            "score_in_threads": env_bool(Env.SCORE_IN_THREADS, False),
        }
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(store_uri=store, model_name=name, **values)
