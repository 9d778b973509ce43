"""The model store bucket: versions, live pointer and deployment manifests live here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import ServingConfig


@dataclass(frozen=True)
class ModelStoreProps:
    """What the model store uses: whose prefix it grants, how long access logs live, and
    whether the buckets outlive the stack (prod)."""

    model_name: str
    log_retention_days: int
    is_prod: bool

    @classmethod
    def from_config(cls, config: ServingConfig) -> ModelStoreProps:
        return cls(model_name=config.model_name, log_retention_days=config.log_retention_days, is_prod=config.is_prod)


def hardened_bucket(scope: Construct, construct_id: str, *, is_prod: bool, **extra: Any) -> s3.Bucket:
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
        removal_policy=RemovalPolicy.RETAIN if is_prod else RemovalPolicy.DESTROY,
        auto_delete_objects=not is_prod,
        **extra,
    )


class ModelStore(Construct):
    """The model bucket (and its access-log bucket); grants a function read, or read/write,
    of one model's prefix."""

    def __init__(self, scope: Construct, construct_id: str, *, props: ModelStoreProps) -> None:
        super().__init__(scope, construct_id)
        self.props = props
        self.access_log_bucket = hardened_bucket(
            self,
            "AccessLogs",
            is_prod=props.is_prod,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=Duration.days(max(props.log_retention_days, 1)),
                    noncurrent_version_expiration=Duration.days(1),
                )
            ],
        )
        self.bucket = hardened_bucket(
            self,
            "Bucket",
            is_prod=props.is_prod,
            server_access_logs_bucket=self.access_log_bucket,
            server_access_logs_prefix="model-bucket/",
        )

    @property
    def store_uri(self) -> str:
        return f"s3://{self.bucket.bucket_name}"

    def model_prefix(self, model_name: str | None = None) -> str:
        return f"models/{model_name or self.props.model_name}/"

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

    def grant_read_write_model(self, grantee: iam.IGrantable, model_name: str | None = None) -> None:
        """Read and write (no delete: versions are immutable, manifests are the audit trail)
        of one model's keys, and list only under its prefix: what a redeploy needs."""
        prefix = self.model_prefix(model_name)
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadWriteModelObjects",
                actions=["s3:GetObject", "s3:PutObject"],
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
        if self.bucket.encryption_key is not None:
            self.bucket.encryption_key.grant_encrypt_decrypt(grantee)
