"""Promotion-driven redeploys as one construct.

    MLflow webhook --POST /registry/events--> webhook fn --ModelPromoted--> project bus
    `mlserve promote` ------------------------------------ModelPromoted--> project bus
    SageMaker approval (default bus) ----------------------------------------┐
    project bus rule (ModelPromoted) ---------------------------------> redeploy fn --> S3 models/<name>/
                                                              (DLQ + retries)   └--> ModelDeployed/Failed

The stack passes in ``PromotionProps`` (from the validated config), its ``FunctionFactory``
(so both functions are built like every other mlserve function), the model store and the
API's ``PublicRoutes`` (the one route the webhook needs); nothing here reads CDK context.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import FunctionSettings, ServingConfig
from infra.functions import AsyncInvocation, FunctionFactory, ServingFunction
from infra.model_store import ModelStore
from infra.nag import acknowledge, logical_id_ref
from mlserve.contract import MODEL_PROMOTION_FORCED, Env
from mlserve.promotion.events import promoted_pattern, sagemaker_pattern

REDEPLOY_HANDLER = "lambda_promote.redeploy.handler"
WEBHOOK_HANDLER = "lambda_promote.webhook.handler"
PROMOTION_SERVICE = "mlserve-promotion"


# The webhook's route on the API (what MLflow's webhook is configured to call).
WEBHOOK_PATH = "/registry/events"


class PublicRoutes(Protocol):
    """What Promotion needs of the API: one route without API key or IAM auth (the webhook
    authenticates each delivery by its HMAC signature). ``infra.online_api.ApiRoutes``."""

    def add_public_route(self, path: str, http_method: str, handler: lambda_.IFunction) -> apigw.Method: ...


@dataclass(frozen=True)
class PromotionProps:
    """What promotion uses of the configuration: the model, the registry, promotion trust
    (docs/security.md) and the two functions' sizes."""

    model_name: str
    is_prod: bool
    mlflow_tracking_uri: str | None
    mlflow_token_secret_arn: str | None
    sagemaker_model_package_group: str | None
    artifact_locations: tuple[str, ...]
    promoters: tuple[str, ...]
    force_promoters: tuple[str, ...]
    promote_function: FunctionSettings
    webhook_function: FunctionSettings

    @classmethod
    def from_config(cls, config: ServingConfig) -> PromotionProps:
        return cls(
            model_name=config.model_name,
            is_prod=config.is_prod,
            mlflow_tracking_uri=config.mlflow_tracking_uri,
            mlflow_token_secret_arn=config.mlflow_token_secret_arn,
            sagemaker_model_package_group=config.sagemaker_model_package_group,
            artifact_locations=config.artifact_locations,
            promoters=config.promoters,
            force_promoters=config.force_promoters,
            promote_function=config.promote_function,
            webhook_function=config.webhook_function,
        )


class Promotion(Construct):
    """Bus, rules, redeploy + webhook functions (from the stack's ``FunctionFactory``: runtime,
    architecture, layers, logs, X-Ray, MLSERVE_* env, async retries + on-failure DLQ),
    ``POST /registry/events`` on ``api``, the webhook secret and the delivery ledger.

    Registry settings come from ``props`` (context ``mlflow_tracking_uri``,
    ``sagemaker_model_package_group``, the trust keys, ``functions.promote|webhook``).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: PromotionProps,
        functions: FunctionFactory,
        model_store: ModelStore,
        api: PublicRoutes,
        artifact_buckets: Sequence[s3.IBucket] = (),
        redeploy_concurrency: int | None = 1,
        redeploy_retry_attempts: int = 2,
        event_retry_attempts: int = 4,
        max_event_age_seconds: int = 7200,
    ) -> None:
        super().__init__(scope, construct_id)
        self.props = props
        model_bucket = model_store.bucket
        model_prefix = model_store.model_prefix()
        max_event_age = Duration.seconds(max_event_age_seconds)
        removal = RemovalPolicy.RETAIN if props.is_prod else RemovalPolicy.DESTROY
        package_group = props.sagemaker_model_package_group

        # A fixed name, so that the bus's own policy can name the bus without referring to
        # itself (a GetAtt of the bus inside its Policy property would be a cycle).
        self.bus_name = f"{Stack.of(self).stack_name}-promotion"[:256]
        self.bus = events.EventBus(self, "Bus", event_bus_name=self.bus_name)
        self.webhook_secret = secretsmanager.Secret(
            self,
            "WebhookSecret",
            description=f"HMAC secret shared with the MLflow webhook that promotes {props.model_name}",
            generate_secret_string=secretsmanager.SecretStringGenerator(exclude_punctuation=True, password_length=48),
            removal_policy=removal,
        )
        self.deliveries = dynamodb.Table(
            self,
            "WebhookDeliveries",
            partition_key=dynamodb.Attribute(name="delivery_id", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute="expires_at",
            # A replay ledger with a TTL: nothing to keep after the stack is gone.
            removal_policy=RemovalPolicy.DESTROY,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
        )

        registry_env = {Env.EVENT_BUS: self.bus.event_bus_name}
        if props.mlflow_tracking_uri:
            registry_env[Env.MLFLOW_TRACKING_URI] = props.mlflow_tracking_uri
        if props.mlflow_token_secret_arn:
            # the token is read from Secrets Manager at run time, never put in an env var
            registry_env[Env.MLFLOW_TOKEN_SECRET_ARN] = props.mlflow_token_secret_arn
        redeploy_env = dict(registry_env)
        if package_group:
            redeploy_env[Env.SAGEMAKER_PACKAGE_GROUP] = package_group
        # Where artifacts may come from besides the registry itself (mlserve.promotion.trust):
        # the stack's own model bucket (its writers can already write live.json), the
        # configured artifact buckets and context artifact_locations.
        self.artifact_locations = [
            f"s3://{model_bucket.bucket_name}/",
            *(f"s3://{bucket.bucket_name}/" for bucket in artifact_buckets),
            *props.artifact_locations,
        ]
        redeploy_env[Env.ARTIFACT_LOCATIONS] = ",".join(self.artifact_locations)

        self.redeploy: ServingFunction = functions.create(
            self,
            "Redeploy",
            package="lambda_promote",
            handler=REDEPLOY_HANDLER,
            service=PROMOTION_SERVICE,
            settings=props.promote_function,
            kind="promote",
            description=f"mlserve redeploy: stage, verify and switch the live {props.model_name} model",
            extra_environment=redeploy_env,
            asynchronous=AsyncInvocation(
                retry_attempts=redeploy_retry_attempts,
                max_event_age=max_event_age,
                # one redeploy at a time: promotions are applied in order, never interleaved
                reserved_concurrency=redeploy_concurrency,
            ),
        )
        self.redeploy_function = self.redeploy.function
        self.redeploy_role = self.redeploy.role
        self.redeploy_logs = self.redeploy.log_group
        assert self.redeploy.dead_letter_queue is not None
        # Failed async invocations (after Lambda's retries) and undeliverable EventBridge
        # events (after the rule target's retries) both end up here.
        self.dlq: sqs.Queue = self.redeploy.dead_letter_queue

        # Least privilege: read/write only this model's keys; list only under its prefix.
        model_store.grant_read_write_model(self.redeploy_role)
        for bucket in artifact_buckets:  # MLflow/SageMaker artifact stores on S3: read only
            bucket.grant_read(self.redeploy_role)
        self.bus.grant_put_events_to(self.redeploy_role)
        if package_group:
            # the redeploy asks SageMaker which package is approved and where its artifact is
            self.redeploy_role.add_to_policy(
                iam.PolicyStatement(
                    sid="ReadApprovedModelPackages",
                    actions=["sagemaker:ListModelPackages", "sagemaker:DescribeModelPackage"],
                    resources=[
                        Stack.of(self).format_arn(
                            service="sagemaker", resource="model-package-group", resource_name=package_group
                        ),
                        Stack.of(self).format_arn(
                            service="sagemaker", resource="model-package", resource_name=f"{package_group}/*"
                        ),
                    ],
                )
            )

        target_options = {
            "dead_letter_queue": self.dlq,
            "retry_attempts": event_retry_attempts,
            "max_event_age": max_event_age,
        }
        self.promoted_rule = events.Rule(
            self,
            "PromotedRule",
            event_bus=self.bus,
            description=f"ModelPromoted -> redeploy {props.model_name}",
            event_pattern=_pattern(promoted_pattern()),
            targets=[targets.LambdaFunction(self.redeploy.invoke_target, **target_options)],  # type: ignore[arg-type]
        )
        self.sagemaker_rule: events.Rule | None = None
        if package_group:
            # SageMaker publishes to the account's default bus
            self.sagemaker_rule = events.Rule(
                self,
                "SageMakerApprovedRule",
                description=f"SageMaker approvals in {package_group} -> redeploy {props.model_name}",
                event_pattern=_pattern(sagemaker_pattern(package_group)),
                targets=[targets.LambdaFunction(self.redeploy.invoke_target, **target_options)],  # type: ignore[arg-type]
            )

        self.webhook: ServingFunction = functions.create(
            self,
            "Webhook",
            package="lambda_promote",
            handler=WEBHOOK_HANDLER,
            service=PROMOTION_SERVICE,
            settings=props.webhook_function,
            kind="webhook",
            description="mlserve MLflow webhook receiver: verify, put ModelPromoted on the bus",
            extra_environment={
                **registry_env,
                Env.WEBHOOK_SECRET_ID: self.webhook_secret.secret_arn,
                Env.WEBHOOK_DELIVERIES_TABLE: self.deliveries.table_name,
            },
        )
        self.webhook_function = self.webhook.function
        self.webhook_role = self.webhook.role
        self.webhook_logs = self.webhook.log_group
        self.webhook_secret.grant_read(self.webhook_role)
        self.webhook_role.add_to_policy(
            iam.PolicyStatement(
                actions=["dynamodb:PutItem", "dynamodb:DeleteItem"], resources=[self.deliveries.table_arn]
            )
        )
        self.bus.grant_put_events_to(self.webhook_role)

        # MLflow cannot sign AWS requests: the HMAC signature is the authentication.
        self.webhook_method = api.add_public_route(WEBHOOK_PATH, "POST", self.webhook_function)
        if props.mlflow_token_secret_arn:
            token = secretsmanager.Secret.from_secret_complete_arn(self, "RegistryToken", props.mlflow_token_secret_arn)
            token.grant_read(self.redeploy_role)
        self.bus_policy = self._restrict_bus(props)
        self._acknowledge(model_store, model_prefix)

    def _restrict_bus(self, props: PromotionProps) -> dict[str, object]:
        """The bus's resource policy (docs/security.md). Same-account principals with an
        identity policy allowing events:PutEvents could otherwise put a ModelPromoted, so
        the policy *denies* everyone but the webhook and redeploy roles and context
        `promoters` / `force_promoters`; and it denies ModelPromotionForced (the only event
        whose `force` the redeploy honours) to everyone but `force_promoters`. The
        SageMaker rule lives on the default bus and invokes the redeploy directly; "aws.*"
        sources cannot be put by anyone, and its artifact is read from SageMaker anyway."""
        bus_arn = Stack.of(self).format_arn(service="events", resource="event-bus", resource_name=self.bus_name)
        writers = [self.webhook_role.role_arn, self.redeploy_role.role_arn, *props.promoters, *props.force_promoters]
        force_condition: dict[str, object] = {"StringEquals": {"events:detail-type": MODEL_PROMOTION_FORCED}}
        if props.force_promoters:
            force_condition["ArnNotEquals"] = {"aws:PrincipalArn": list(props.force_promoters)}
        policy: dict[str, object] = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "OnlyPromotersPutEvents",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "events:PutEvents",
                    "Resource": bus_arn,
                    "Condition": {"ArnNotEquals": {"aws:PrincipalArn": writers}},
                },
                {
                    "Sid": "OnlyForcePromotersForce",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "events:PutEvents",
                    "Resource": bus_arn,
                    "Condition": force_condition,
                },
            ],
        }
        cfn_bus = self.bus.node.default_child
        assert isinstance(cfn_bus, events.CfnEventBus)
        cfn_bus.policy = policy
        return policy

    def _acknowledge(self, model_store: ModelStore, model_prefix: str) -> None:
        """cdk-nag findings this construct owns, each with its reason (the factory
        acknowledges what every function shares: X-Ray's Resource::*, the on-failure DLQ)."""
        bucket_ref = logical_id_ref(model_store.bucket)
        acknowledge(
            self.redeploy_role,
            "AwsSolutions",
            f"AwsSolutions-IAM5[Resource::<{bucket_ref}.Arn>/{model_prefix}*]",
            "The redeploy writes new version directories, manifests and live.json under this "
            "model's own prefix only; keys are not known in advance.",
        )
        if self.props.sagemaker_model_package_group:
            acknowledge(
                self.redeploy_role,
                "AwsSolutions",
                "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:sagemaker:<AWS::Region>:<AWS::AccountId>:"
                f"model-package/{self.props.sagemaker_model_package_group}/*]",
                "Read-only ListModelPackages/DescribeModelPackage on the versions of the one configured package "
                "group: the redeploy asks SageMaker which version is approved and where its artifact is.",
            )
        acknowledge(
            self.webhook_secret,
            "AwsSolutions",
            "AwsSolutions-SMG4",
            "The HMAC secret is shared with the MLflow webhook; rotating it requires updating the "
            "webhook, so it is rotated by hand (both secrets verify during a rotation).",
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


def _pattern(pattern: dict[str, object]) -> events.EventPattern:
    return events.EventPattern(
        source=pattern.get("source"),  # type: ignore[arg-type]
        detail_type=pattern.get("detail-type"),  # type: ignore[arg-type]
        detail=pattern.get("detail"),  # type: ignore[arg-type]
    )
