"""One place that knows how an mlserve Lambda function is built: shared layers, runtime,
architecture, X-Ray, JSON logs into a log group with retention, and the MLSERVE_* env.

Each concern (online API, batch, promotion) asks the factory for its function and then
grants that function's role exactly what it needs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from aws_cdk import Duration, RemovalPolicy, Size
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.bundling import function_code
from infra.config import (
    LOG_RETENTION_DAYS,
    SNAP_START_KINDS,
    FunctionSettings,
    FunctionStartup,
    ServingConfig,
)
from infra.image import image_code, uses_image
from infra.nag import acknowledge
from mlserve.contract import METRICS_NAMESPACE, Env

LAMBDA_CACHE_DIR = "/tmp/mlserve"  # the only writable path in Lambda
# Every trigger of a function with a published version invokes this alias: SnapStart and
# provisioned concurrency apply to published versions only, never to $LATEST.
LIVE_ALIAS = "live"


def lambda_runtime(name: str) -> lambda_.Runtime:
    """The runtime named in config; built from the name so a newer runtime than this
    aws-cdk-lib knows about still works."""
    minor = int(name.removeprefix("python3."))
    # Lambda supports SnapStart for Python 3.12 and later.
    return lambda_.Runtime(name, lambda_.RuntimeFamily.PYTHON, supports_snap_start=minor >= 12)


def lambda_architecture(name: str) -> lambda_.Architecture:
    return lambda_.Architecture.ARM_64 if name == "arm64" else lambda_.Architecture.X86_64


def log_retention(days: int) -> logs.RetentionDays:
    """CloudWatch's allowed retentions, in the order aws_logs.RetentionDays lists them."""
    finite = [member for member in logs.RetentionDays if member.name != "INFINITE"]
    return dict(zip(LOG_RETENTION_DAYS, finite, strict=True))[days]


@dataclass(frozen=True)
class AsyncInvocation:
    """How an asynchronously invoked function (S3 or EventBridge event) handles failure:
    Lambda retries ``retry_attempts`` times, drops events older than ``max_event_age``,
    and sends what still failed to an SQS dead-letter queue (created by the factory) so
    it can be inspected and re-driven. ``reserved_concurrency`` caps parallel runs (None:
    share the account's unreserved pool)."""

    retry_attempts: int = 2
    max_event_age: Duration = field(default_factory=lambda: Duration.hours(6))
    reserved_concurrency: int | None = None
    dlq_retention: Duration = field(default_factory=lambda: Duration.days(14))


@dataclass(frozen=True)
class ServingFunction:
    function: lambda_.Function
    role: iam.Role
    log_group: logs.LogGroup
    # Set for functions created with ``asynchronous=``: where failed events end up.
    dead_letter_queue: sqs.Queue | None = None
    # The `live` alias on the published version (api, batch, promote): what triggers invoke.
    alias: lambda_.Alias | None = None
    startup: FunctionStartup = field(default_factory=FunctionStartup)

    @property
    def invoke_target(self) -> lambda_.IFunction:
        """What an integration, notification or rule should invoke: the alias when there is
        one (so SnapStart / provisioned concurrency apply), else the function."""
        return self.alias if self.alias is not None else self.function


class FunctionFactory:
    """Creates every mlserve function the same way. A new concern adds a construct that does:

    serving = functions.create(self, "Function", package="lambda_batch",
                               handler="lambda_batch.handler.handler", service="mlserve-batch",
                               settings=config.batch_function, kind="batch", description="...")
    model_store.grant_read_model(serving.function)   # plus what else it needs
    """

    def __init__(
        self,
        *,
        config: ServingConfig,
        layers: list[lambda_.ILayerVersion],
        store_uri: str,
        code: Callable[[str], lambda_.Code] = function_code,
        kind_layers: Mapping[str, list[lambda_.ILayerVersion]] | None = None,
    ) -> None:
        """``code`` turns a package name into the function's code asset: by default only
        that package (deps and mlserve come from ``layers``); with ``bundle_deps=function``
        the stack passes one that also bundles them, and no layers."""
        self.config = config
        self.layers = layers
        self.store_uri = store_uri
        self.code = code
        # functions.<kind> -> its own layers (a deps layer per dependency set); else ``layers``
        self.kind_layers = dict(kind_layers or {})

    def base_environment(self, service: str) -> dict[str, str]:
        config = self.config
        return {
            Env.STORE: self.store_uri,
            Env.MODEL_NAME: config.model_name,
            Env.REGISTRY_ALIAS: config.registry_alias,
            Env.REFRESH_SECONDS: str(config.refresh_seconds),
            Env.ALLOW_PICKLE: "true" if config.allow_pickle else "false",
            Env.MAX_ROWS: str(config.max_rows),
            Env.MAX_BODY_BYTES: str(config.max_body_bytes),
            Env.CACHE_DIR: LAMBDA_CACHE_DIR,
            Env.POWERTOOLS_SERVICE_NAME: service,
            Env.POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        }

    def create(
        self,
        scope: Construct,
        construct_id: str,
        *,
        package: str,
        handler: str,
        service: str,
        settings: FunctionSettings,
        description: str,
        kind: str | None = None,
        extra_environment: Mapping[str, str] | None = None,
        asynchronous: AsyncInvocation | None = None,
    ) -> ServingFunction:
        """A function (plus its role and log group) in ``scope``, whose code asset is the
        single top-level ``package`` directory of the repo. With ``asynchronous``, also its
        async invoke config (retries, max event age, on-failure SQS queue ``<id>DeadLetterQueue``)
        and reserved concurrency. ``kind`` names its ``functions.<kind>`` entry, whose startup
        keys (SnapStart, reserved/provisioned concurrency, /tmp) and deps layer then apply."""
        config = self.config
        startup = config.startup.get(kind, FunctionStartup()) if kind else FunctionStartup()
        removal = RemovalPolicy.RETAIN if config.is_prod else RemovalPolicy.DESTROY
        log_group = logs.LogGroup(
            scope,
            f"{construct_id}Logs",
            retention=log_retention(config.log_retention_days),
            removal_policy=removal,
        )
        # Our own role instead of the default one: the default attaches the AWS-managed
        # AWSLambdaBasicExecutionRole, which may write to any log group in the account.
        role = iam.Role(
            scope,
            f"{construct_id}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{description} (mlserve {config.model_name})",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn],
            )
        )
        # packaging=image: API, batch and redeploy run from the one container image (infra/image.py).
        image = image_code(scope, config, handler) if uses_image(config, handler) else None
        function = lambda_.Function(
            scope,
            construct_id,
            description=description,
            code=image or self.code(package),
            handler=lambda_.Handler.FROM_IMAGE if image else handler,
            runtime=lambda_.Runtime.FROM_IMAGE if image else lambda_runtime(config.python_runtime),
            architecture=lambda_architecture(config.architecture),
            layers=None if image else ((self.kind_layers.get(kind) if kind else None) or self.layers or None),
            memory_size=settings.memory_mb,
            timeout=Duration.seconds(settings.timeout_seconds),
            role=role,
            log_group=log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            tracing=lambda_.Tracing.ACTIVE,
            environment={**self.base_environment(service), **(extra_environment or {})},
            reserved_concurrent_executions=self._reserved_concurrency(startup, asynchronous),
            ephemeral_storage_size=Size.mebibytes(startup.ephemeral_storage_mb),
            # Lambda has no SnapStart for container images: they load the model lazily.
            snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS if startup.snap_start and image is None else None,
        )
        alias = None
        if kind in SNAP_START_KINDS:
            alias = lambda_.Alias(
                scope,
                f"{construct_id}LiveAlias",
                alias_name=LIVE_ALIAS,
                # current_version publishes a new version whenever code or config change;
                # with SnapStart, Lambda takes the snapshot at that publish.
                version=function.current_version,
                provisioned_concurrent_executions=startup.provisioned_concurrency or None,
            )
        dead_letter_queue = None
        if asynchronous is not None:
            dead_letter_queue = self._async_failure_handling(scope, construct_id, function, asynchronous)
        acknowledge(
            role,
            "AwsSolutions",
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray tracing (Tracing.ACTIVE): xray:PutTraceSegments and "
            "xray:PutTelemetryRecords do not support resource-level permissions.",
        )
        return ServingFunction(
            function=function,
            role=role,
            log_group=log_group,
            dead_letter_queue=dead_letter_queue,
            alias=alias,
            startup=startup,
        )

    @staticmethod
    def _reserved_concurrency(startup: FunctionStartup, asynchronous: AsyncInvocation | None) -> int | None:
        """``functions.<kind>.reserved_concurrency`` wins; else the construct's own cap."""
        if startup.reserved_concurrency is not None:
            return startup.reserved_concurrency
        return asynchronous.reserved_concurrency if asynchronous else None

    def _async_failure_handling(
        self, scope: Construct, construct_id: str, function: lambda_.Function, settings: AsyncInvocation
    ) -> sqs.Queue:
        queue = sqs.Queue(
            scope,
            f"{construct_id}DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=settings.dlq_retention,
            removal_policy=RemovalPolicy.RETAIN if self.config.is_prod else RemovalPolicy.DESTROY,
        )
        # Async invocation: Lambda retries, then sends the event (with the error) to the
        # queue. The destination grants the role sqs:SendMessage on this queue only.
        function.configure_async_invoke(
            retry_attempts=settings.retry_attempts,
            max_event_age=settings.max_event_age,
            on_failure=destinations.SqsDestination(queue),
        )
        acknowledge(
            function,
            "Serverless",
            "Serverless-LambdaDLQ",
            "Asynchronous failures go to an SQS on-failure destination (EventInvokeConfig), "
            "which supersedes the legacy DeadLetterConfig and also records the error.",
        )
        acknowledge(
            queue,
            "AwsSolutions",
            "AwsSolutions-SQS3",
            "This queue is itself the dead-letter (on-failure) destination of the function's "
            "asynchronous invocations; a DLQ for the DLQ would only move the same messages.",
        )
        acknowledge(
            queue,
            "Serverless",
            "Serverless-SQSRedrivePolicy",
            "This queue is the end of the failure path (the function's on-failure destination); "
            "its messages are inspected and re-driven by an operator, not by another consumer.",
        )
        return queue
