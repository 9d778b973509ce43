"""Resolve MLflow model URIs to a local directory (registry side only: imports mlflow).

Never imported by a Lambda code path; the CLI and examples use it.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path

from mlserve.checksums import compute_checksums
from mlserve.errors import MlserveError
from mlserve.publish import StageRequest, StageResult, stage_and_activate
from mlserve.store import open_store

MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>[^/]+)|@(?P<alias>[^/]+))/?$")
URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:/")
RUNS_URI = re.compile(r"^runs:/(?P<run_id>[^/]+)/(?P<path>.+)$")


@dataclass
class ResolvedModel:
    name: str
    version: str
    run_id: str | None
    local_dir: Path
    source: str


def resolve_model_uri(
    uri: str, *, name: str | None = None, version: str | None = None, dst: Path | None = None
) -> ResolvedModel:
    """models:/name/3, models:/name@alias, runs:/<run_id>/<path>, or a local directory."""
    local = Path(uri[len("file://") :] if uri.startswith("file://") else uri)
    if uri.startswith("file://") or not URI_SCHEME.match(uri):
        if not local.is_dir():
            raise MlserveError(f"{uri!r} is not a directory or an MLflow model URI", code="bad_model_uri")
        if not name:
            raise MlserveError("--name is required when publishing a local directory", code="bad_model_uri")
        content = sha256("".join(compute_checksums(local).values()).encode()).hexdigest()
        return ResolvedModel(name, version or f"local-{content[:12]}", None, local, str(local.resolve()))

    import mlflow
    from mlflow import MlflowClient

    dst = dst or Path(tempfile.mkdtemp(prefix="mlserve-download-"))
    models = MODELS_URI.match(uri)
    if models:
        client = MlflowClient()
        registered = models.group("name")
        if models.group("alias"):
            model_version = client.get_model_version_by_alias(registered, models.group("alias"))
        else:
            model_version = client.get_model_version(registered, models.group("version"))
        source_uri = f"models:/{registered}/{model_version.version}"
        path = Path(mlflow.artifacts.download_artifacts(artifact_uri=source_uri, dst_path=str(dst)))
        return ResolvedModel(
            name or registered, version or str(model_version.version), model_version.run_id, path, source_uri
        )
    runs = RUNS_URI.match(uri)
    if runs:
        if not name:
            raise MlserveError("--name is required when publishing a runs:/ URI", code="bad_model_uri")
        path = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dst)))
        run_id = runs.group("run_id")
        return ResolvedModel(name, version or f"run-{run_id[:12]}", run_id, path, uri)
    raise MlserveError(
        f"unsupported model URI {uri!r}: use models:/NAME/VERSION, models:/NAME@ALIAS, "
        "runs:/RUN_ID/PATH or a directory",
        code="bad_model_uri",
    )


def publish_model_uri(
    uri: str,
    store_uri: str,
    *,
    name: str | None = None,
    version: str | None = None,
    promoted_by: str = "mlserve publish",
    allow_pickle: bool = False,
    force: bool = False,
    reference: str | Path | None = None,
) -> tuple[ResolvedModel, StageResult]:
    """Resolve an MLflow model URI and stage it into a store as the live version; with
    ``reference`` (a CSV), also its reference profile (versions/<v>/profile.json)."""
    resolved = resolve_model_uri(uri, name=name, version=version)
    extra_files: dict[str, bytes] = {}
    if reference is not None:
        from mlserve.monitoring.profile import PROFILE_FILE, profile_bytes, reference_profile_for_model

        profile = reference_profile_for_model(resolved.local_dir, Path(reference), allow_pickle=allow_pickle)
        extra_files[PROFILE_FILE] = profile_bytes(profile)
    result = stage_and_activate(
        open_store(store_uri),
        StageRequest(
            name=resolved.name,
            version=resolved.version,
            model_dir=resolved.local_dir,
            source=resolved.source,
            run_id=resolved.run_id,
            promoted_by=promoted_by,
            allow_pickle=allow_pickle,
            force=force,
            extra_files=extra_files,
        ),
    )
    return resolved, result
