"""Batch scoring: CSVs dropped into `incoming/` of a batch bucket are scored by a Lambda
that writes `results/`.

The function comes from the stack's ``FunctionFactory`` (runtime, architecture, layers,
logs, X-Ray, MLSERVE_* env, async retries + on-failure DLQ + reserved concurrency), so this
construct only adds the batch bucket, the grants and the S3 notifications.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import FunctionSettings, ServingConfig
from infra.functions import AsyncInvocation, FunctionFactory, ServingFunction
from infra.model_store import ModelStore, hardened_bucket
from infra.nag import acknowledge, logical_id_ref
from mlserve.contract import INCOMING_PREFIX, RESULTS_PREFIX, Env

BATCH_HANDLER = "lambda_batch.handler.handler"
SUFFIXES = (".csv", ".csv.gz")
# Lambda drops an async event older than this; a longer outage leaves it in the DLQ.
MAX_EVENT_AGE = Duration.hours(6)


@dataclass(frozen=True)
class BatchScoringProps:
    """What batch scoring uses of the configuration (context batch_*, upload_cors_origins)."""

    model_name: str
    is_prod: bool
    function: FunctionSettings
    probabilities: bool
    max_bytes: int
    max_record_bytes: int
    max_columns: int
    max_decompression_ratio: float
    escape_formulas: bool
    retry_attempts: int
    reserved_concurrency: int | None
    retention_days: int
    upload_cors_origins: tuple[str, ...]

    @classmethod
    def from_config(cls, config: ServingConfig) -> BatchScoringProps:
        return cls(
            model_name=config.model_name,
            is_prod=config.is_prod,
            function=config.batch_function,
            probabilities=config.batch_probabilities,
            max_bytes=config.batch_max_bytes,
            max_record_bytes=config.batch_max_record_bytes,
            max_columns=config.batch_max_columns,
            max_decompression_ratio=config.batch_max_decompression_ratio,
            escape_formulas=config.batch_escape_formulas,
            retry_attempts=config.batch_retry_attempts,
            reserved_concurrency=config.batch_reserved_concurrency,
            retention_days=config.batch_retention_days,
            upload_cors_origins=config.upload_cors_origins,
        )


class BatchScoring(Construct):
    """Batch bucket + S3-triggered scoring function + DLQ + least-privilege role."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: BatchScoringProps,
        functions: FunctionFactory,
        model_store: ModelStore,
        results_prefix: str = RESULTS_PREFIX,
    ) -> None:
        super().__init__(scope, construct_id)
        if not results_prefix.endswith("/") or results_prefix.startswith(INCOMING_PREFIX):
            # Results under incoming/ would re-trigger the function forever.
            raise ValueError(f"results_prefix must end with '/' and not be under {INCOMING_PREFIX}: {results_prefix!r}")
        self.props = props
        self.results_prefix = results_prefix

        # Same hardening as the model bucket (infra/model_store.py), plus lifecycle rules
        # for what batch runs leave behind.
        # Versioned (by hardened_bucket): the event's versionId pins what is scored.
        self.bucket = hardened_bucket(
            self,
            "Bucket",
            is_prod=props.is_prod,
            server_access_logs_bucket=model_store.access_log_bucket,
            server_access_logs_prefix="batch-bucket/",
            lifecycle_rules=self._lifecycle_rules(props.retention_days, results_prefix),
            # The web page posts files straight to S3 (presigned POST); results are downloaded
            # by navigating to a presigned GET, which needs no CORS - so POST only. CORS only
            # lets a browser on an allowed origin read S3's answer; the authorization is the
            # signed policy (one key, size, type, expiry). Default origins "*" (dev only: the
            # API's execute-api origin depends on the RestApi, which depends on this bucket,
            # so it cannot be named here without a cycle); environment prod requires
            # context upload_cors_origins to name the page's origins (checked at synth).
            cors=[
                s3.CorsRule(
                    id="web-page-uploads",
                    allowed_methods=[s3.HttpMethods.POST],
                    allowed_origins=list(props.upload_cors_origins),
                    allowed_headers=["*"],
                    exposed_headers=["ETag"],
                    max_age=3000,
                )
            ],
        )

        self.serving: ServingFunction = functions.create(
            self,
            "Function",
            package="lambda_batch",
            handler=BATCH_HANDLER,
            service="mlserve-batch",
            settings=props.function,
            kind="batch",
            description="mlserve batch scoring: incoming/*.csv[.gz] -> results/",
            extra_environment={
                **self.scoring_environment,
                Env.BATCH_MAX_BYTES: str(props.max_bytes),
                Env.BATCH_MAX_RECORD_BYTES: str(props.max_record_bytes),
                Env.BATCH_MAX_COLUMNS: str(props.max_columns),
                Env.BATCH_MAX_DECOMPRESSION_RATIO: f"{props.max_decompression_ratio:g}",
                Env.BATCH_ESCAPE_FORMULAS: "true" if props.escape_formulas else "false",
            },
            asynchronous=AsyncInvocation(
                retry_attempts=props.retry_attempts,
                max_event_age=MAX_EVENT_AGE,
                reserved_concurrency=props.reserved_concurrency,
            ),
        )
        self.function = self.serving.function
        self.role = self.serving.role
        self.log_group = self.serving.log_group
        assert self.serving.dead_letter_queue is not None
        self.dead_letter_queue: sqs.Queue = self.serving.dead_letter_queue

        # Least privilege: read the input (by version) and the idempotency/job markers, write
        # results only, read this model's prefix of the model store. Explicit actions instead
        # of grant_read/grant_put: no s3:List*/GetBucket* on the bucket (the function never
        # lists), no PutObjectLegalHold/Retention/Tagging/Acl, no delete anywhere.
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadInputByVersion",
                actions=["s3:GetObject", "s3:GetObjectVersion"],
                resources=[self.bucket.arn_for_objects(f"{INCOMING_PREFIX}*")],
            )
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="WriteResults",
                # PutObject covers the multipart calls (create, upload part, complete).
                actions=["s3:PutObject", "s3:AbortMultipartUpload"],
                resources=[self.bucket.arn_for_objects(f"{results_prefix}*")],
            )
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                # Read back to tell a duplicate from a retry, and a replayed upload (job id).
                sid="ReadMarkers",
                actions=["s3:GetObject"],
                resources=[
                    self.bucket.arn_for_objects(f"{results_prefix}.markers/*"),
                    self.bucket.arn_for_objects(f"{results_prefix}.jobs/*"),
                ],
            )
        )
        model_store.grant_read_model(self.role)

        for suffix in SUFFIXES:
            self.bucket.add_event_notification(
                s3.EventType.OBJECT_CREATED,
                # the live alias: its published version is the one SnapStart snapshots
                s3n.LambdaDestination(self.serving.invoke_target),
                s3.NotificationKeyFilter(prefix=INCOMING_PREFIX, suffix=suffix),
            )

        self._acknowledge_findings(model_store)

    @property
    def scoring_environment(self) -> dict[str, str]:
        """The environment every function that scores into this bucket's results shares
        (the S3-triggered one, the fan-out steps, scheduled runs): where results go and
        whether they carry class probabilities."""
        return {
            Env.RESULTS_PREFIX: self.results_prefix,
            Env.BATCH_PROBABILITIES: "true" if self.props.probabilities else "false",
        }

    @staticmethod
    def _lifecycle_rules(retention_days: int, results_prefix: str) -> list[s3.LifecycleRule]:
        rules = [
            # A crashed invocation can leave a multipart upload behind; S3 bills for its parts.
            s3.LifecycleRule(id="abort-incomplete-uploads", abort_incomplete_multipart_upload_after=Duration.days(1)),
            # Replaced or expired objects (noncurrent versions) go a week later.
            s3.LifecycleRule(id="expire-old-versions", noncurrent_version_expiration=Duration.days(7)),
        ]
        if retention_days > 0:  # context batch_retention_days; 0 keeps inputs and results forever
            for rule_id, prefix in (("expire-incoming", INCOMING_PREFIX), ("expire-results", results_prefix)):
                rules.append(s3.LifecycleRule(id=rule_id, prefix=prefix, expiration=Duration.days(retention_days)))
        return rules

    def _acknowledge_findings(self, model_store: ModelStore) -> None:
        model_bucket = logical_id_ref(model_store.bucket)
        batch_bucket = logical_id_ref(self.bucket)
        reasons = {
            f"Resource::<{model_bucket}.Arn>/models/{self.props.model_name}/*": (
                "Read-only s3:GetObject on this model's own prefix: versions are published at "
                "run time (models/<name>/versions/<v>/), so their keys cannot be listed here."
            ),
            f"Resource::<{batch_bucket}.Arn>/{INCOMING_PREFIX}*": (
                "Read-only (GetObject/GetObjectVersion) on incoming/: users upload input files "
                "under arbitrary keys at run time; the function reads the exact version in the event."
            ),
            f"Resource::<{batch_bucket}.Arn>/{self.results_prefix}*": (
                "PutObject/AbortMultipartUpload only on results/: output keys are derived from "
                "input keys that are only known at run time; no read, no delete of results."
            ),
            f"Resource::<{batch_bucket}.Arn>/{self.results_prefix}.markers/*": (
                "Read-only on the idempotency markers (one per input object version, created "
                "at run time) to tell a duplicate S3 event from a retry."
            ),
            f"Resource::<{batch_bucket}.Arn>/{self.results_prefix}.jobs/*": (
                "Read-only on the job markers (one per web-page job id, created at run time) to "
                "refuse a replayed upload for a job id that has already been scored."
            ),
        }
        for resource, reason in reasons.items():
            acknowledge(self.role, "AwsSolutions", f"AwsSolutions-IAM5[{resource}]", reason)
