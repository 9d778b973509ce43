"""Online predictions: REST API Gateway -> Lambda proxy -> the API function's ``live`` alias."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.batch import BatchScoring
from infra.config import AuthMode, FunctionSettings, ServingConfig
from infra.functions import FunctionFactory, ServingFunction, log_retention
from infra.model_store import ModelStore
from infra.nag import acknowledge, logical_id_ref
from infra.waf import ApiWaf
from mlserve.contract import INCOMING_PREFIX, Env

API_HANDLER = "lambda_api.handler.handler"
LIVE_ALIAS = "live"
STAGE_NAME = "v1"


# The webhook route, as a stage method-settings key (resource path + HTTP method).
WEBHOOK_METHOD_PATH = "/registry/events/POST"


@dataclass(frozen=True)
class OnlineApiProps:
    """What the online API uses of the configuration: auth, throttles and quota, WAF, the
    page's upload limit and the API function's size."""

    model_name: str
    is_prod: bool
    log_retention_days: int
    auth: AuthMode
    api_function: FunctionSettings
    upload_max_bytes: int
    throttle_rate_limit: float
    throttle_burst_limit: int
    quota_requests_per_day: int
    webhook_throttle_rate_limit: float
    webhook_throttle_burst_limit: int
    waf_enabled: bool
    waf_rate_limit: int

    @classmethod
    def from_config(cls, config: ServingConfig) -> OnlineApiProps:
        return cls(
            model_name=config.model_name,
            is_prod=config.is_prod,
            log_retention_days=config.log_retention_days,
            auth=config.auth,
            api_function=config.api_function,
            upload_max_bytes=config.upload_max_bytes,
            throttle_rate_limit=config.throttle_rate_limit,
            throttle_burst_limit=config.throttle_burst_limit,
            quota_requests_per_day=config.quota_requests_per_day,
            webhook_throttle_rate_limit=config.webhook_throttle_rate_limit,
            webhook_throttle_burst_limit=config.webhook_throttle_burst_limit,
            waf_enabled=config.waf_enabled,
            waf_rate_limit=config.waf_rate_limit,
        )


class ApiRoutes:
    """The narrow view of the RestApi other constructs extend (``PublicRoutes`` of
    infra/promotion.py): they add a route, they do not get the whole API."""

    def __init__(self, api: apigw.IRestApi) -> None:
        self._api = api

    def add_public_route(self, path: str, http_method: str, handler: lambda_.IFunction) -> apigw.Method:
        """``path`` (``/a/b``) with one method that needs neither an API key nor IAM auth:
        the handler authenticates each request itself."""
        resource = self._api.root
        for part in path.strip("/").split("/"):
            resource = resource.get_resource(part) or resource.add_resource(part)
        return resource.add_method(
            http_method,
            apigw.LambdaIntegration(handler),
            authorization_type=apigw.AuthorizationType.NONE,
            api_key_required=False,
        )


class OnlineApi(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: OnlineApiProps,
        functions: FunctionFactory,
        model_store: ModelStore,
        batch: BatchScoring | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.props = props
        self.batch = batch
        page_environment = {
            Env.AUTH: props.auth,
            Env.UPLOAD_MAX_BYTES: str(props.upload_max_bytes),
        }
        if batch is not None:
            page_environment[Env.BATCH_BUCKET] = batch.bucket.bucket_name
            page_environment[Env.RESULTS_PREFIX] = batch.results_prefix
            # The page's CSP connect-src names exactly this origin (the presigned POST target).
            page_environment[Env.UPLOAD_ORIGIN] = "https://" + batch.bucket.bucket_regional_domain_name
        self.serving: ServingFunction = functions.create(
            self,
            "Function",
            package="lambda_api",
            handler=API_HANDLER,
            service="mlserve-api",
            settings=props.api_function,
            kind="api",
            description="mlserve online predictions (FastAPI via Mangum)",
            extra_environment=page_environment,
        )
        self.function = self.serving.function
        model_store.grant_read_model(self.function)
        if batch is not None:
            self._grant_page_uploads(batch)
        # API Gateway invokes the alias, so a deploy shifts traffic to a whole new version
        # at once; the model itself hot-swaps inside the function without a deploy.
        # (The factory creates it, with SnapStart / provisioned concurrency per context.)
        assert self.serving.alias is not None
        self.alias = self.serving.alias

        removal = RemovalPolicy.RETAIN if props.is_prod else RemovalPolicy.DESTROY
        self.access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=log_retention(props.log_retention_days),
            removal_policy=removal,
        )
        self.api = apigw.LambdaRestApi(
            self,
            "RestApi",
            rest_api_name=f"mlserve-{props.model_name}",
            description=f"mlserve online predictions for model {props.model_name}",
            handler=self.alias,
            proxy=True,
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # Access and execution logging need the account-level CloudWatch role.
            cloud_watch_role=True,
            # The role is an account-wide singleton setting that other APIs may rely on too.
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN,
            default_method_options=self._method_options(props),
            deploy_options=apigw.StageOptions(
                stage_name=STAGE_NAME,
                tracing_enabled=True,
                metrics_enabled=True,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                # Request bodies can hold personal data: never log them.
                data_trace_enabled=False,
                throttling_rate_limit=props.throttle_rate_limit,
                throttling_burst_limit=props.throttle_burst_limit,
                # The public webhook (POST /registry/events, added by the Promotion construct)
                # gets its own, smaller bucket: a flood of forged deliveries is throttled there
                # and cannot use up the stage's limit that scoring clients share.
                method_options={
                    WEBHOOK_METHOD_PATH: apigw.MethodDeploymentOptions(
                        throttling_rate_limit=props.webhook_throttle_rate_limit,
                        throttling_burst_limit=props.webhook_throttle_burst_limit,
                    )
                },
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

        # What other constructs (the promotion webhook) may add to the API.
        self.routes = ApiRoutes(self.api)

        self.api_key: apigw.IApiKey | None = None
        if props.auth == "api_key":
            plan = self.api.add_usage_plan(
                "UsagePlan",
                name=f"mlserve-{props.model_name}",
                throttle=apigw.ThrottleSettings(
                    rate_limit=props.throttle_rate_limit,
                    burst_limit=props.throttle_burst_limit,
                ),
                quota=apigw.QuotaSettings(limit=props.quota_requests_per_day, period=apigw.Period.DAY),
            )
            plan.add_api_stage(stage=self.api.deployment_stage)
            self.api_key = self.api.add_api_key("ApiKey")
            plan.add_api_key(self.api_key)

        self.public_page_methods: list[apigw.Method] = []
        if props.auth == "api_key":
            self._public_page_routes()

        self.waf: ApiWaf | None = None
        if props.waf_enabled:
            self.waf = ApiWaf(
                self, "Waf", stage_arn=self.api.deployment_stage.stage_arn, rate_limit=props.waf_rate_limit
            )

        self._acknowledge_findings(props, model_store)

    def _grant_page_uploads(self, batch: BatchScoring) -> None:
        """What the web page's routes do with the API function's credentials: sign the
        presigned POST into ``incoming/`` (S3 checks the signer may PutObject there), read
        reports/predictions under ``results/`` (preview, summary, presigned GET) and list
        both prefixes to tell a job's state. Nothing else in the batch bucket."""
        bucket = batch.bucket
        self.serving.role.add_to_policy(
            iam.PolicyStatement(
                sid="PageUploadIncoming",
                actions=["s3:PutObject"],
                resources=[bucket.arn_for_objects(f"{INCOMING_PREFIX}*")],
            )
        )
        self.serving.role.add_to_policy(
            iam.PolicyStatement(
                sid="PageReadResults",
                actions=["s3:GetObject"],
                resources=[bucket.arn_for_objects(f"{batch.results_prefix}*")],
            )
        )
        self.serving.role.add_to_policy(
            iam.PolicyStatement(
                sid="PageListJobs",
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{INCOMING_PREFIX}*", f"{batch.results_prefix}*"]}},
            )
        )

    def _public_page_routes(self) -> None:
        """Explicit resources for the page (``/ui/...``) so the key-free GETs exist; every
        other method under them (and ``/ui/example``, ``/ui/<anything else>``) keeps the
        stack-wide default: API key required."""
        integration = apigw.LambdaIntegration(self.alias)
        ui = self.api.root.add_resource("ui")
        page_resources = (
            self.api.root,
            ui,
            ui.add_resource("static").add_resource("{name}"),
            ui.add_resource("config"),
        )
        for resource in page_resources:
            self.public_page_methods.append(
                resource.add_method(
                    "GET", integration, api_key_required=False, authorization_type=apigw.AuthorizationType.NONE
                )
            )
        # Keyed (the defaults): the logged input example is model data; anything else under
        # /ui reaches the app as through the root proxy (API Gateway does not fall back from
        # an explicit /ui resource to the root's {proxy+}).
        ui.add_resource("example").add_method("GET", integration)
        ui.add_proxy(default_integration=integration, any_method=True)

    def _acknowledge_findings(self, props: OnlineApiProps, model_store: ModelStore) -> None:
        bucket_ref = logical_id_ref(model_store.bucket)
        if self.batch is not None:
            batch_ref = logical_id_ref(self.batch.bucket)
            acknowledge(
                self.serving.role,
                "AwsSolutions",
                f"AwsSolutions-IAM5[Resource::<{batch_ref}.Arn>/{INCOMING_PREFIX}*]",
                "s3:PutObject only, on incoming/: the web page's presigned POST is signed with this "
                "role and its policy pins one key incoming/<random job id>/<file>, created per upload.",
            )
            acknowledge(
                self.serving.role,
                "AwsSolutions",
                f"AwsSolutions-IAM5[Resource::<{batch_ref}.Arn>/{self.batch.results_prefix}*]",
                "s3:GetObject only, on results/: the page previews a job's report and predictions and "
                "presigns their download; result keys derive from job ids created at run time.",
            )
        acknowledge(
            self.serving.role,
            "AwsSolutions",
            f"AwsSolutions-IAM5[Resource::<{bucket_ref}.Arn>/models/{props.model_name}/*]",
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
        public = {method.node.path for method in self.public_page_methods}
        methods = [child for child in self.api.methods]
        for method in methods:
            if method.node.path in public:
                for rule in ("AwsSolutions-APIG4", "AwsSolutions-COG4"):
                    acknowledge(
                        method,
                        "AwsSolutions",
                        rule,
                        "Web page shell (HTML/JS/CSS, auth mode, upload limit): no model or user data, "
                        "and a browser cannot add an x-api-key header when it navigates; every data "
                        "route keeps the API key (docs/ui.md).",
                    )
                continue
            acknowledge(
                method,
                "AwsSolutions",
                "AwsSolutions-COG4",
                "Callers are services, not end users: they authenticate with an API key "
                "(usage plan) or SigV4 (auth=iam), so there is no Cognito user pool.",
            )
            if props.auth == "api_key":
                acknowledge(
                    method,
                    "AwsSolutions",
                    "AwsSolutions-APIG4",
                    "auth=api_key: every method requires an API key bound to a usage plan "
                    "with throttle and quota; choose -c auth=iam for SigV4 authorization.",
                )
            elif props.auth == "none":
                acknowledge(
                    method,
                    "AwsSolutions",
                    "AwsSolutions-APIG4",
                    "auth=none was chosen explicitly for a local emulator deployment "
                    "(refused with environment=prod by the config).",
                )

    @staticmethod
    def _method_options(props: OnlineApiProps) -> apigw.MethodOptions:
        if props.auth == "api_key":
            return apigw.MethodOptions(api_key_required=True)
        if props.auth == "iam":
            return apigw.MethodOptions(authorization_type=apigw.AuthorizationType.IAM)
        return apigw.MethodOptions(authorization_type=apigw.AuthorizationType.NONE)

    @property
    def url(self) -> str:
        return self.api.url
