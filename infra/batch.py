"""Batch scoring: CSVs dropped into `incoming/` of a batch bucket are scored by a Lambda
that writes `results/`.

The function comes from the stack's ``FunctionFactory`` (runtime, architecture, layers,
logs, X-Ray, MLSERVE_* env, async retries + on-failure DLQ + reserved concurrency), so this
construct only adds the batch bucket, the grants and the S3 notifications.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import ServingConfig
from infra.functions import AsyncInvocation, FunctionFactory, ServingFunction
from infra.model_store import ModelStore, hardened_bucket
from infra.nag import acknowledge, logical_id_ref

BATCH_HANDLER = "lambda_batch.handler.handler"
INCOMING_PREFIX = "incoming/"
RESULTS_PREFIX = "results/"
SUFFIXES = (".csv", ".csv.gz")
# Lambda drops an async event older than this; a longer outage leaves it in the DLQ.
MAX_EVENT_AGE = Duration.hours(6)


class BatchScoring(Construct):
    """Batch bucket + S3-triggered scoring function + DLQ + least-privilege role."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: ServingConfig,
        functions: FunctionFactory,
        model_store: ModelStore,
        results_prefix: str = RESULTS_PREFIX,
    ) -> None:
        super().__init__(scope, construct_id)
        if not results_prefix.endswith("/") or results_prefix.startswith(INCOMING_PREFIX):
            # Results under incoming/ would re-trigger the function forever.
            raise ValueError(f"results_prefix must end with '/' and not be under {INCOMING_PREFIX}: {results_prefix!r}")
        self.config = config
        self.results_prefix = results_prefix

        # Same hardening as the model bucket (infra/model_store.py), plus lifecycle rules
        # for what batch runs leave behind.
        # Versioned (by hardened_bucket): the event's versionId pins what is scored.
        self.bucket = hardened_bucket(
            self,
            "Bucket",
            config=config,
            server_access_logs_bucket=model_store.access_log_bucket,
            server_access_logs_prefix="batch-bucket/",
            lifecycle_rules=[
                # A crashed invocation can leave a multipart upload behind; S3 bills for its parts.
                s3.LifecycleRule(
                    id="abort-incomplete-uploads", abort_incomplete_multipart_upload_after=Duration.days(1)
                ),
                s3.LifecycleRule(id="expire-old-versions", noncurrent_version_expiration=Duration.days(30)),
            ],
            # The web page posts files straight to S3 (presigned POST) and fetches results
            # (presigned GET). CORS only lets a browser on an allowed origin read S3's answer;
            # the authorization is the signed policy/URL (one key, size, type, expiry).
            # Default origins "*": the API's execute-api origin depends on the RestApi, which
            # depends on this bucket (env, grants), so it cannot be named here without a
            # cycle; set context upload_cors_origins to the API's origin or custom domain.
            cors=[
                s3.CorsRule(
                    id="web-page-uploads",
                    allowed_methods=[s3.HttpMethods.POST, s3.HttpMethods.GET],
                    allowed_origins=list(config.upload_cors_origins),
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
            settings=config.batch_function,
            description="mlserve batch scoring: incoming/*.csv[.gz] -> results/",
            extra_environment={
                "MLSERVE_RESULTS_PREFIX": results_prefix,
                "MLSERVE_BATCH_PROBABILITIES": "true" if config.batch_probabilities else "false",
            },
            asynchronous=AsyncInvocation(
                retry_attempts=config.batch_retry_attempts,
                max_event_age=MAX_EVENT_AGE,
                reserved_concurrency=config.batch_reserved_concurrency,
            ),
        )
        self.function = self.serving.function
        self.role = self.serving.role
        self.log_group = self.serving.log_group
        assert self.serving.dead_letter_queue is not None
        self.dead_letter_queue: sqs.Queue = self.serving.dead_letter_queue

        # Least privilege: read the input (by version) and the idempotency markers, write
        # results only, read this model's prefix of the model store. No delete anywhere.
        self.bucket.grant_read(self.role, f"{INCOMING_PREFIX}*")
        self.bucket.grant_put(self.role, f"{results_prefix}*")
        # The idempotency marker is read back to tell a duplicate from a retry.
        self.bucket.grant_read(self.role, f"{results_prefix}.markers/*")
        model_store.grant_read_model(self.role)

        for suffix in SUFFIXES:
            self.bucket.add_event_notification(
                s3.EventType.OBJECT_CREATED,
                # the live alias: its published version is the one SnapStart snapshots
                s3n.LambdaDestination(self.serving.invoke_target),
                s3.NotificationKeyFilter(prefix=INCOMING_PREFIX, suffix=suffix),
            )

        self._acknowledge_findings(model_store)

    def _acknowledge_findings(self, model_store: ModelStore) -> None:
        model_bucket = logical_id_ref(model_store.bucket)
        batch_bucket = logical_id_ref(self.bucket)
        reasons = {
            f"Resource::<{model_bucket}.Arn>/models/{self.config.model_name}/*": (
                "Read-only s3:GetObject on this model's own prefix: versions are published at "
                "run time (models/<name>/versions/<v>/), so their keys cannot be listed here."
            ),
            f"Resource::<{batch_bucket}.Arn>/{INCOMING_PREFIX}*": (
                "Read-only (GetObject*/List*) on incoming/: users upload input files under "
                "arbitrary keys at run time; the function reads the exact version in the event."
            ),
            f"Resource::<{batch_bucket}.Arn>/{self.results_prefix}*": (
                "Put/abort-multipart only on results/: output keys are derived from input keys "
                "that are only known at run time; no read, no delete of results."
            ),
            f"Resource::<{batch_bucket}.Arn>/{self.results_prefix}.markers/*": (
                "Read-only on the idempotency markers (one per input object version, created "
                "at run time) to tell a duplicate S3 event from a retry."
            ),
            "Action::s3:GetObject*": (
                "CDK grant_read on the batch bucket's incoming/ and markers prefixes: GetObject "
                "plus GetObjectVersion (the event pins a version), tagging/ACL/attribute reads."
            ),
            "Action::s3:GetBucket*": (
                "CDK grant_read on the batch bucket: bucket-level metadata reads only (location, "
                "versioning); no object access beyond the prefixes granted separately."
            ),
            "Action::s3:List*": (
                "CDK grant_read on the batch bucket: listing it reveals only input and result "
                "key names of this stack's own batch bucket, which the function handles anyway."
            ),
            "Action::s3:Abort*": (
                "CDK grant_put on results/: AbortMultipartUpload is how a failed run removes its "
                "partial output so no incomplete predictions object ever appears."
            ),
        }
        for resource, reason in reasons.items():
            acknowledge(self.role, "AwsSolutions", f"AwsSolutions-IAM5[{resource}]", reason)
