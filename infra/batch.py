"""Batch scoring: CSVs dropped into `incoming/` of a batch bucket are scored by a Lambda
that writes `results/`. Self-contained: everything it needs comes in as parameters, so
the stack only has to pass the model bucket, the layers and config values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from constructs import Construct

ROOT = Path(__file__).resolve().parent.parent
INCOMING_PREFIX = "incoming/"
SUFFIXES = (".csv", ".csv.gz")


def batch_code() -> lambda_.Code:
    """The `lambda_batch` package (and nothing else) at the root of the asset, so the
    handler is `lambda_batch.handler.handler`; `mlserve` and third-party code come from layers."""
    return lambda_.Code.from_asset(
        str(ROOT),
        exclude=["*", ".*", "!lambda_batch", "!lambda_batch/*.py"],
    )


class BatchScoring(Construct):
    """Batch bucket + S3-triggered scoring function + DLQ + least-privilege role."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        model_bucket: s3.IBucket,
        model_name: str,
        layers: Sequence[lambda_.ILayerVersion],
        access_log_bucket: s3.IBucket,
        model_store_prefix: str = "",
        results_prefix: str = "results/",
        reserved_concurrency: int | None = 2,
        memory_size: int = 2048,
        timeout: Duration | None = None,
        retry_attempts: int = 2,
        architecture: lambda_.Architecture | None = None,
        refresh_seconds: float = 15.0,
        allow_pickle: bool = False,
        probabilities: bool = False,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        code: lambda_.Code | None = None,
        extra_environment: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        if not results_prefix.endswith("/") or results_prefix.startswith(INCOMING_PREFIX):
            # Results under incoming/ would re-trigger the function forever.
            raise ValueError(f"results_prefix must end with '/' and not be under {INCOMING_PREFIX}: {results_prefix!r}")
        store_prefix = model_store_prefix.strip("/")
        model_keys = f"{store_prefix + '/' if store_prefix else ''}models/{model_name}/*"

        self.bucket = s3.Bucket(
            self,
            "Bucket",
            versioned=True,  # the event's versionId pins what is scored; overwrites keep history
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=access_log_bucket,
            server_access_logs_prefix="batch-bucket/",
            removal_policy=removal_policy,
            auto_delete_objects=False,
            lifecycle_rules=[
                # A crashed invocation can leave a multipart upload behind; S3 bills for its parts.
                s3.LifecycleRule(
                    id="abort-incomplete-uploads", abort_incomplete_multipart_upload_after=Duration.days(1)
                ),
                s3.LifecycleRule(id="expire-old-versions", noncurrent_version_expiration=Duration.days(30)),
            ],
        )

        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )

        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="mlserve batch scoring: read incoming/ and the model, write results/ only",
        )
        self.log_group = logs.LogGroup(self, "Logs", retention=log_retention, removal_policy=removal_policy)
        self.log_group.grant_write(self.role)
        self.bucket.grant_read(self.role, f"{INCOMING_PREFIX}*")
        self.bucket.grant_put(self.role, f"{results_prefix}*")
        # The idempotency marker is read back to tell a duplicate from a retry.
        self.bucket.grant_read(self.role, f"{results_prefix}.markers/*")
        model_bucket.grant_read(self.role, model_keys)

        environment = {
            "MLSERVE_STORE": f"s3://{model_bucket.bucket_name}" + (f"/{store_prefix}" if store_prefix else ""),
            "MLSERVE_MODEL_NAME": model_name,
            "MLSERVE_RESULTS_PREFIX": results_prefix,
            "MLSERVE_REFRESH_SECONDS": str(refresh_seconds),
            "MLSERVE_ALLOW_PICKLE": "true" if allow_pickle else "false",
            "MLSERVE_BATCH_PROBABILITIES": "true" if probabilities else "false",
            "POWERTOOLS_SERVICE_NAME": "mlserve-batch",
            **(extra_environment or {}),
        }
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=lambda_.Runtime.PYTHON_3_12,
            architecture=architecture or lambda_.Architecture.ARM_64,
            handler="lambda_batch.handler.handler",
            code=code or batch_code(),
            layers=list(layers),
            role=self.role,
            memory_size=memory_size,
            timeout=timeout or Duration.minutes(15),
            ephemeral_storage_size=None,
            reserved_concurrent_executions=reserved_concurrency,
            environment=environment,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE,
            # Async invocation: retry, then park the event in the DLQ for a re-drive.
            retry_attempts=retry_attempts,
            max_event_age=Duration.hours(6),
            on_failure=destinations.SqsDestination(self.dead_letter_queue),
        )

        for suffix in SUFFIXES:
            self.bucket.add_event_notification(
                s3.EventType.OBJECT_CREATED,
                s3n.LambdaDestination(self.function),
                s3.NotificationKeyFilter(prefix=INCOMING_PREFIX, suffix=suffix),
            )
