"""Promotion-driven redeploys as one construct.

    MLflow webhook --POST /registry/events--> webhook fn --ModelPromoted--> project bus
    `mlserve promote` ------------------------------------ModelPromoted--> project bus
    SageMaker approval (default bus) ----------------------------------------┐
    project bus rule (ModelPromoted) ---------------------------------> redeploy fn --> S3 models/<name>/
                                                              (DLQ + retries)   └--> ModelDeployed/Failed

Self-contained: the stack passes in the model bucket, the layers, the function code, the
RestApi and the configuration values; nothing here reads CDK context.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.nag import acknowledge, logical_id_ref
from mlserve.promotion.events import promoted_pattern, sagemaker_pattern


class Promotion(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        model_bucket: s3.IBucket,
        model_name: str,
        layers: Sequence[lambda_.ILayerVersion],
        code: lambda_.Code,
        api: apigw.RestApi,
        alias: str = "champion",
        mlflow_tracking_uri: str | None = None,
        sagemaker_package_group: str | None = None,
        artifact_buckets: Sequence[s3.IBucket] = (),
        allow_pickle: bool = False,
        architecture: lambda_.Architecture = lambda_.Architecture.ARM_64,
        runtime: lambda_.Runtime = lambda_.Runtime.PYTHON_3_14,
        redeploy_memory_mb: int = 1024,
        redeploy_timeout_seconds: int = 300,
        redeploy_concurrency: int | None = 1,
        event_retry_attempts: int = 4,
        max_event_age_seconds: int = 7200,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        removal_policy: RemovalPolicy = RemovalPolicy.DESTROY,
    ) -> None:
        super().__init__(scope, construct_id)
        model_prefix = f"models/{model_name}/"
        max_event_age = Duration.seconds(max_event_age_seconds)

        self.bus = events.EventBus(self, "Bus")
        self.webhook_secret = secretsmanager.Secret(
            self,
            "WebhookSecret",
            description=f"HMAC secret shared with the MLflow webhook that promotes {model_name}",
            generate_secret_string=secretsmanager.SecretStringGenerator(exclude_punctuation=True, password_length=48),
        )
        self.deliveries = dynamodb.Table(
            self,
            "WebhookDeliveries",
            partition_key=dynamodb.Attribute(name="delivery_id", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute="expires_at",
            removal_policy=RemovalPolicy.DESTROY,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
        )
        self.dlq = sqs.Queue(
            self,
            "RedeployDlq",
            retention_period=Duration.days(14),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )

        common_env = {
            "MLSERVE_MODEL_NAME": model_name,
            "MLSERVE_EVENT_BUS": self.bus.event_bus_name,
            "MLSERVE_REGISTRY_ALIAS": alias,
            "POWERTOOLS_SERVICE_NAME": "mlserve-promotion",
        }
        if mlflow_tracking_uri:
            common_env["MLSERVE_MLFLOW_TRACKING_URI"] = mlflow_tracking_uri

        redeploy_env = {
            **common_env,
            "MLSERVE_STORE": f"s3://{model_bucket.bucket_name}",
            "MLSERVE_ALLOW_PICKLE": "true" if allow_pickle else "false",
        }
        if sagemaker_package_group:
            redeploy_env["MLSERVE_SAGEMAKER_PACKAGE_GROUP"] = sagemaker_package_group
        self.redeploy_role, self.redeploy_logs = _role_and_logs(
            self, "Redeploy", f"mlserve redeploy of {model_name}", log_retention, removal_policy
        )
        self.redeploy_function = lambda_.Function(
            self,
            "RedeployFunction",
            description=f"Stage, verify and switch the live {model_name} model on promotion",
            runtime=runtime,
            architecture=architecture,
            handler="lambda_promote.redeploy.handler",
            code=code,
            layers=list(layers),
            memory_size=redeploy_memory_mb,
            timeout=Duration.seconds(redeploy_timeout_seconds),
            environment=redeploy_env,
            # one redeploy at a time: promotions are applied in order, never interleaved
            reserved_concurrent_executions=redeploy_concurrency,
            retry_attempts=2,
            max_event_age=max_event_age,
            dead_letter_queue=self.dlq,
            on_failure=destinations.SqsDestination(self.dlq),
            tracing=lambda_.Tracing.ACTIVE,
            role=self.redeploy_role,
            log_group=self.redeploy_logs,
            logging_format=lambda_.LoggingFormat.JSON,
        )
        # least privilege: read/write only this model's keys; list only under its prefix
        self.redeploy_function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:PutObject"],
                resources=[model_bucket.arn_for_objects(f"{model_prefix}*")],
            )
        )
        self.redeploy_function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[model_bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{model_prefix}*"]}},
            )
        )
        if model_bucket.encryption_key is not None:
            model_bucket.encryption_key.grant_encrypt_decrypt(self.redeploy_function)
        for bucket in artifact_buckets:  # MLflow/SageMaker artifact stores on S3: read only
            bucket.grant_read(self.redeploy_function)
        self.bus.grant_put_events_to(self.redeploy_function)

        target_options = {
            "dead_letter_queue": self.dlq,
            "retry_attempts": event_retry_attempts,
            "max_event_age": max_event_age,
        }
        self.promoted_rule = events.Rule(
            self,
            "PromotedRule",
            event_bus=self.bus,
            description=f"ModelPromoted -> redeploy {model_name}",
            event_pattern=_pattern(promoted_pattern()),
            targets=[targets.LambdaFunction(self.redeploy_function, **target_options)],  # type: ignore[arg-type]
        )
        self.sagemaker_rule: events.Rule | None = None
        if sagemaker_package_group:
            # SageMaker publishes to the account's default bus
            self.sagemaker_rule = events.Rule(
                self,
                "SageMakerApprovedRule",
                description=f"SageMaker approvals in {sagemaker_package_group} -> redeploy {model_name}",
                event_pattern=_pattern(sagemaker_pattern(sagemaker_package_group)),
                targets=[targets.LambdaFunction(self.redeploy_function, **target_options)],  # type: ignore[arg-type]
            )

        self.webhook_role, self.webhook_logs = _role_and_logs(
            self, "Webhook", f"mlserve MLflow webhook receiver for {model_name}", log_retention, removal_policy
        )
        self.webhook_function = lambda_.Function(
            self,
            "WebhookFunction",
            description="Verify MLflow webhooks and put ModelPromoted on the bus",
            runtime=runtime,
            architecture=architecture,
            handler="lambda_promote.webhook.handler",
            code=code,
            layers=list(layers),
            memory_size=256,
            timeout=Duration.seconds(10),
            environment={
                **common_env,
                "MLSERVE_WEBHOOK_SECRET_ID": self.webhook_secret.secret_arn,
                "MLSERVE_WEBHOOK_DELIVERIES_TABLE": self.deliveries.table_name,
            },
            tracing=lambda_.Tracing.ACTIVE,
            role=self.webhook_role,
            log_group=self.webhook_logs,
            logging_format=lambda_.LoggingFormat.JSON,
        )
        self.webhook_secret.grant_read(self.webhook_function)
        self.webhook_function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["dynamodb:PutItem", "dynamodb:DeleteItem"], resources=[self.deliveries.table_arn]
            )
        )
        self.bus.grant_put_events_to(self.webhook_function)

        registry = api.root.get_resource("registry") or api.root.add_resource("registry")
        self.webhook_method = registry.add_resource("events").add_method(
            "POST",
            apigw.LambdaIntegration(self.webhook_function),
            # MLflow cannot sign AWS requests: the HMAC signature is the authentication
            authorization_type=apigw.AuthorizationType.NONE,
            api_key_required=False,
        )
        self._acknowledge(model_bucket, model_prefix)

    def _acknowledge(self, model_bucket: s3.IBucket, model_prefix: str) -> None:
        """cdk-nag findings this construct owns, each with its reason."""
        for role in (self.redeploy_role, self.webhook_role):
            acknowledge(
                role,
                "AwsSolutions",
                "AwsSolutions-IAM5[Resource::*]",
                "X-Ray tracing (Tracing.ACTIVE): xray:PutTraceSegments/PutTelemetryRecords "
                "support no resource-level permissions.",
            )
        if model_bucket.node.default_child is not None:
            bucket_ref = logical_id_ref(model_bucket)
            acknowledge(
                self.redeploy_role,
                "AwsSolutions",
                f"AwsSolutions-IAM5[Resource::<{bucket_ref}.Arn>/{model_prefix}*]",
                "The redeploy writes new version directories, manifests and live.json under this "
                "model's own prefix only; keys are not known in advance.",
            )
        acknowledge(
            self.webhook_secret,
            "AwsSolutions",
            "AwsSolutions-SMG4",
            "The HMAC secret is shared with the MLflow webhook; rotating it requires updating the "
            "webhook, so it is rotated by hand (both secrets verify during a rotation).",
        )
        acknowledge(
            self.dlq,
            "Serverless",
            "Serverless-SQSRedrivePolicy",
            "This queue is itself the dead-letter queue of the redeploy.",
        )
        acknowledge(
            self.webhook_function,
            "Serverless",
            "Serverless-LambdaDLQ",
            "Invoked synchronously by API Gateway: errors return to MLflow, which retries the delivery.",
        )
        for method_rule in ("AwsSolutions-APIG4", "AwsSolutions-COG4"):
            acknowledge(
                self.webhook_method,
                "AwsSolutions",
                method_rule,
                "MLflow cannot sign AWS requests or hold Cognito tokens: every delivery is authenticated "
                "by its HMAC-SHA256 signature (shared secret), timestamp and one-time delivery id.",
            )


def _role_and_logs(
    scope: Construct, construct_id: str, description: str, retention: logs.RetentionDays, removal: RemovalPolicy
) -> tuple[iam.Role, logs.LogGroup]:
    """Own role (no AWS-managed policy: AWSLambdaBasicExecutionRole may write to any log
    group) allowed to write only to the function's own log group."""
    log_group = logs.LogGroup(scope, f"{construct_id}Logs", retention=retention, removal_policy=removal)
    role = iam.Role(
        scope,
        f"{construct_id}Role",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=description,
    )
    role.add_to_policy(
        iam.PolicyStatement(actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[log_group.log_group_arn])
    )
    return role, log_group


def _pattern(pattern: dict[str, object]) -> events.EventPattern:
    return events.EventPattern(
        source=pattern.get("source"),  # type: ignore[arg-type]
        detail_type=pattern.get("detail-type"),  # type: ignore[arg-type]
        detail=pattern.get("detail"),  # type: ignore[arg-type]
    )
