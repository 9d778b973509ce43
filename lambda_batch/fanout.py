"""Lambda entry points of the fan-out state machine's steps (infra/fanout.py): thin - event
fields in, ``mlserve.batch.fanout`` does the work. One module, three functions (plan,
range, merge - the merge function also writes the failure report), each with its own role.

Step inputs (the state machine passes only these; everything else lives in S3):
- plan:  the execution input {bucket, key, version_id, etag, size}
- range: {bucket, job_key, range: {index, start, end, lines_before}} (a Distributed Map item)
- merge: the execution state {..., plan: {job_key, ...}}
- fail:  the execution state plus {error: {Error, Cause}} from the Catch
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mlserve.batch.core import BatchOptions
from mlserve.batch.fanout import (
    DEFAULT_RANGE_BYTES,
    MIN_RANGE_BYTES,
    fail_file,
    merge_file,
    plan_file,
    score_range,
)
from mlserve.config import Settings, env_number
from mlserve.contract import Env
from mlserve.lambda_runtime import time_left_of
from mlserve.live import load_version, read_pointer
from mlserve.observability import lambda_entry
from mlserve.scoring import LoadedModel

_state: dict[str, Any] = {}


def _settings() -> Settings:
    if "settings" not in _state:
        _state["settings"] = Settings.from_env()
    return _state["settings"]


def _s3() -> Any:
    if "s3" not in _state:
        import boto3

        _state["s3"] = boto3.client("s3")
    return _state["s3"]


def _store() -> Any:
    if "store" not in _state:
        from mlserve.store import open_store

        _state["store"] = open_store(_settings().store_uri, s3_client=_s3())
    return _state["store"]


def _load_pinned(pointer: dict[str, Any]) -> LoadedModel:
    """The pinned version, loaded once per container (a warm container keeps it)."""
    key = (pointer["name"], str(pointer["version"]))
    models: dict[tuple[str, str], LoadedModel] = _state.setdefault("models", {})
    if key not in models:
        settings = _settings()
        models.clear()
        # A per-process cache directory: emulators (MiniStack) run several range functions on
        # one host /tmp at once, and two downloads of the same version must not interleave.
        cache = Path(settings.cache_dir) / f"pid-{os.getpid()}"
        models[key] = load_version(
            _store(), pointer, cache, allow_pickle=settings.allow_pickle, max_rows=settings.max_rows
        )
    return models[key]


def reset() -> None:
    """For tests: forget cached clients and models."""
    _state.clear()


def _plan(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    range_bytes = int(env_number(Env.FANOUT_RANGE_BYTES, DEFAULT_RANGE_BYTES, minimum=MIN_RANGE_BYTES))
    pointer = read_pointer(_store(), _settings().model_name)
    return plan_file(_s3(), event, pointer, results_prefix=_settings().results_prefix, range_bytes=range_bytes)


def _range(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    return score_range(
        _s3(),
        event["bucket"],
        event["job_key"],
        event["range"],
        _load_pinned,
        BatchOptions.from_env(),
        time_left=time_left_of(context),
    )


def _execution(event: dict[str, Any]) -> str | None:
    return event.get("execution") if isinstance(event.get("execution"), str) else None


def _merge(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    options = BatchOptions.from_env()
    return merge_file(
        _s3(),
        event["bucket"],
        event["plan"]["job_key"],
        results_prefix=_settings().results_prefix,
        max_listed=options.max_listed,
        execution=_execution(event),
    )


def _fail(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    request = event.get("request") or event  # the state machine passes {request: <state>, execution}
    return fail_file(
        _s3(), request, request.get("error"), results_prefix=_settings().results_prefix, execution=_execution(event)
    )


plan = lambda_entry(_plan)
score = lambda_entry(_range)
merge = lambda_entry(_merge)
fail = lambda_entry(_fail)
