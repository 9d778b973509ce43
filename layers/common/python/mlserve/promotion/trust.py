"""What the redeploy trusts: artifact locations on an allow-list, and SageMaker's registry.

A promotion event says *which* version to deploy; *what* to deploy comes from the
registry (MLflow REST `get-download-uri`, or SageMaker `DescribeModelPackage`), never from
a URI in the event. Whatever URI the registry (or, without a registry, the operator's
event) names must lie under an allowed location:

- ``mlflow-artifacts:/…`` and ``<registry>/api/2.0/mlflow-artifacts/artifacts/…``: served by
  the configured registry itself (always allowed when a registry is configured);
- anything else (``s3://bucket/prefix/``, another server, ``file://``): only under a prefix
  named in MLSERVE_ARTIFACT_LOCATIONS (context ``artifact_locations`` plus the stack's own
  model bucket and configured artifact buckets).
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlserve.aws_clients import LazyClient
from mlserve.contract import Env
from mlserve.errors import MlserveError
from mlserve.promotion.events import ModelPromoted
from mlserve.promotion.mlflow_rest import ARTIFACTS_API, RegistryError, download_model

ARTIFACT_LOCATIONS_ENV = Env.ARTIFACT_LOCATIONS


class ArtifactLocationError(MlserveError):
    """The artifact is not in an allowed location: refused, never downloaded."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="artifact_location_refused")


def _normalized_prefix(uri: str) -> str:
    parsed = urllib.parse.urlparse(uri.strip())
    path = parsed.path if parsed.path.endswith("/") else parsed.path + "/"
    return f"{parsed.scheme.lower()}://{parsed.netloc.lower()}{path}"


@dataclass(frozen=True)
class ArtifactPolicy:
    """Allowed artifact locations: URI prefixes, compared on whole path segments."""

    locations: tuple[str, ...] = ()
    registry_uri: str | None = None

    @classmethod
    def from_env(cls, registry_uri: str | None) -> ArtifactPolicy:
        raw = os.environ.get(ARTIFACT_LOCATIONS_ENV, "")
        return cls(tuple(loc.strip() for loc in raw.split(",") if loc.strip()), registry_uri)

    def check(self, uri: str) -> str:
        """`uri` if allowed, else ArtifactLocationError naming the allowed locations."""
        parsed = urllib.parse.urlparse(uri)
        if ".." in parsed.path.split("/"):
            raise ArtifactLocationError(f"artifact URI {uri!r} contains '..'")
        if self.registry_uri:
            if parsed.scheme == "mlflow-artifacts" and not parsed.netloc:
                return uri  # proxied by the configured registry
            base = self.registry_uri.rstrip("/") + ARTIFACTS_API + "/"
            if uri.startswith(base):
                return uri
        candidate = _normalized_prefix(uri)
        for location in self.locations:
            if candidate.startswith(_normalized_prefix(location)):
                return uri
        allowed = ", ".join(self.locations) or "none configured"
        raise ArtifactLocationError(
            f"artifact {uri!r} is not in an allowed location (registry {self.registry_uri or 'none'}; "
            f"allowed: {allowed}); add it to context 'artifact_locations' if it is trusted"
        )


@dataclass
class PackageInfo:
    arn: str
    version: str
    artifact_uri: str
    run_id: str | None
    force: bool
    metadata: dict[str, str] = field(default_factory=dict)


class SageMakerRegistry:
    """SageMaker Model Registry as the source of truth for approvals in one package group."""

    def __init__(self, package_group: str, client: Any = None) -> None:
        self.package_group = package_group
        self._client = client

    client = LazyClient[Any]("sagemaker")

    def _approved(self) -> list[dict[str, Any]]:
        from botocore.exceptions import BotoCoreError, ClientError

        summaries: list[dict[str, Any]] = []
        try:
            paginator = self.client.get_paginator("list_model_packages")
            for page in paginator.paginate(
                ModelPackageGroupName=self.package_group, ModelApprovalStatus="Approved", ModelPackageType="Versioned"
            ):
                summaries.extend(page.get("ModelPackageSummaryList", []))
        except (ClientError, BotoCoreError) as exc:
            raise RegistryError(f"SageMaker ListModelPackages failed: {exc}", transient=True) from exc
        return summaries

    def newest_approved(self) -> str:
        """The newest approved package version ("" when none is approved)."""
        versions = [int(s["ModelPackageVersion"]) for s in self._approved() if s.get("ModelPackageVersion")]
        return str(max(versions)) if versions else ""

    def current_target(self, promotion: ModelPromoted) -> str | None:
        return self.newest_approved()

    def describe(self, version: str) -> PackageInfo:
        from botocore.exceptions import BotoCoreError, ClientError

        arn = next(
            (s["ModelPackageArn"] for s in self._approved() if str(s.get("ModelPackageVersion")) == str(version)),
            None,
        )
        if arn is None:
            raise RegistryError(f"version {version} of {self.package_group} is not an approved model package")
        try:
            package = self.client.describe_model_package(ModelPackageName=arn)
        except (ClientError, BotoCoreError) as exc:
            raise RegistryError(f"SageMaker DescribeModelPackage {arn} failed: {exc}", transient=True) from exc
        if package.get("ModelApprovalStatus") != "Approved" or package.get("ModelPackageGroupName") not in (
            None,
            self.package_group,
        ):
            raise RegistryError(f"{arn} is not an approved package of {self.package_group}")
        containers = (package.get("InferenceSpecification") or {}).get("Containers") or []
        artifact = containers[0].get("ModelDataUrl") if containers else None
        if not artifact:
            raise RegistryError(f"{arn} has no InferenceSpecification.Containers[0].ModelDataUrl")
        metadata = {str(k): str(v) for k, v in (package.get("CustomerMetadataProperties") or {}).items()}
        return PackageInfo(
            arn=arn,
            version=str(version),
            artifact_uri=str(artifact),
            run_id=metadata.get("mlflow_run_id") or metadata.get("run_id"),
            force=metadata.get("mlserve_force", "").lower() == "true",
            metadata=metadata,
        )

    def download(
        self, version: str, dest: Path, policy: ArtifactPolicy, s3_client: Any = None
    ) -> tuple[Path, PackageInfo]:
        info = self.describe(version)
        policy.check(info.artifact_uri)
        return download_model(info.artifact_uri, dest, rest=None, s3_client=s3_client), info
