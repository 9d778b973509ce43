"""High 2: anyone who could put an event on the bus could deploy any model. The redeploy
now takes artifacts only from the registry (MLflow REST / SageMaker DescribeModelPackage),
only from allowed locations, honours `force` only from a ModelPromotionForced event (which
the bus policy reserves for force_promoters, see tests/infra/test_bus_policy.py), and a
stale SageMaker approval loses to the newest approved package."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import boto3
import pytest

from mlserve.promotion.events import ModelPromoted
from mlserve.promotion.redeploy import RedeployConfig, Redeployer, RestRegistry
from mlserve.promotion.trust import ArtifactLocationError, ArtifactPolicy
from mlserve.store import live_key
from tests.integration.promotion.conftest import BUS, MODEL, MODEL_BUCKET, Aws, aws  # noqa: F401

GROUP = "mlserve-demo-group"
REGISTRY_BUCKET = "sagemaker-registry-bucket"


def upload_dir(s3: Any, bucket: str, prefix: str, src: Path) -> None:
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        s3.put_object(Bucket=bucket, Key=prefix + path.relative_to(src).as_posix(), Body=path.read_bytes())


def live(aws: Aws) -> dict[str, Any] | None:  # noqa: F811
    try:
        return dict(json.loads(aws.s3.get_object(Bucket=MODEL_BUCKET, Key=live_key(MODEL))["Body"].read()))
    except aws.s3.exceptions.NoSuchKey:
        return None


@pytest.fixture
def sagemaker(aws: Aws, demo_registry: Any) -> Any:  # noqa: F811
    """A SageMaker package group in moto with approved packages 1 and 2 (both the
    classifier), whose artifacts live in REGISTRY_BUCKET."""
    client = boto3.client("sagemaker", region_name="us-east-1")
    aws.s3.create_bucket(Bucket=REGISTRY_BUCKET)
    client.create_model_package_group(ModelPackageGroupName=GROUP)
    for version in ("1", "2"):
        upload_dir(aws.s3, REGISTRY_BUCKET, f"models/demo/{version}/", demo_registry.classifier_dir)
        client.create_model_package(
            ModelPackageGroupName=GROUP,
            ModelApprovalStatus="Approved",
            InferenceSpecification={
                "Containers": [
                    {"Image": "x", "ModelDataUrl": f"s3://{REGISTRY_BUCKET}/models/demo/{version}/"},
                ],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
        )
    return client


def sagemaker_event(version: str, artifact: str) -> dict[str, Any]:
    return {
        "source": "aws.sagemaker",
        "detail-type": "SageMaker Model Package State Change",
        "id": f"evt-{version}",
        "detail": {
            "ModelPackageGroupName": GROUP,
            "ModelPackageVersion": int(version),
            "ModelApprovalStatus": "Approved",
            "InferenceSpecification": {"Containers": [{"ModelDataUrl": artifact}]},
            "CustomerMetadataProperties": {"mlserve_force": "true"},
        },
    }


def sagemaker_redeployer(aws: Aws, tmp_path: Path, locations: tuple[str, ...]) -> Redeployer:  # noqa: F811
    config = RedeployConfig(
        store_uri=f"s3://{MODEL_BUCKET}",
        bus=BUS,
        sagemaker_package_group=GROUP,
        sagemaker_model_name=MODEL,
        artifact_locations=locations,
        work_dir=tmp_path / "work",
    )
    return Redeployer(
        config,
        events_client=aws.events,
        s3_client=aws.s3,
        sagemaker_client=boto3.client("sagemaker", region_name="us-east-1"),
    )


def test_sagemaker_artifact_comes_from_describe_model_package_not_the_event(
    aws: Aws,  # noqa: F811
    sagemaker: Any,
    tmp_path: Path,
) -> None:
    """Attack: a forged approval names an attacker's artifact. The redeploy asks SageMaker
    for package 2's ModelDataUrl instead and deploys that."""
    redeployer = sagemaker_redeployer(aws, tmp_path, (f"s3://{REGISTRY_BUCKET}/models/",))
    outcome = redeployer.handle_event(sagemaker_event("2", "https://attacker.example/model.tar.gz"))
    assert outcome.status == "deployed", outcome
    pointer = live(aws)
    assert pointer is not None and pointer["version"] == "2"
    assert f"s3://{REGISTRY_BUCKET}/models/demo/2/" in pointer["source"]
    assert "attacker" not in json.dumps(pointer["source"])


def test_sagemaker_artifact_outside_the_allow_list_is_refused(
    aws: Aws,  # noqa: F811
    sagemaker: Any,
    tmp_path: Path,
) -> None:
    redeployer = sagemaker_redeployer(aws, tmp_path, ("s3://some-other-bucket/",))
    outcome = redeployer.handle_event(sagemaker_event("2", f"s3://{REGISTRY_BUCKET}/models/demo/2/"))
    assert (outcome.status, outcome.code) == ("failed", "artifact_location_refused")
    assert live(aws) is None


def test_stale_sagemaker_approval_loses_to_the_newest_approved_package(
    aws: Aws,  # noqa: F811
    sagemaker: Any,
    tmp_path: Path,
) -> None:
    """Out of order: the approval of package 1 arrives after package 2 was approved."""
    redeployer = sagemaker_redeployer(aws, tmp_path, (f"s3://{REGISTRY_BUCKET}/",))
    assert redeployer.handle_event(sagemaker_event("2", "ignored")).status == "deployed"
    outcome = redeployer.handle_event(sagemaker_event("1", "ignored"))
    assert outcome.status == "superseded" and "version 2" in (outcome.reason or "")
    assert (live(aws) or {}).get("version") == "2"


def test_sagemaker_event_for_an_unapproved_version_is_refused(
    aws: Aws,  # noqa: F811
    sagemaker: Any,
    tmp_path: Path,
) -> None:
    sagemaker.update_model_package(
        ModelPackageArn=sagemaker.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"][-1][
            "ModelPackageArn"
        ],
        ModelApprovalStatus="Rejected",
    )
    redeployer = sagemaker_redeployer(aws, tmp_path, (f"s3://{REGISTRY_BUCKET}/",))
    outcome = redeployer.redeploy(ModelPromoted(MODEL, "9", "sagemaker"))
    assert outcome.status == "superseded"
    assert live(aws) is None


def test_registry_less_event_artifact_must_be_in_an_allowed_location(
    aws: Aws,  # noqa: F811
    demo_registry: Any,
    tmp_path: Path,
) -> None:
    """Without a registry the operator's event names the artifact: only allowed prefixes."""
    aws.s3.create_bucket(Bucket="attacker-bucket")
    upload_dir(aws.s3, "attacker-bucket", "m/", demo_registry.classifier_dir)
    upload_dir(aws.s3, MODEL_BUCKET, "artifacts/m/", demo_registry.classifier_dir)
    config = RedeployConfig(
        store_uri=f"s3://{MODEL_BUCKET}",
        bus=BUS,
        artifact_locations=(f"s3://{MODEL_BUCKET}/artifacts/",),
        work_dir=tmp_path / "w",
    )
    redeployer = Redeployer(config, events_client=aws.events, s3_client=aws.s3)
    refused = redeployer.redeploy(ModelPromoted(MODEL, "1", "cli", artifact_uri="s3://attacker-bucket/m/"))
    assert (refused.status, refused.code) == ("failed", "artifact_location_refused")
    # a prefix that only shares leading characters is not inside the allowed one
    sneaky = redeployer.redeploy(ModelPromoted(MODEL, "1", "cli", artifact_uri=f"s3://{MODEL_BUCKET}/artifacts-x/m/"))
    assert sneaky.code == "artifact_location_refused"
    assert live(aws) is None
    ok = redeployer.redeploy(ModelPromoted(MODEL, "1", "cli", artifact_uri=f"s3://{MODEL_BUCKET}/artifacts/m/"))
    assert ok.status == "deployed"


def test_force_in_a_plain_model_promoted_event_is_ignored(
    aws: Aws,  # noqa: F811
    demo_registry: Any,
    tmp_path: Path,
) -> None:
    """Attack: `force: true` in a ModelPromoted event skipped the signature check. Only a
    ModelPromotionForced event (bus policy: force_promoters only) forces now."""
    dirs = {"1": demo_registry.classifier_dir, "7": demo_registry.regressor_dir}

    def resolve(promotion: ModelPromoted, dest: Path) -> Any:
        from mlserve.promotion.redeploy import Resolved

        return Resolved(Path(shutil.copytree(dirs[promotion.version], dest)), f"test:{promotion.version}", None)

    config = RedeployConfig(store_uri=f"s3://{MODEL_BUCKET}", bus=BUS, work_dir=tmp_path / "w")
    redeployer = Redeployer(
        config, events_client=aws.events, s3_client=aws.s3, target_lookup=lambda p: None, resolver=resolve
    )

    def event(detail_type: str, version: str) -> dict[str, Any]:
        detail = {"model_name": MODEL, "version": version, "source": "cli", "force": True}
        return {"source": "mlserve.registry", "detail-type": detail_type, "detail": detail}

    assert redeployer.handle_event(event("ModelPromoted", "1")).status == "deployed"
    refused = redeployer.handle_event(event("ModelPromoted", "7"))
    assert refused.code == "breaking_signature"
    assert (live(aws) or {}).get("version") == "1"
    assert redeployer.handle_event(event("ModelPromotionForced", "7")).status == "deployed"


def test_mlflow_registry_download_uri_outside_the_allow_list_is_refused(tmp_path: Path) -> None:
    """The registry itself answering with a foreign location is refused before any download."""
    from mlserve.promotion.mlflow_rest import MlflowRest, VersionInfo

    class Registry(MlflowRest):
        def get_version(self, name: str, version: str) -> VersionInfo:
            return VersionInfo(name, version, None, None, None, [])

        def download_uri(self, name: str, version: str) -> str:
            return "https://attacker.example/api/2.0/mlflow-artifacts/artifacts/m"

    rest = Registry("https://mlflow.internal")
    registry = RestRegistry(rest, alias="champion", stage="Production")
    with pytest.raises(ArtifactLocationError):
        registry.resolve(ModelPromoted(MODEL, "1", "mlflow-alias"), tmp_path / "m")
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    "uri,allowed",
    [
        ("mlflow-artifacts:/1/abc/artifacts/model", True),
        ("mlflow-artifacts://evil:5000/1/model", False),
        ("https://mlflow.internal/api/2.0/mlflow-artifacts/artifacts/1/m", True),
        ("https://mlflow.internal.evil/api/2.0/mlflow-artifacts/artifacts/1/m", False),
        ("s3://bucket/models/a/", True),
        ("s3://bucket/models/../secrets/", False),
        ("s3://bucket/modelsx/", False),
        ("s3://BUCKET/models/a", True),
        ("file:///etc/", False),
    ],
)
def test_artifact_policy(uri: str, allowed: bool) -> None:
    policy = ArtifactPolicy(("s3://bucket/models/",), registry_uri="https://mlflow.internal")
    if allowed:
        assert policy.check(uri) == uri
    else:
        with pytest.raises(ArtifactLocationError):
            policy.check(uri)
