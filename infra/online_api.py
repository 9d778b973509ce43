"""Online predictions: REST API Gateway -> Lambda proxy -> the API function's ``live`` alias."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import ServingConfig
from infra.functions import FunctionFactory, ServingFunction, log_retention
from infra.model_store import ModelStore
from infra.nag import acknowledge, logical_id_ref

API_HANDLER = "lambda_api.handler.handler"
LIVE_ALIAS = "live"
STAGE_NAME = "v1"


class OnlineApi(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: ServingConfig,
        functions: FunctionFactory,
        model_store: ModelStore,
    ) -> None:
        super().__init__(scope, construct_id)
        self.config = config
        self.serving: ServingFunction = functions.create(
            self,
            "Function",
            package="lambda_api",
            handler=API_HANDLER,
            service="mlserve-api",
            settings=config.api_function,
            description="mlserve online predictions (FastAPI via Mangum)",
        )
        self.function = self.serving.function
        model_store.grant_read_model(self.function)
        # API Gateway invokes the alias, so a deploy shifts traffic to a whole new version
        # at once; the model itself hot-swaps inside the function without a deploy.
        self.alias = lambda_.Alias(self, "LiveAlias", alias_name=LIVE_ALIAS, version=self.function.current_version)

        removal = RemovalPolicy.RETAIN if config.is_prod else RemovalPolicy.DESTROY
        self.access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=log_retention(config.log_retention_days),
            removal_policy=removal,
        )
        self.api = apigw.LambdaRestApi(
            self,
            "RestApi",
            rest_api_name=f"mlserve-{config.model_name}",
            description=f"mlserve online predictions for model {config.model_name}",
            handler=self.alias,
            proxy=True,
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # Access and execution logging need the account-level CloudWatch role.
            cloud_watch_role=True,
            # The role is an account-wide singleton setting that other APIs may rely on too.
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN,
            default_method_options=self._method_options(config),
            deploy_options=apigw.StageOptions(
                stage_name=STAGE_NAME,
                tracing_enabled=True,
                metrics_enabled=True,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                # Request bodies can hold personal data: never log them.
                data_trace_enabled=False,
                throttling_rate_limit=config.throttle_rate_limit,
                throttling_burst_limit=config.throttle_burst_limit,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
            ),
        )

        self.api_key: apigw.IApiKey | None = None
        if config.auth == "api_key":
            plan = self.api.add_usage_plan(
                "UsagePlan",
                name=f"mlserve-{config.model_name}",
                throttle=apigw.ThrottleSettings(
                    rate_limit=config.throttle_rate_limit,
                    burst_limit=config.throttle_burst_limit,
                ),
                quota=apigw.QuotaSettings(limit=config.quota_requests_per_day, period=apigw.Period.DAY),
            )
            plan.add_api_stage(stage=self.api.deployment_stage)
            self.api_key = self.api.add_api_key("ApiKey")
            plan.add_api_key(self.api_key)

        self._acknowledge_findings(config, model_store)

    def _acknowledge_findings(self, config: ServingConfig, model_store: ModelStore) -> None:
        bucket_ref = logical_id_ref(model_store.bucket)
        acknowledge(
            self.serving.role,
            "AwsSolutions",
            f"AwsSolutions-IAM5[Resource::<{bucket_ref}.Arn>/models/{config.model_name}/*]",
            "Read-only s3:GetObject on this model's own prefix: versions are published at "
            "run time (models/<name>/versions/<v>/), so their keys cannot be listed here.",
        )
        acknowledge(
            self.function,
            "Serverless",
            "Serverless-LambdaDLQ",
            "Invoked synchronously by API Gateway only: errors return to the caller, and a "
            "dead-letter queue applies to asynchronous invocations only.",
        )
        acknowledge(
            self.api,
            "AwsSolutions",
            "AwsSolutions-APIG2",
            "The FastAPI app validates every request against the live model's signature and "
            "answers 4xx naming the field; a gateway model would go stale on each promotion.",
        )
        acknowledge(
            self.api,
            "AwsSolutions",
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AmazonAPIGatewayPushToCloudWatchLogs]",
            "Account-level API Gateway logging role: this AWS-managed policy is the one AWS "
            "documents for it and only allows writing CloudWatch Logs.",
        )
        acknowledge(
            self.api.deployment_stage,
            "AwsSolutions",
            "AwsSolutions-APIG3",
            "Abuse is bounded by stage throttling and the usage plan's throttle and quota; a "
            "WAF web ACL is left to the account's central (Firewall Manager) policy.",
        )
        methods = [child for child in self.api.methods]
        for method in methods:
            acknowledge(
                method,
                "AwsSolutions",
                "AwsSolutions-COG4",
                "Callers are services, not end users: they authenticate with an API key "
                "(usage plan) or SigV4 (auth=iam), so there is no Cognito user pool.",
            )
            if config.auth == "api_key":
                acknowledge(
                    method,
                    "AwsSolutions",
                    "AwsSolutions-APIG4",
                    "auth=api_key: every method requires an API key bound to a usage plan "
                    "with throttle and quota; choose -c auth=iam for SigV4 authorization.",
                )
            elif config.auth == "none":
                acknowledge(
                    method,
                    "AwsSolutions",
                    "AwsSolutions-APIG4",
                    "auth=none was chosen explicitly for a local emulator deployment "
                    "(refused with environment=prod by the config).",
                )

    @staticmethod
    def _method_options(config: ServingConfig) -> apigw.MethodOptions:
        if config.auth == "api_key":
            return apigw.MethodOptions(api_key_required=True)
        if config.auth == "iam":
            return apigw.MethodOptions(authorization_type=apigw.AuthorizationType.IAM)
        return apigw.MethodOptions(authorization_type=apigw.AuthorizationType.NONE)

    @property
    def url(self) -> str:
        return self.api.url
