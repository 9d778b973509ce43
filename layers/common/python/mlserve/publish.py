"""Stage an MLflow model directory into a store and make it live.

This is the one staging path: `mlserve publish` and the redeploy function both call
`stage_and_activate`. Order matters: copy -> checksums.json -> read back and verify ->
load with the serving loader -> smoke-predict the input example -> manifest -> live.json
last. Any failure leaves live.json untouched and writes a failed manifest.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlserve.checksums import CHECKSUMS_FILE, compute_checksums
from mlserve.errors import MlserveError, StagingError
from mlserve.live import load_version, parse_pointer, read_pointer
from mlserve.mlmodel import ModelSpec, parse_mlmodel, read_input_example, read_model_spec
from mlserve.safe_paths import check_model_name, check_version
from mlserve.scoring import LoadedModel, predict_rows
from mlserve.store import ModelStore, WriteConflict, deployments_prefix, live_key, version_prefix

logger = logging.getLogger(__name__)


@dataclass
class StageRequest:
    name: str
    version: str
    model_dir: Path
    source: str
    run_id: str | None = None
    promoted_by: str = "mlserve publish"
    source_event: dict[str, Any] | None = None
    allow_pickle: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    # A signature that breaks the live model's clients is refused unless `force`.
    force: bool = False
    # Called after every check passed and right before live.json is written; raise to
    # abort the switch (e.g. the registry moved on to a newer version meanwhile).
    before_activate: Callable[[], None] | None = None
    # Files staged beside the model (relative path -> bytes), listed in checksums.json:
    # the reference profile (`mlserve publish --reference`, versions/<v>/profile.json).
    extra_files: dict[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # name and version become store keys: the one validator, before anything is written
        self.name = check_model_name(self.name)
        self.version = check_version(self.version)


@dataclass
class StageResult:
    pointer: dict[str, Any]
    manifest_key: str
    model: LoadedModel
    smoke_predictions: list[Any]


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def deployment_id(version: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{stamp}-v{version}"


def write_manifest(store: ModelStore, name: str, manifest: dict[str, Any]) -> str:
    key = f"{deployments_prefix(name)}{manifest['deployment_id']}.json"
    store.write_bytes(key, json.dumps(manifest, indent=2, sort_keys=True).encode(), "application/json")
    return key


def copy_version(store: ModelStore, request: StageRequest, checksums: dict[str, str]) -> None:
    """Copy files, then checksums.json. A version is immutable: re-staging the same
    content is a no-op, different content under the same version is refused."""
    prefix = version_prefix(request.name, request.version)
    checksums_key = prefix + CHECKSUMS_FILE
    if store.exists(checksums_key):
        recorded = json.loads(store.read_bytes(checksums_key))
        if recorded == checksums:
            return
        if _same_model_with_extras(recorded, checksums, request):
            checksums.clear()
            checksums.update(recorded)
            return
        raise StagingError(
            f"version {request.version} of {request.name} is already staged with different "
            "files; versions are immutable, publish under a new version"
        )
    for rel in sorted(checksums):
        data = request.extra_files[rel] if rel in request.extra_files else (request.model_dir / rel).read_bytes()
        store.write_bytes(prefix + rel, data)
    store.write_bytes(checksums_key, json.dumps(checksums, indent=2, sort_keys=True).encode(), "application/json")


def _same_model_with_extras(recorded: dict[str, str], checksums: dict[str, str], request: StageRequest) -> bool:
    """A version staged earlier with extra files (a reference profile), re-staged without
    them (a redeploy of the same version): the same model, keep what is recorded."""
    extras = set(recorded) - set(checksums)
    return (
        not request.extra_files and bool(extras) and {k: v for k, v in recorded.items() if k not in extras} == checksums
    )


def smoke_test(model: LoadedModel) -> list[Any]:
    """Predict the logged input example with the loaded model (from the staged copy)."""
    rows = read_input_example(model.model_dir, model.spec)
    validated = model.schema.validate_rows(rows, forbid_extra=False)
    prediction = predict_rows(model, validated)
    if len(prediction.predictions) != len(validated):
        raise StagingError(f"smoke test returned {len(prediction.predictions)} predictions for {len(validated)} rows")
    return prediction.predictions


def stage_and_activate(store: ModelStore, request: StageRequest, *, activate: bool = True) -> StageResult:
    started_at = utc_now()
    dep_id = deployment_id(request.version)
    previous, previous_etag = _read_live(store, request.name)
    manifest: dict[str, Any] = {
        "deployment_id": dep_id,
        "model_name": request.name,
        "version": request.version,
        "run_id": request.run_id,
        "source": request.source,
        "requested_by": request.promoted_by,
        "source_event": request.source_event,
        "previous_version": previous.get("version") if previous else None,
        "started_at": started_at,
        **request.extra,
    }
    try:
        spec = read_model_spec(request.model_dir)
        if spec.input_example is None:
            raise StagingError(
                "model was logged without an input example; it is needed for the smoke test",
                code="missing_input_example",
            )
        checksums = compute_checksums(request.model_dir)
        checksums.update({rel: hashlib.sha256(data).hexdigest() for rel, data in request.extra_files.items()})
        copy_version(store, request, checksums)
        pointer = {
            "name": request.name,
            "version": request.version,
            "run_id": request.run_id or spec.run_id,
            "source": request.source,
            "checksums": checksums,
            "serialization_format": spec.serialization_format,
            "sklearn_version": spec.sklearn_version,
            "promoted_at": started_at,
            "promoted_by": request.promoted_by,
            "source_event": request.source_event,
            "deployment_id": dep_id,
        }
        # Verify what the store now holds, with the loader the functions use.
        with tempfile.TemporaryDirectory(prefix="mlserve-stage-") as tmp:
            model = load_version(store, pointer, Path(tmp), allow_pickle=request.allow_pickle)
            manifest["signature_check"] = check_signature(store, previous, model.spec, force=request.force)
            smoke = smoke_test(model)
        manifest.update(status="succeeded", pointer=pointer, smoke_predictions=smoke[:5])
        if activate and request.before_activate is not None:
            request.before_activate()
    except Exception as exc:
        reason = str(exc) if isinstance(exc, MlserveError) else f"{type(exc).__name__}: {exc}"
        code = exc.code if isinstance(exc, MlserveError) else "staging_failed"
        status = "superseded" if code == "superseded" else "failed"
        manifest.update(status=status, reason=reason, code=code, finished_at=utc_now())
        key = _safe_write_manifest(store, request.name, manifest)
        logger.error("staging %s v%s failed: %s (manifest %s)", request.name, request.version, reason, key)
        if isinstance(exc, StagingError):
            raise
        raise StagingError(f"staging {request.name} v{request.version} failed: {reason}", code=code) from exc
    manifest.update(finished_at=utc_now(), activated=activate)
    manifest_key = write_manifest(store, request.name, manifest)
    if activate:
        try:
            _activate(store, request, pointer, previous_etag)
        except StagingError as exc:
            status = "superseded" if exc.code == "superseded" else "failed"
            manifest.update(status=status, reason=str(exc), code=exc.code, activated=False, finished_at=utc_now())
            _safe_write_manifest(store, request.name, manifest)
            raise
    return StageResult(pointer=pointer, manifest_key=manifest_key, model=model, smoke_predictions=smoke)


def live_spec(store: ModelStore, previous: dict[str, Any] | None) -> ModelSpec | None:
    """The MLmodel of the version live.json points at, read from the store."""
    if not previous:
        return None
    key = version_prefix(str(previous["name"]), str(previous["version"])) + "MLmodel"
    try:
        return parse_mlmodel(store.read_bytes(key).decode("utf-8"))
    except KeyError:
        return None


def check_signature(
    store: ModelStore, previous: dict[str, Any] | None, new: ModelSpec, *, force: bool
) -> dict[str, Any] | None:
    """Compare the new signature with the live one; raise on a breaking change unless forced."""
    from mlserve.promotion.compat import describe, signature_changes

    old = live_spec(store, previous)
    if old is None:
        return None
    breaking, compatible = signature_changes(old, new)
    result = {
        "against_version": previous["version"] if previous else None,
        **describe(breaking, compatible),
        "forced": bool(breaking and force),
    }
    if breaking and not force:
        raise StagingError(
            f"signature is not compatible with live version {result['against_version']}: "
            + "; ".join(breaking)
            + " (promote with force to override)",
            code="breaking_signature",
        )
    return result


LIVE_WRITE_ATTEMPTS = 3


def _read_live(store: ModelStore, name: str) -> tuple[dict[str, Any] | None, str | None]:
    """The live pointer (None if absent or unreadable) and its ETag (None if absent)."""
    try:
        fetched = store.read_if_changed(live_key(name), None)
    except KeyError:
        return None, None
    try:
        return (parse_pointer(fetched.data) if fetched.data is not None else None), fetched.etag
    except MlserveError:
        return None, fetched.etag


def _activate(store: ModelStore, request: StageRequest, pointer: dict[str, Any], etag: str | None) -> None:
    """Write live.json only if it is still what staging read (If-Match its ETag, or
    If-None-Match: * for the first version). A concurrent switch (a CLI rollback racing a
    redeploy) is detected: with a guard (`before_activate`, the redeploy's registry
    re-check) the guard decides again and the write is retried; without one (publish,
    rollback) nothing is switched and the error says what is live now."""
    body = json.dumps(pointer, indent=2, sort_keys=True).encode()
    key = live_key(request.name)
    for _ in range(LIVE_WRITE_ATTEMPTS):
        try:
            if etag is None:
                store.write_if(key, body, "application/json", if_none_match=True)
            else:
                store.write_if(key, body, "application/json", if_match=etag)
            return
        except WriteConflict as exc:
            current, etag = _read_live(store, request.name)
            now_live = current.get("version") if current else None
            logger.warning(
                "live.json of %s changed while staging v%s (now %s): %s", request.name, request.version, now_live, exc
            )
            if request.before_activate is None:
                raise StagingError(
                    f"live.json of {request.name} changed while staging version {request.version} "
                    f"(now version {now_live}); nothing was switched: re-run to decide",
                    code="live_conflict",
                ) from None
            request.before_activate()  # raises (superseded) unless this version should still win
    raise StagingError(
        f"live.json of {request.name} kept changing; gave up after {LIVE_WRITE_ATTEMPTS} attempts",
        code="live_conflict",
    )


def _safe_read_pointer(store: ModelStore, name: str) -> dict[str, Any] | None:
    try:
        return read_pointer(store, name)
    except MlserveError:
        return None


def _safe_write_manifest(store: ModelStore, name: str, manifest: dict[str, Any]) -> str | None:
    try:
        return write_manifest(store, name, manifest)
    except Exception as exc:  # the original failure matters more than the audit write
        logger.error("could not write the failed manifest: %s", exc)
        return None
