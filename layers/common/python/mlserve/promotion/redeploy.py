"""Redeploy orchestration: a `ModelPromoted` event in, a new live model (or a refusal) out.

    event -> ModelPromoted -> is it still what the registry promotes? (out-of-order guard)
          -> already live? (idempotency) -> resolve + download the artifact
          -> stage_and_activate (copy, sha256, load, signature vs live, smoke test,
             manifest, re-check the registry, live.json) -> ModelDeployed
    any refusal: failed manifest, live.json untouched, ModelDeploymentFailed.

Transient failures (S3/registry errors) are re-raised after the failure event so that
Lambda retries the invocation and, at the end, parks it in the DLQ.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlserve.config import env_bool
from mlserve.contract import MODEL_DEPLOYED, MODEL_DEPLOYMENT_FAILED, Env
from mlserve.errors import MlserveError, StagingError
from mlserve.live import read_pointer
from mlserve.observability import clear_model_keys, record_redeploy, set_model_keys
from mlserve.promotion.events import (
    EventError,
    ModelPromoted,
    outcome_detail,
    promotion_from_eventbridge,
    put_event,
)
from mlserve.promotion.mlflow_rest import MlflowRest, RegistryError, download_model
from mlserve.promotion.target import current_target
from mlserve.promotion.trust import ArtifactPolicy, SageMakerRegistry
from mlserve.publish import StageRequest, deployment_id, stage_and_activate, utc_now, write_manifest
from mlserve.store import ModelStore, open_store

logger = logging.getLogger(__name__)

TRANSIENT_CODES = frozenset({"store_error", "registry_unavailable", "event_put_failed"})


class TransientRedeployError(MlserveError):
    """Worth retrying: the redeploy handler re-raises it so Lambda retries / dead-letters."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="transient")


@dataclass
class Resolved:
    model_dir: Path
    source_uri: str
    run_id: str | None
    force: bool = False  # the registry asks for it (model version tag `mlserve.force=true`)


FORCE_TAG = "mlserve.force"


# (promotion) -> the version the registry promotes *now* (None: cannot tell, trust the event)
TargetLookup = Callable[[ModelPromoted], str | None]
# (promotion, dest) -> the downloaded MLflow model directory
Resolver = Callable[[ModelPromoted, Path], Resolved]


@dataclass
class RedeployConfig:
    store_uri: str
    bus: str | None = None
    registry_uri: str | None = None
    alias: str = "champion"
    stage: str = "Production"
    model_names: frozenset[str] = field(default_factory=frozenset)  # empty: any
    allow_pickle: bool = False
    sagemaker_package_group: str | None = None
    sagemaker_model_name: str | None = None
    work_dir: Path = Path(tempfile.gettempdir()) / "mlserve-redeploy"
    # URI prefixes artifacts may come from besides the registry's own (MLSERVE_ARTIFACT_LOCATIONS)
    artifact_locations: tuple[str, ...] = ()

    @classmethod
    def from_env(cls) -> RedeployConfig:
        names = {n.strip() for n in os.environ.get(Env.MODEL_NAMES, os.environ.get(Env.MODEL_NAME, "")).split(",")}
        store = os.environ.get(Env.STORE, "").strip()
        if not store:
            raise MlserveError("missing required setting MLSERVE_STORE", code="bad_config")
        return cls(
            store_uri=store,
            bus=os.environ.get(Env.EVENT_BUS) or None,
            registry_uri=os.environ.get(Env.MLFLOW_TRACKING_URI) or os.environ.get("MLFLOW_TRACKING_URI") or None,
            alias=os.environ.get(Env.REGISTRY_ALIAS, "champion") or "champion",
            stage=os.environ.get(Env.PROMOTION_STAGE, "Production") or "Production",
            model_names=frozenset(n for n in names if n),
            allow_pickle=env_bool(Env.ALLOW_PICKLE, False),
            sagemaker_package_group=os.environ.get(Env.SAGEMAKER_PACKAGE_GROUP) or None,
            sagemaker_model_name=os.environ.get(Env.SAGEMAKER_MODEL_NAME) or os.environ.get(Env.MODEL_NAME) or None,
            work_dir=Path(os.environ.get(Env.CACHE_DIR) or tempfile.gettempdir()) / "mlserve-redeploy",
            artifact_locations=ArtifactPolicy.from_env(None).locations,
        )


@dataclass
class RedeployOutcome:
    status: str  # deployed | already_live | superseded | failed | ignored
    model_name: str | None = None
    version: str | None = None
    reason: str | None = None
    code: str | None = None
    manifest_key: str | None = None
    live_version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


class RestRegistry:
    """Registry lookups and artifact resolution over MLflow REST."""

    def __init__(
        self,
        rest: MlflowRest,
        *,
        alias: str,
        stage: str,
        s3_client: Any = None,
        policy: ArtifactPolicy | None = None,
    ) -> None:
        self.rest = rest
        self.alias = alias
        self.stage = stage
        self.s3_client = s3_client
        self.policy = policy or ArtifactPolicy(registry_uri=rest.base)

    def version_by_alias(self, name: str, alias: str) -> str | None:
        info = self.rest.version_by_alias(name, alias)
        return info.version if info else None

    def latest_in_stage(self, name: str, stage: str) -> str | None:
        latest = self.rest.latest_in_stage(name, stage)
        return latest.version if latest else None

    def current_target(self, promotion: ModelPromoted) -> str | None:
        return current_target(self, promotion, alias=self.alias, stage=self.stage)

    def resolve(self, promotion: ModelPromoted, dest: Path) -> Resolved:
        # The artifact is whatever the registry says for this version (never the event's
        # artifact_uri), and only from an allowed location.
        info = self.rest.get_version(promotion.model_name, promotion.version)
        uri = self.policy.check(self.rest.download_uri(promotion.model_name, promotion.version))
        model_dir = download_model(uri, dest, rest=self.rest, s3_client=self.s3_client)
        force = info.tags.get(FORCE_TAG, "").strip().lower() == "true"
        return Resolved(model_dir, f"models:/{promotion.model_name}/{promotion.version} ({uri})", info.run_id, force)


def artifact_only_resolver(s3_client: Any = None, policy: ArtifactPolicy | None = None) -> Resolver:
    """No registry configured: the operator's event carries artifact_uri (`mlserve promote
    --no-registry --artifact-uri`), accepted only under an allowed location."""
    policy = policy or ArtifactPolicy()

    def resolve(promotion: ModelPromoted, dest: Path) -> Resolved:
        if not promotion.artifact_uri:
            raise RegistryError("no registry is configured and the event has no artifact_uri")
        uri = policy.check(promotion.artifact_uri)
        return Resolved(download_model(uri, dest, rest=None, s3_client=s3_client), uri, promotion.run_id)

    return resolve


def sagemaker_routes(
    sagemaker: SageMakerRegistry | None,
    policy: ArtifactPolicy,
    target_lookup: TargetLookup,
    resolver: Resolver,
    s3_client: Any = None,
) -> tuple[TargetLookup, Resolver]:
    """SageMaker promotions go to SageMaker's registry: the newest approved package wins
    (out-of-order guard) and the artifact comes from DescribeModelPackage."""

    def no_group() -> RegistryError:
        return RegistryError("a SageMaker promotion, but no sagemaker_model_package_group is configured")

    def target(promotion: ModelPromoted) -> str | None:
        if promotion.source != "sagemaker":
            return target_lookup(promotion)
        if sagemaker is None:
            raise no_group()
        return sagemaker.current_target(promotion)

    def resolve(promotion: ModelPromoted, dest: Path) -> Resolved:
        if promotion.source != "sagemaker":
            return resolver(promotion, dest)
        if sagemaker is None:
            raise no_group()
        model_dir, info = sagemaker.download(promotion.version, dest, policy, s3_client=s3_client)
        return Resolved(model_dir, f"{info.arn} ({info.artifact_uri})", info.run_id, info.force)

    return target, resolve


def attempt_manifest(promotion: ModelPromoted, status: str, code: str, reason: str) -> dict[str, Any]:
    """The manifest of an attempt that ended before staging wrote its own (superseded, failed)."""
    now = utc_now()
    return {
        "deployment_id": deployment_id(promotion.version),
        "model_name": promotion.model_name,
        "version": promotion.version,
        "status": status,
        "code": code,
        "reason": reason,
        "source": promotion.source,
        "requested_by": promotion.requested_by,
        "source_event": promotion.to_detail(),
        "started_at": now,
        "finished_at": now,
    }


class Redeployer:
    def __init__(
        self,
        config: RedeployConfig,
        *,
        store: ModelStore | None = None,
        events_client: Any = None,
        target_lookup: TargetLookup | None = None,
        resolver: Resolver | None = None,
        s3_client: Any = None,
        sagemaker_client: Any = None,
    ) -> None:
        self.config = config
        self.store = store or open_store(config.store_uri, s3_client=s3_client)
        self.events_client = events_client
        self.policy = ArtifactPolicy(config.artifact_locations, config.registry_uri)
        if target_lookup is None or resolver is None:
            default_target: TargetLookup
            default_resolver: Resolver
            if config.registry_uri:
                registry = RestRegistry(
                    MlflowRest.from_env(config.registry_uri),
                    alias=config.alias,
                    stage=config.stage,
                    s3_client=s3_client,
                    policy=self.policy,
                )
                default_target, default_resolver = registry.current_target, registry.resolve
            else:
                default_target, default_resolver = (
                    (lambda promotion: None),
                    artifact_only_resolver(s3_client, self.policy),
                )
            group = config.sagemaker_package_group
            default_target, default_resolver = sagemaker_routes(
                SageMakerRegistry(group, sagemaker_client) if group else None,
                self.policy,
                default_target,
                default_resolver,
                s3_client,
            )
            target_lookup = target_lookup or default_target
            resolver = resolver or default_resolver
        self.target_lookup: TargetLookup = target_lookup
        self.resolver: Resolver = resolver

    # -- entry points -----------------------------------------------------------------------
    def handle_event(self, event: dict[str, Any]) -> RedeployOutcome:
        clear_model_keys()  # the model of a previous invocation is not this one's
        try:
            promotion = promotion_from_eventbridge(
                event, package_group=self.config.sagemaker_package_group, model_name=self.config.sagemaker_model_name
            )
        except EventError as exc:
            # Malformed or unsafe (a name/version that is not a plain name): nothing to retry,
            # and nothing is written (the name may not even be a valid store key).
            logger.error("event refused: %s", exc)
            return RedeployOutcome("failed", reason=str(exc), code=exc.code)
        if promotion is None:
            logger.info("event ignored: not an approval for the configured package group")
            return RedeployOutcome("ignored", reason="not an approval for the configured package group")
        return self.redeploy(promotion)

    def redeploy(self, promotion: ModelPromoted) -> RedeployOutcome:
        """Run one redeploy attempt and record its outcome: EMF ``Redeploys`` (+ seconds) with
        model_name, model_version and outcome dimensions. ``ignored`` is not an attempt (a
        model this stack does not serve) and gets no metric; a transient failure counts as
        ``failed`` before it is re-raised; anything unexpected as ``error``."""
        name, version = promotion.model_name, promotion.version
        if self.config.model_names and name not in self.config.model_names:
            logger.info("promotion ignored: the model is not deployed by this stack")
            return RedeployOutcome("ignored", name, version, reason=f"model {name!r} is not deployed by this stack")
        set_model_keys(name, version)
        started = time.monotonic()
        status = "error"
        try:
            outcome = self._redeploy(promotion)
            status = outcome.status
            return outcome
        except TransientRedeployError:
            status = "failed"  # ModelDeploymentFailed was emitted; Lambda retries
            raise
        finally:
            seconds = time.monotonic() - started
            record_redeploy(status, name, version, seconds=seconds)
            logger.info("redeploy of %s v%s: %s in %.2fs", name, version, status, seconds)

    def _redeploy(self, promotion: ModelPromoted) -> RedeployOutcome:
        name, version = promotion.model_name, promotion.version
        try:
            outcome = self._superseded(promotion)
            if outcome is not None:
                return outcome
            live = read_pointer(self.store, name)
            if live is not None and live["version"] == version:
                logger.info("%s v%s is already live: nothing to do", name, version)
                return RedeployOutcome("already_live", name, version, live_version=version)
        except RegistryError as exc:
            return self._fail(
                promotion,
                f"registry lookup failed: {exc}",
                "registry_unavailable" if exc.transient else "registry_error",
            )
        except MlserveError as exc:
            return self._fail(promotion, str(exc), exc.code)

        self.config.work_dir.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f"{name}-v{version}-", dir=self.config.work_dir))
        try:
            try:
                resolved = self.resolver(promotion, work / "model")
            except RegistryError as exc:
                code = "registry_unavailable" if exc.transient else "artifact_unavailable"
                return self._fail(promotion, f"could not fetch the artifact: {exc}", code)
            except MlserveError as exc:
                return self._fail(promotion, f"could not fetch the artifact: {exc}", exc.code)
            except Exception as exc:  # S3/boto errors while downloading
                return self._fail(
                    promotion, f"could not fetch the artifact: {type(exc).__name__}: {exc}", "store_error"
                )
            try:
                result = stage_and_activate(
                    self.store,
                    StageRequest(
                        name=name,
                        version=version,
                        model_dir=resolved.model_dir,
                        source=resolved.source_uri,
                        run_id=resolved.run_id or promotion.run_id,
                        promoted_by=f"{promotion.source}:{promotion.requested_by or 'unknown'}",
                        source_event=promotion.to_detail(),
                        allow_pickle=self.config.allow_pickle,
                        extra={"promotion_source": promotion.source, "registry_uri": promotion.registry_uri},
                        force=promotion.force or resolved.force,
                        before_activate=lambda: self._recheck(promotion),
                    ),
                )
            except StagingError as exc:
                if exc.code == "superseded":
                    return RedeployOutcome("superseded", name, version, reason=str(exc), code=exc.code)
                return self._fail(promotion, str(exc), exc.code, manifest_written=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        self._emit(
            MODEL_DEPLOYED,
            outcome_detail(
                promotion,
                "deployed",
                deployment_id=result.pointer["deployment_id"],
                manifest=result.manifest_key,
                previous_version=(live or {}).get("version"),
                run_id=result.pointer.get("run_id"),
            ),
        )
        logger.info("%s v%s is live (was %s)", name, version, (live or {}).get("version"))
        return RedeployOutcome("deployed", name, version, manifest_key=result.manifest_key, live_version=version)

    # -- helpers -----------------------------------------------------------------------------
    def _superseded(self, promotion: ModelPromoted) -> RedeployOutcome | None:
        target = self.target_lookup(promotion)
        if target is None or target == promotion.version:
            return None
        reason = (
            f"the registry now promotes version {target}"
            if target
            else "the version is no longer promoted in the registry"
        )
        logger.warning("%s v%s superseded: %s", promotion.model_name, promotion.version, reason)
        key = write_manifest(
            self.store, promotion.model_name, attempt_manifest(promotion, "superseded", "superseded", reason)
        )
        return RedeployOutcome(
            "superseded", promotion.model_name, promotion.version, reason=reason, code="superseded", manifest_key=key
        )

    def _recheck(self, promotion: ModelPromoted) -> None:
        try:
            target = self.target_lookup(promotion)
        except RegistryError as exc:
            raise StagingError(
                f"could not re-check the registry before switching: {exc}", code="registry_unavailable"
            ) from exc
        if target is not None and target != promotion.version:
            raise StagingError(
                f"superseded while staging: the registry now promotes version {target or 'none'}", code="superseded"
            )

    def _fail(
        self, promotion: ModelPromoted, reason: str, code: str, *, manifest_written: bool = False
    ) -> RedeployOutcome:
        key = None
        if not manifest_written:
            manifest = attempt_manifest(promotion, "failed", code, reason)
            try:
                key = write_manifest(self.store, promotion.model_name, manifest)
            except Exception as exc:
                logger.error("could not write the failed manifest: %s", exc)
        logger.error("redeploy of %s v%s refused: [%s] %s", promotion.model_name, promotion.version, code, reason)
        self._emit(MODEL_DEPLOYMENT_FAILED, outcome_detail(promotion, "failed", code=code, reason=reason, manifest=key))
        if code in TRANSIENT_CODES:
            raise TransientRedeployError(f"[{code}] {reason}")
        return RedeployOutcome(
            "failed", promotion.model_name, promotion.version, reason=reason, code=code, manifest_key=key
        )

    def _emit(self, detail_type: str, detail: dict[str, Any]) -> None:
        if not self.config.bus:
            return
        if self.events_client is None:
            import boto3

            self.events_client = boto3.client("events")
        try:
            put_event(self.events_client, self.config.bus, detail_type, detail)
        except Exception as exc:  # the deploy outcome stands; the manifest is the record
            logger.error("could not emit %s: %s", detail_type, exc)
