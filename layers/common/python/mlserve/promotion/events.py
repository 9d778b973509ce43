"""The one event shape every promotion source becomes, and the outcome events.

On the project's EventBridge bus:

    source       "mlserve.registry"
    detail-type  "ModelPromoted" | "ModelDeployed" | "ModelDeploymentFailed"
    detail       see `ModelPromoted` (promotions) and `outcome_detail` (outcomes)

SageMaker Model Registry approvals arrive with source "aws.sagemaker" and detail-type
"SageMaker Model Package State Change"; `promotion_from_eventbridge` maps them to the
same `ModelPromoted`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mlserve.contract import (
    MODEL_PROMOTED,
    MODEL_PROMOTION_FORCED,
    REGISTRY_EVENT_SOURCE,
    SAGEMAKER_DETAIL_TYPE,
    SAGEMAKER_SOURCE,
)
from mlserve.errors import MlserveError
from mlserve.safe_paths import UnsafeNameError, check_model_name, check_version

if TYPE_CHECKING:  # boto3-stubs (dev only)
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

logger = logging.getLogger(__name__)

EVENT_SOURCE = REGISTRY_EVENT_SOURCE

SOURCES = ("mlflow-alias", "mlflow-stage", "cli", "sagemaker")


class EventError(MlserveError):
    """An event that cannot be turned into a promotion (malformed, wrong source)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="bad_event")


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class ModelPromoted:
    """detail of a `ModelPromoted` event."""

    model_name: str
    version: str
    source: str  # mlflow-alias | mlflow-stage | cli | sagemaker
    registry_uri: str | None = None
    run_id: str | None = None
    artifact_uri: str | None = None
    promoted_at: str = field(default_factory=utc_now)
    requested_by: str | None = None
    force: bool = False
    alias: str | None = None  # mlflow-alias / cli: the alias that was moved
    stage: str | None = None  # mlflow-stage: the stage it was moved to
    delivery_id: str | None = None  # webhook delivery or SageMaker event id

    def __post_init__(self) -> None:
        self.version = str(self.version)
        if not self.model_name or not self.version:
            raise EventError("a ModelPromoted event needs model_name and version")
        try:  # they become store keys and cache paths downstream
            self.model_name = check_model_name(self.model_name)
            self.version = check_version(self.version)
        except UnsafeNameError as exc:
            raise EventError(str(exc)) from None
        if self.source not in SOURCES:
            raise EventError(f"unknown promotion source {self.source!r} (expected one of {', '.join(SOURCES)})")

    def to_detail(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}

    @classmethod
    def from_detail(cls, detail: Any) -> ModelPromoted:
        if not isinstance(detail, dict):
            raise EventError("event detail is not an object")
        known = {f for f in cls.__dataclass_fields__}
        missing = [key for key in ("model_name", "version", "source") if not detail.get(key)]
        if missing:
            raise EventError(f"ModelPromoted detail is missing {', '.join(missing)}")
        kwargs = {key: value for key, value in detail.items() if key in known}
        kwargs["force"] = bool(detail.get("force", False))
        return cls(**kwargs)


def sagemaker_to_promotion(
    event: dict[str, Any], *, package_group: str | None, model_name: str | None
) -> ModelPromoted | None:
    """An approved model package in the configured group -> ModelPromoted; anything else -> None.

    The package's first container `ModelDataUrl` must point at the MLflow model directory
    (an s3:// prefix) or a `.tar.gz` of it.
    """
    detail = event.get("detail") or {}
    group = detail.get("ModelPackageGroupName")
    if detail.get("ModelApprovalStatus") != "Approved":
        return None
    if package_group and group != package_group:
        return None
    containers = (detail.get("InferenceSpecification") or {}).get("Containers") or []
    artifact = containers[0].get("ModelDataUrl") if containers else None
    version = detail.get("ModelPackageVersion")
    if version is None or not artifact:
        raise EventError("SageMaker approval has no ModelPackageVersion or ModelDataUrl")
    metadata = detail.get("CustomerMetadataProperties") or {}
    return ModelPromoted(
        model_name=model_name or str(group),
        version=str(version),
        source="sagemaker",
        registry_uri=detail.get("ModelPackageArn") or f"sagemaker:model-package-group/{group}",
        run_id=metadata.get("mlflow_run_id") or metadata.get("run_id"),
        artifact_uri=artifact,
        promoted_at=str(event.get("time") or utc_now()),
        requested_by=_sagemaker_actor(detail),
        force=str(metadata.get("mlserve_force", "")).lower() == "true",
        delivery_id=str(event.get("id")) if event.get("id") else None,
    )


def _sagemaker_actor(detail: dict[str, Any]) -> str:
    modified = detail.get("LastModifiedBy")
    if isinstance(modified, dict):
        user = modified.get("UserProfileName") or modified.get("IamIdentity", {}).get("Arn")
        if user:
            return str(user)
    return "sagemaker"


def promotion_from_eventbridge(
    event: dict[str, Any], *, package_group: str | None = None, model_name: str | None = None
) -> ModelPromoted | None:
    """Parse what the redeploy rule delivers. None means: not for us (ignore)."""
    if not isinstance(event, dict):
        raise EventError("event is not an object")
    detail_type = event.get("detail-type")
    if event.get("source") == SAGEMAKER_SOURCE and detail_type == SAGEMAKER_DETAIL_TYPE:
        promotion = sagemaker_to_promotion(event, package_group=package_group, model_name=model_name)
        if promotion is not None:
            # force comes from DescribeModelPackage (the registry), never from the event
            promotion.force = False
        return promotion
    if detail_type == MODEL_PROMOTED:
        promotion = ModelPromoted.from_detail(event.get("detail"))
        if promotion.force:
            logger.warning("'force' ignored: only a %s event (force_promoters) may force", MODEL_PROMOTION_FORCED)
            promotion.force = False
        return promotion
    if detail_type == MODEL_PROMOTION_FORCED:
        promotion = ModelPromoted.from_detail(event.get("detail"))
        promotion.force = True
        return promotion
    if "model_name" in event and "version" in event:  # a bare detail (direct invoke, CLI)
        return ModelPromoted.from_detail(event)
    raise EventError(f"unsupported event: source={event.get('source')!r} detail-type={detail_type!r}")


def promoted_pattern() -> dict[str, Any]:
    """EventBridge pattern of the rule that starts a redeploy for project promotions."""
    return {"source": [EVENT_SOURCE], "detail-type": [MODEL_PROMOTED, MODEL_PROMOTION_FORCED]}


def sagemaker_pattern(package_group: str) -> dict[str, Any]:
    """EventBridge pattern for SageMaker Model Registry approvals in one package group."""
    return {
        "source": [SAGEMAKER_SOURCE],
        "detail-type": [SAGEMAKER_DETAIL_TYPE],
        "detail": {"ModelPackageGroupName": [package_group], "ModelApprovalStatus": ["Approved"]},
    }


def entry(
    detail_type: str, detail: dict[str, Any], bus: str, resources: list[str] | None = None
) -> PutEventsRequestEntryTypeDef:
    return {
        "Source": EVENT_SOURCE,
        "DetailType": detail_type,
        "Detail": json.dumps(detail, default=str, sort_keys=True),
        "EventBusName": bus,
        "Resources": resources or [],
    }


def put_event(client: EventBridgeClient, bus: str, detail_type: str, detail: dict[str, Any]) -> str:
    """Put one event; raise if EventBridge refused it. Returns the event id."""
    response = client.put_events(Entries=[entry(detail_type, detail, bus)])
    if response.get("FailedEntryCount"):
        failed = response["Entries"][0]
        raise MlserveError(
            f"EventBridge refused the {detail_type} event: {failed.get('ErrorCode')} {failed.get('ErrorMessage')}",
            code="event_put_failed",
        )
    return str(response["Entries"][0].get("EventId", ""))


def outcome_detail(promotion: ModelPromoted, status: str, **extra: Any) -> dict[str, Any]:
    """detail of ModelDeployed / ModelDeploymentFailed."""
    return {
        "model_name": promotion.model_name,
        "version": promotion.version,
        "status": status,
        "promotion": promotion.to_detail(),
        "at": utc_now(),
        **{key: value for key, value in extra.items() if value is not None},
    }
