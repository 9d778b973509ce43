"""The model store bucket: versions, live pointer and deployment manifests live here."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import ServingConfig


def hardened_bucket(scope: Construct, construct_id: str, *, config: ServingConfig, **extra: Any) -> s3.Bucket:
    """A bucket with the hardening every mlserve bucket shares: SSE-S3, versioned, SSL only,
    public access blocked, owner-enforced; deleted with the stack in dev, kept in prod.
    `extra` adds what one bucket needs (access logs, lifecycle rules, CORS)."""
    return s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        versioned=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        # In dev, `cdk destroy` must be able to delete non-empty buckets; in prod the
        # models, results and the audit trail outlive the stack.
        removal_policy=RemovalPolicy.RETAIN if config.is_prod else RemovalPolicy.DESTROY,
        auto_delete_objects=not config.is_prod,
        **extra,
    )


class ModelStore(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: ServingConfig) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.access_log_bucket = hardened_bucket(
            self,
            "AccessLogs",
            config=config,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=Duration.days(max(config.log_retention_days, 1)),
                    noncurrent_version_expiration=Duration.days(1),
                )
            ],
        )
        self.bucket = hardened_bucket(
            self,
            "Bucket",
            config=config,
            server_access_logs_bucket=self.access_log_bucket,
            server_access_logs_prefix="model-bucket/",
        )

    @property
    def store_uri(self) -> str:
        return f"s3://{self.bucket.bucket_name}"

    def model_prefix(self, model_name: str | None = None) -> str:
        return f"models/{model_name or self.config.model_name}/"

    def grant_read_model(self, grantee: iam.IGrantable, model_name: str | None = None) -> None:
        """Read-only access to one model's prefix: versions, live pointer, manifests."""
        prefix = self.model_prefix(model_name)
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadModelObjects",
                actions=["s3:GetObject"],
                resources=[self.bucket.arn_for_objects(f"{prefix}*")],
            )
        )
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ListModelPrefix",
                actions=["s3:ListBucket"],
                resources=[self.bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{prefix}*"]}},
            )
        )
