"""The one deployable stack: model store, shared layers (or, with ``bundle_deps=function``,
self-contained function assets), batch scoring, the online API (with
the web page's needs), promotion-driven redeploys and monitoring. Each concern asks
``self.functions`` for its functions, grants what they need and wires them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.batch import BatchScoring, BatchScoringProps
from infra.bundling import (
    DEFAULT_CACHE_ROOT,
    bundled_function_code,
    common_layer_code,
    deps_layer_code,
    function_lock,
    lock_pins,
)
from infra.config import FUNCTION_KINDS, DriftConfig, ServingConfig
from infra.drift import DriftMonitoring, DriftMonitoringProps
from infra.fanout import BatchFanout, BatchFanoutProps
from infra.functions import FunctionFactory, lambda_architecture, lambda_runtime
from infra.model_store import ModelStore, ModelStoreProps
from infra.monitoring import Monitoring
from infra.nag import acknowledge
from infra.online_api import OnlineApi, OnlineApiProps
from infra.promotion import Promotion, PromotionProps
from infra.schedules import ScheduledScoring, ScheduledScoringProps
from infra.streaming import StreamScoring, StreamScoringProps


class MlserveStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: ServingConfig,
        layer_cache_root: Path = DEFAULT_CACHE_ROOT,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        runtime = lambda_runtime(config.python_runtime)
        architecture = lambda_architecture(config.architecture)

        self.model_store = ModelStore(self, "ModelStore", props=ModelStoreProps.from_config(config))

        self.deps_layer: lambda_.LayerVersion | None = None
        self.common_layer: lambda_.LayerVersion | None = None
        if config.bundle_deps == "function":
            # No layers (LocalStack's free edition refuses them): every function's code
            # asset carries the deps and the mlserve package itself.
            def code(package: str) -> lambda_.Code:
                return bundled_function_code(
                    package,
                    architecture=config.architecture,
                    python_version=config.layer_python_version,
                    cache_root=layer_cache_root,
                )

            self.functions = FunctionFactory(config=config, layers=[], store_uri=self.model_store.store_uri, code=code)
        else:
            # One deps layer per distinct function set (layers/deps/locks/<kind>.txt): each
            # function carries only what its imports need (the webhook: no numpy at all).
            self.deps_layers: dict[str, lambda_.LayerVersion] = {}
            layer_by_lock: dict[tuple[str, ...], lambda_.LayerVersion] = {}
            for kind in FUNCTION_KINDS:
                lock = function_lock(kind)
                pinned = tuple(lock_pins(lock))
                if pinned not in layer_by_lock:
                    layer_by_lock[pinned] = lambda_.LayerVersion(
                        self,
                        "DepsLayer" if kind == "api" else f"{kind.title()}DepsLayer",
                        description=(
                            f"mlserve third-party deps of the {kind} function (layers/deps/locks/{kind}.txt) "
                            f"for {config.python_runtime}/{config.architecture}"
                        ),
                        code=deps_layer_code(
                            architecture=config.architecture,
                            python_version=config.layer_python_version,
                            cache_root=layer_cache_root,
                            requirements=lock,
                        ),
                        compatible_runtimes=[runtime],
                        compatible_architectures=[architecture],
                    )
                self.deps_layers[kind] = layer_by_lock[pinned]
            self.deps_layer = self.deps_layers["api"]
            self.common_layer = lambda_.LayerVersion(
                self,
                "CommonLayer",
                description="mlserve shared runtime package (layers/common/python/mlserve)",
                code=common_layer_code(),
                compatible_runtimes=[runtime],
                compatible_architectures=[architecture],
            )
            self.functions = FunctionFactory(
                config=config,
                layers=[self.deps_layer, self.common_layer],
                store_uri=self.model_store.store_uri,
                kind_layers={kind: [layer, self.common_layer] for kind, layer in self.deps_layers.items()},
            )

        self.batch = BatchScoring(
            self,
            "BatchScoring",
            props=BatchScoringProps.from_config(config),
            functions=self.functions,
            model_store=self.model_store,
        )
        # Big files: the batch function hands them to a Step Functions Distributed Map.
        self.fanout = BatchFanout(
            self,
            "BatchFanout",
            props=BatchFanoutProps.from_config(config),
            functions=self.functions,
            model_store=self.model_store,
            batch=self.batch,
        )

        # The API also serves the web page: browser uploads into the batch bucket's
        # incoming/ (presigned POST) and results from results/ (presigned GET).
        self.online_api = OnlineApi(
            self,
            "OnlineApi",
            props=OnlineApiProps.from_config(config),
            functions=self.functions,
            model_store=self.model_store,
            batch=self.batch,
        )

        self.promotion = Promotion(
            self,
            "Promotion",
            props=PromotionProps.from_config(config),
            functions=self.functions,
            model_store=self.model_store,
            api=self.online_api.routes,
        )

        # Streaming (context stream) and scheduled batches (context schedules): same scorer,
        # same live model, off unless configured.
        self.streaming: StreamScoring | None = None
        if config.stream is not None:
            self.streaming = StreamScoring(
                self,
                "StreamScoring",
                props=StreamScoringProps.from_config(config, config.stream),
                functions=self.functions,
                model_store=self.model_store,
                output_bucket=self.batch.bucket,
            )
        self.scheduled: ScheduledScoring | None = None
        if config.schedules:
            self.scheduled = ScheduledScoring(
                self,
                "ScheduledScoring",
                props=ScheduledScoringProps.from_config(config),
                functions=self.functions,
                model_store=self.model_store,
                batch=self.batch,
            )

        # Drift monitoring (docs/monitoring.md): capture stream, scheduled job, share alarm.
        self.drift_config = DriftConfig.from_context(self.node.try_get_context)
        self.drift: DriftMonitoring | None = None
        if self.drift_config.enabled:
            self.drift = DriftMonitoring(
                self,
                "DriftMonitoring",
                props=DriftMonitoringProps.from_config(config, self.drift_config),
                functions=self.functions,
                model_store=self.model_store,
                api_function=self.online_api.function,
                event_bus=self.promotion.bus,
                batch_bucket=self.batch.bucket,
            )

        # Alarms (API 5XX rate and p99, errors/throttles per function, batch DLQ,
        # ModelDeploymentFailed) to one SNS topic, and the dashboard.
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            api=self.online_api.api,
            functions={
                "api": self.online_api.function,
                "batch": self.batch.function,
                "redeploy": self.promotion.redeploy_function,
                "webhook": self.promotion.webhook_function,
                **({"stream": self.streaming.function} if self.streaming is not None else {}),
                **({"scheduled": self.scheduled.function} if self.scheduled is not None else {}),
                **({"drift": self.drift.function} if self.drift is not None else {}),
                # the fan-out's steps (a failed range raises in its function: FanoutrangeErrors)
                "fanoutplan": self.fanout.plan.function,
                "fanoutrange": self.fanout.range.function,
                "fanoutmerge": self.fanout.merge.function,
                "fanoutfail": self.fanout.fail.function,
            },
            batch_dlq=self.batch.dead_letter_queue,
            redeploy_dlq=self.promotion.dlq,
            event_bus=self.promotion.bus,
            alarm_email=config.alarm_email,
            removal_policy=RemovalPolicy.RETAIN if config.is_prod else RemovalPolicy.DESTROY,
        )

        if self.streaming is not None:
            self.stream_alarms = self.streaming.add_alarms(self.monitoring.topic)
        if self.drift is not None:
            self.drift.notify(self.monitoring.topic)

        self._acknowledge_cdk_provided_findings()

        CfnOutput(self, "ApiUrl", value=self.online_api.url, description="Base URL of the API")
        if self.online_api.api_key is not None:
            CfnOutput(
                self,
                "ApiKeyId",
                value=self.online_api.api_key.key_id,
                description="aws apigateway get-api-key --api-key <id> --include-value",
            )
        CfnOutput(
            self,
            "ModelBucketName",
            value=self.model_store.bucket.bucket_name,
            description="mlserve publish ... --store s3://<this>",
        )
        CfnOutput(
            self,
            "BatchBucketName",
            value=self.batch.bucket.bucket_name,
            description="aws s3 cp data.csv s3://<this>/incoming/ ; results under s3://<this>/results/",
        )
        CfnOutput(
            self,
            "EventBusName",
            value=self.promotion.bus.event_bus_name,
            description="mlserve promote NAME VERSION --bus <this> (ModelPromoted events)",
        )
        CfnOutput(
            self,
            "WebhookUrl",
            value=self.online_api.api.url_for_path("/registry/events"),
            description="MLflow webhook URL (event model_version_alias.created, HMAC secret: WebhookSecretArn)",
        )
        CfnOutput(
            self,
            "WebhookSecretArn",
            value=self.promotion.webhook_secret.secret_arn,
            description="aws secretsmanager get-secret-value --secret-id <this> --query SecretString --output text",
        )
        CfnOutput(
            self,
            "AlarmTopicArn",
            value=self.monitoring.topic.topic_arn,
            description="SNS topic of every mlserve alarm (context alarm_email subscribes an address)",
        )
        CfnOutput(
            self,
            "DashboardName",
            value=self.monitoring.dashboard.dashboard_name,
            description="CloudWatch dashboard: online, batch and deployment views",
        )
        if self.drift is not None:
            CfnOutput(
                self,
                "MonitoringBucketName",
                value=self.drift.bucket.bucket_name,
                description="captured requests (capture/) and drift reports (monitoring/<model>/drift/)",
            )
            CfnOutput(
                self,
                "DriftFunctionName",
                value=self.drift.function.function_name,
                description="aws lambda invoke --function-name <this> out.json (runs the drift job now)",
            )

        if self.streaming is not None:
            CfnOutput(
                self,
                "StreamInputName",
                value=self.streaming.input_stream.stream_name,
                description="mlserve stream-send data.csv --stream <this> (Kinesis input)",
            )
            if self.streaming.output_stream is not None:
                CfnOutput(
                    self,
                    "StreamOutputName",
                    value=self.streaming.output_stream.stream_name,
                    description="mlserve stream-read --stream <this> (Kinesis predictions)",
                )
            if self.streaming.delivery_stream is not None:
                CfnOutput(
                    self,
                    "StreamDeliveryStreamName",
                    value=self.streaming.delivery_stream.ref,
                    description="Firehose of the predictions (JSON lines under s3://<BatchBucketName>/stream-output/)",
                )
            CfnOutput(
                self,
                "StreamFailureQueueUrl",
                value=self.streaming.failure_queue.queue_url,
                description="Malformed records (with the reason) and batches that exhausted their retries",
            )
            CfnOutput(self, "StreamFunctionName", value=self.streaming.function.function_name)
        if self.scheduled is not None:
            CfnOutput(
                self,
                "ScheduledFunctionName",
                value=self.scheduled.function.function_name,
                description=(
                    "Run a schedule now: aws lambda invoke --function-name <this> "
                    '--cli-binary-format raw-in-base64-out --payload \'{"schedule": "NAME"}\' out.json'
                ),
            )

    def _acknowledge_cdk_provided_findings(self) -> None:
        """Resources CDK adds on its own: ``add_event_notification`` creates one stack-wide
        singleton function (``BucketNotificationsHandler<hash>``) that configures S3
        notifications at deploy time. Its code and role are CDK's, not ours."""
        for child in self.node.children:
            if child.node.id.startswith("BucketNotificationsHandler"):
                acknowledge(
                    child,
                    "AwsSolutions",
                    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                    "AWSLambdaBasicExecutionRole]",
                    "CDK's BucketNotificationsHandler (deploy-time custom resource that sets the batch "
                    "bucket's S3 notifications): CDK attaches this managed policy to its role; it only "
                    "allows writing its own CloudWatch logs and cannot be replaced.",
                )
