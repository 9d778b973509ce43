"""Lambda SnapStart: what runs before the snapshot and after each restore.

With SnapStart, Lambda initializes a published version once, runs the before-snapshot
hooks, snapshots the memory and later restores copies of it into many execution
environments. So:

* before the snapshot, do the expensive, *shareable* work: import the hot path, load the
  live model (download, checksum, deserialize), compile its request schema and score its
  logged input example once (so lazily imported scoring code is loaded too);
* compute nothing unique there (request ids, credentials, timestamps, random state):
  every restored copy would share it;
* after each restore, re-create AWS clients (their credentials and connections belong to
  the snapshot's environment), re-seed random generators, and force the ``live.json``
  check on the first request, so a snapshot taken before a promotion serves the old
  model for at most that one check.

The hooks are registered with ``snapshot_restore_py``, which the Lambda runtime provides.
Outside Lambda the module is absent and registration only records the hooks here, so
tests and benchmarks can run the same cycle with :func:`simulate_snapshot_and_restore`.
"""

from __future__ import annotations

import logging
import os
import random
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from mlserve.errors import MlserveError
from mlserve.live import LiveModel
from mlserve.mlmodel import read_input_example
from mlserve.scoring import LoadedModel, predict_rows

logger = logging.getLogger(__name__)

Hook = Callable[[], None]

try:  # provided by Lambda's Python runtimes (3.12+); pip package snapshot-restore-py locally
    from snapshot_restore_py import register_after_restore as _runtime_after_restore
    from snapshot_restore_py import register_before_snapshot as _runtime_before_snapshot
except ImportError:  # not in Lambda: nothing will snapshot this process
    _runtime_before_snapshot = None
    _runtime_after_restore = None

_before_snapshot: list[Hook] = []
_after_restore: list[Hook] = []


def runtime_hooks_available() -> bool:
    return _runtime_before_snapshot is not None


def register(*, before_snapshot: Hook, after_restore: Hook) -> None:
    """Register a function's pair of hooks (with the runtime when it has SnapStart)."""
    _before_snapshot.append(before_snapshot)
    _after_restore.append(after_restore)
    if _runtime_before_snapshot is not None and _runtime_after_restore is not None:
        _runtime_before_snapshot(before_snapshot)
        _runtime_after_restore(after_restore)


def simulate_snapshot_and_restore() -> None:
    """What Lambda does between init and the first invocation of a SnapStart version:
    before-snapshot hooks in reverse registration order, then after-restore hooks in order."""
    for hook in reversed(_before_snapshot):
        hook()
    for hook in _after_restore:
        hook()


def run_before_snapshot() -> None:
    for hook in reversed(_before_snapshot):
        hook()


def run_after_restore() -> None:
    for hook in _after_restore:
        hook()


# --- the work itself ----------------------------------------------------------------


def warm_live_model(live: LiveModel, score: Callable[[LoadedModel, list[dict[str, Any]]], Any] | None = None) -> str:
    """Load the live model and score its input example once. Never raises: a failing
    before-snapshot hook fails the publish, and a version must deploy even before any
    model is live (the first request then loads it, as without SnapStart). Returns what
    happened, for the log."""
    try:
        model = live.get()
    except MlserveError as exc:
        return f"no model to warm: {exc.message}"
    try:
        rows = read_input_example(model.model_dir, model.spec)[:1]
    except MlserveError as exc:
        return f"model {model.identity.version} loaded; no input example to score ({exc.message})"
    try:
        (score or _predict_rows)(model, rows)
    except Exception as exc:  # the example may not fit the signature; the model still serves
        return f"model {model.identity.version} loaded; scoring its input example failed: {exc}"
    return f"model {model.identity.version} loaded and scored its input example"


def _predict_rows(model: LoadedModel, rows: list[dict[str, Any]]) -> Any:
    """The /predict path: the body validated from bytes (the compiled fast validator), then
    scored with probabilities (both code paths loaded). Records no metric."""
    import orjson

    payload = model.schema.validate_predict_body(orjson.dumps({"instances": rows, "probabilities": True}))
    return predict_rows(model, payload["instances"], probabilities=bool(model.classes))


def restore_live_model(live: LiveModel, *, s3_client: Any = None) -> None:
    """After a restore: a fresh store client, the pointer re-read on the next ``get()``,
    and this environment's own load time (the snapshot's is shared by every copy)."""
    forget_aws_session()
    live.store = live.store.reconnected(s3_client)
    live.force_next_check()
    current = live.current
    if current is not None:
        current.loaded_at = datetime.now(UTC).isoformat()


def forget_aws_session() -> None:
    """boto3's default session caches the credentials it first resolved: a client made
    after the restore from that session would still sign with the snapshot's. Drop it, so
    the next ``boto3.client()`` resolves this environment's credentials."""
    boto3: Any = sys.modules.get("boto3")
    if boto3 is not None:
        boto3.DEFAULT_SESSION = None


def reseed_random() -> None:
    """Every restored copy starts from the snapshot's generator state: re-seed from the OS."""
    random.seed(os.urandom(32))
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed(int.from_bytes(os.urandom(4), "little"))


def import_hot_path(*modules: str) -> None:
    """Import modules the first request would otherwise import lazily."""
    import importlib

    for name in modules:
        importlib.import_module(name)


def log_hook(name: str, outcome: str) -> None:
    logger.info("snapstart %s: %s", name, outcome)
