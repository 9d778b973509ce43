"""Deployment history from the manifests: status, and rollback to an earlier good version."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from mlserve.errors import MlserveError
from mlserve.live import read_pointer
from mlserve.publish import StageRequest, StageResult, stage_and_activate
from mlserve.store import ModelStore, deployments_prefix, version_prefix

logger = logging.getLogger(__name__)

SUMMARY_KEYS = (
    "deployment_id",
    "version",
    "status",
    "code",
    "reason",
    "source",
    "requested_by",
    "previous_version",
    "started_at",
    "finished_at",
)


def list_manifests(store: ModelStore, name: str) -> list[dict[str, Any]]:
    """All deployment manifests, oldest first (ids start with a UTC timestamp)."""
    manifests = []
    for key in store.list_keys(deployments_prefix(name)):
        if not key.endswith(".json"):
            continue
        try:
            manifests.append(json.loads(store.read_bytes(key)))
        except (KeyError, json.JSONDecodeError) as exc:
            logger.warning("skipping unreadable manifest %s: %s", key, exc)
    return sorted(manifests, key=lambda m: str(m.get("deployment_id", "")))


def status(store: ModelStore, name: str, limit: int = 10) -> dict[str, Any]:
    live = read_pointer(store, name)
    attempts = list_manifests(store, name)[-limit:] if limit > 0 else []
    return {
        "name": name,
        "live": None
        if live is None
        else {k: live.get(k) for k in ("version", "run_id", "source", "promoted_at", "promoted_by", "deployment_id")},
        "attempts": [{k: m.get(k) for k in SUMMARY_KEYS if m.get(k) is not None} for m in reversed(attempts)],
    }


def _deployed(manifest: dict[str, Any]) -> bool:
    return manifest.get("status") == "succeeded" and manifest.get("activated", True) is not False


def rollback_target(store: ModelStore, name: str, to: str | None = None) -> str:
    """`to` if it was deployed successfully before; else the last successfully deployed
    version other than the live one."""
    live = read_pointer(store, name)
    live_version = live["version"] if live else None
    manifests = [m for m in list_manifests(store, name) if _deployed(m)]
    if to is not None:
        if not any(str(m.get("version")) == str(to) for m in manifests):
            raise MlserveError(
                f"{name} version {to} was never deployed successfully; cannot roll back to it",
                code="no_rollback_target",
            )
        return str(to)
    for manifest in reversed(manifests):
        if str(manifest.get("version")) != live_version:
            return str(manifest["version"])
    raise MlserveError(f"{name} has no earlier successful deployment to roll back to", code="no_rollback_target")


def rollback(
    store: ModelStore,
    name: str,
    to: str | None = None,
    *,
    requested_by: str,
    force: bool = False,
    allow_pickle: bool = False,
) -> StageResult:
    """Re-activate an earlier staged version through the full staging checks (sha256,
    load, signature vs live, smoke test), leaving a manifest marked `rollback`."""
    target = rollback_target(store, name, to)
    live = read_pointer(store, name)
    previous: dict[str, Any] = next(
        (m for m in reversed(list_manifests(store, name)) if _deployed(m) and str(m.get("version")) == target), {}
    )
    with tempfile.TemporaryDirectory(prefix="mlserve-rollback-") as tmp:
        model_dir = store.download_prefix(version_prefix(name, target), Path(tmp) / "model")
        return stage_and_activate(
            store,
            StageRequest(
                name=name,
                version=target,
                model_dir=model_dir,
                source=str((previous.get("pointer") or {}).get("source") or previous.get("source") or "rollback"),
                run_id=(previous.get("pointer") or {}).get("run_id") or previous.get("run_id"),
                promoted_by=requested_by,
                allow_pickle=allow_pickle,
                extra={"rollback": True, "rollback_from": live["version"] if live else None},
                force=force,
            ),
        )
