"""Drift monitoring (docs/monitoring.md): the capture stream, the scheduled drift job, its
alarm, and the API's part (capture settings, read access to the reports).

- a monitoring bucket: ``capture/<model>/<version>/dt=YYYY-MM-DD/`` (Firehose, GZIP,
  expired after ``capture_retention_days``) and ``monitoring/<model>/drift/`` (reports);
- a Kinesis Data Firehose Direct PUT stream the API function hands sampled rows to
  (dynamic partitioning on the record's ``version``);
- the drift job (``lambda_batch.drift``) on an EventBridge Scheduler schedule: reads the
  live version's profile, the window's captures and the batch inputs (in place), writes
  the reports, ``PutMetricData`` in the ``mlserve`` namespace, ``ModelDriftDetected`` on
  the project bus;
- an alarm when ``DriftedFeatureShare`` reaches ``drift_share`` (to the alarm topic, see ``notify``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.config import DriftConfig, ServingConfig
from infra.functions import FunctionFactory
from infra.model_store import ModelStore, hardened_bucket
from infra.nag import acknowledge, logical_id_ref
from mlserve.contract import DRIFT_SCHEDULE_SOURCE, DRIFTED_FEATURE_SHARE, INCOMING_PREFIX, METRICS_NAMESPACE, Env

DRIFT_HANDLER = "lambda_batch.drift.handler"


@dataclass(frozen=True)
class DriftMonitoringProps:
    """What drift monitoring uses: the model it watches, prod or not, and its own settings."""

    model_name: str
    is_prod: bool
    drift: DriftConfig

    @classmethod
    def from_config(cls, config: ServingConfig, drift: DriftConfig) -> DriftMonitoringProps:
        return cls(model_name=config.model_name, is_prod=config.is_prod, drift=drift)


class DriftMonitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: DriftMonitoringProps,
        functions: FunctionFactory,
        model_store: ModelStore,
        api_function: lambda_.Function,
        event_bus: events.IEventBus,
        batch_bucket: s3.IBucket | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.props = props
        drift = props.drift
        model = props.model_name
        capture_prefix = f"capture/{model}/"
        reports_prefix = f"monitoring/{model}/drift/"
        self.bucket = hardened_bucket(
            self,
            "Bucket",
            is_prod=props.is_prod,
            server_access_logs_bucket=model_store.access_log_bucket,
            server_access_logs_prefix="monitoring-bucket/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-captured-requests",
                    prefix="capture",
                    expiration=Duration.days(drift.capture_retention_days),
                    noncurrent_version_expiration=Duration.days(1),
                )
            ],
        )

        # --- the capture stream: Firehose -> S3, buffered and compressed ---
        self.stream_role = iam.Role(
            self, "StreamRole", assumed_by=iam.ServicePrincipal("firehose.amazonaws.com"), description="mlserve capture"
        )
        self.stream_role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject", "s3:AbortMultipartUpload"],
                resources=[self.bucket.arn_for_objects("capture/*"), self.bucket.arn_for_objects("capture-errors/*")],
            )
        )
        self.stream_role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
                resources=[self.bucket.bucket_arn],
            )
        )
        self.stream = firehose.CfnDeliveryStream(
            self,
            "CaptureStream",
            delivery_stream_type="DirectPut",
            delivery_stream_encryption_configuration_input=firehose.CfnDeliveryStream.DeliveryStreamEncryptionConfigurationInputProperty(
                key_type="AWS_OWNED_CMK"
            ),
            extended_s3_destination_configuration=firehose.CfnDeliveryStream.ExtendedS3DestinationConfigurationProperty(
                bucket_arn=self.bucket.bucket_arn,
                role_arn=self.stream_role.role_arn,
                prefix=capture_prefix + "!{partitionKeyFromQuery:version}/dt=!{timestamp:yyyy-MM-dd}/",
                error_output_prefix="capture-errors/"
                + model
                + "/!{firehose:error-output-type}/dt=!{timestamp:yyyy-MM-dd}/",
                compression_format="GZIP",
                # Dynamic partitioning needs at least 64 MB buffers; 5 minutes bounds the delay.
                buffering_hints=firehose.CfnDeliveryStream.BufferingHintsProperty(
                    interval_in_seconds=300, size_in_m_bs=64
                ),
                dynamic_partitioning_configuration=firehose.CfnDeliveryStream.DynamicPartitioningConfigurationProperty(
                    enabled=True
                ),
                processing_configuration=firehose.CfnDeliveryStream.ProcessingConfigurationProperty(
                    enabled=True,
                    processors=[
                        firehose.CfnDeliveryStream.ProcessorProperty(
                            type="MetadataExtraction",
                            parameters=[
                                firehose.CfnDeliveryStream.ProcessorParameterProperty(
                                    parameter_name="MetadataExtractionQuery", parameter_value="{version: .version}"
                                ),
                                firehose.CfnDeliveryStream.ProcessorParameterProperty(
                                    parameter_name="JsonParsingEngine", parameter_value="JQ-1.6"
                                ),
                            ],
                        ),
                    ],
                ),
            ),
        )
        self.stream.node.add_dependency(self.stream_role)
        stream_arn = self.stream.attr_arn

        # --- the API's part: where to send captures, what to capture, where reports are ---
        api_function.add_environment(Env.CAPTURE_STREAM, self.stream.ref)
        api_function.add_environment(Env.CAPTURE_SAMPLE_RATE, str(drift.capture_sample_rate))
        api_function.add_environment(Env.CAPTURE_MAX_ROWS_PER_MINUTE, str(drift.capture_max_rows_per_minute))
        api_function.add_environment(Env.CAPTURE_COLUMNS, ",".join(drift.capture_columns))
        api_function.add_environment(Env.MONITORING_STORE, f"s3://{self.bucket.bucket_name}")
        api_function.add_to_role_policy(
            iam.PolicyStatement(sid="CaptureRequests", actions=["firehose:PutRecordBatch"], resources=[stream_arn])
        )
        api_function.add_to_role_policy(
            iam.PolicyStatement(
                sid="ReadDriftReports",
                actions=["s3:GetObject"],
                resources=[self.bucket.arn_for_objects(f"{reports_prefix}*")],
            )
        )

        # --- the drift job ---
        environment = {
            Env.MONITORING_STORE: f"s3://{self.bucket.bucket_name}",
            Env.DRIFT_WINDOW_DAYS: str(drift.window_days),
            Env.DRIFT_NUMERIC_TEST: drift.numeric_test,
            Env.DRIFT_CATEGORICAL_TEST: drift.categorical_test,
            Env.DRIFT_THRESHOLDS: json.dumps(drift.thresholds, sort_keys=True),
            Env.DRIFT_SHARE: str(drift.drift_share),
            Env.EVENT_BUS: event_bus.event_bus_name,
        }
        if batch_bucket is not None:
            environment[Env.BATCH_STORE] = f"s3://{batch_bucket.bucket_name}"
            environment[Env.DRIFT_BATCH_PREFIXES] = INCOMING_PREFIX
        self.serving = functions.create(
            self,
            "JobFunction",
            package="lambda_batch",
            handler=DRIFT_HANDLER,
            service="mlserve-drift",
            settings=drift.function,
            description="mlserve drift job: reference profile vs captured requests and batch inputs",
            extra_environment=environment,
        )
        self.function = self.serving.function
        self.role = self.serving.role
        model_store.grant_read_model(self.role)
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadCaptures",
                actions=["s3:GetObject"],
                resources=[self.bucket.arn_for_objects(f"{capture_prefix}*")],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ListCaptures",
                actions=["s3:ListBucket"],
                resources=[self.bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{capture_prefix}*"]}},
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteDriftReports",
                actions=["s3:PutObject"],
                resources=[self.bucket.arn_for_objects(f"{reports_prefix}*")],
            )
        )
        if batch_bucket is not None:
            self.role.add_to_policy(
                iam.PolicyStatement(
                    sid="ReadBatchInputs",
                    actions=["s3:GetObject"],
                    resources=[batch_bucket.arn_for_objects(f"{INCOMING_PREFIX}*")],
                )
            )
            self.role.add_to_policy(
                iam.PolicyStatement(
                    sid="ListBatchInputs",
                    actions=["s3:ListBucket"],
                    resources=[batch_bucket.bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [f"{INCOMING_PREFIX}*"]}},
                )
            )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="PutDriftMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": METRICS_NAMESPACE}},
            )
        )
        event_bus.grant_put_events_to(self.role)

        # --- the schedule ---
        self.scheduler_role = iam.Role(
            self,
            "SchedulerRole",
            assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com"),
            description="mlserve drift",
        )
        self.scheduler_role.add_to_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[self.function.function_arn])
        )
        self.schedule = scheduler.CfnSchedule(
            self,
            "Schedule",
            description=f"mlserve drift job for {model}",
            schedule_expression=drift.schedule,
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            target=scheduler.CfnSchedule.TargetProperty(
                arn=self.function.function_arn,
                role_arn=self.scheduler_role.role_arn,
                input=json.dumps({"source": DRIFT_SCHEDULE_SOURCE}),
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                    maximum_retry_attempts=2, maximum_event_age_in_seconds=3600
                ),
            ),
        )

        # --- the alarm ---
        self.share_metric = cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=DRIFTED_FEATURE_SHARE,
            dimensions_map={"Model": model},
            statistic="Maximum",
            period=Duration.days(1),
        )
        self.alarm = cloudwatch.Alarm(
            self,
            "DriftedShareAlarm",
            metric=self.share_metric,
            threshold=drift.drift_share,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=(
                f"Dataset drift on {model}: the share of drifted features reached {drift.drift_share} "
                f"(report: s3://<monitoring bucket>/{reports_prefix}<date>.html; docs/monitoring.md)"
            ),
        )
        self._acknowledge(model=model, model_store=model_store, api_function=api_function, batch_bucket=batch_bucket)

    def notify(self, topic: sns.ITopic) -> None:
        """Send the drift alarm to the alarm topic (created after this construct, because
        infra/monitoring.py also alarms on this construct's function)."""
        self.alarm.add_alarm_action(cw_actions.SnsAction(topic))

    def _acknowledge(
        self, *, model: str, model_store: ModelStore, api_function: lambda_.Function, batch_bucket: s3.IBucket | None
    ) -> None:
        bucket = logical_id_ref(self.bucket)
        model_bucket = logical_id_ref(model_store.bucket)
        reports = f"Resource::<{bucket}.Arn>/monitoring/{model}/drift/*"
        job_reasons = {
            "Resource::*": "cloudwatch:PutMetricData has no resource-level permissions; the cloudwatch:namespace "
            "condition limits it to the mlserve namespace (and X-Ray, as for every function).",
            f"Resource::<{model_bucket}.Arn>/models/{model}/*": "Read-only s3:GetObject on this model's own prefix: "
            "live.json names the version whose profile.json the job compares with.",
            f"Resource::<{bucket}.Arn>/capture/{model}/*": "Read-only s3:GetObject on this model's captured requests "
            "(Firehose writes one object per buffer, under version and date partitions).",
            reports: "s3:PutObject of this model's drift reports only (<date>.json, <date>.html, latest.json).",
        }
        if batch_bucket is not None and isinstance(batch_bucket, s3.Bucket):
            job_reasons[f"Resource::<{logical_id_ref(batch_bucket)}.Arn>/incoming/*"] = (
                "Read-only s3:GetObject on batch inputs: the job profiles scored files in place, never copies them."
            )
        for resource, reason in job_reasons.items():
            acknowledge(self.role, "AwsSolutions", f"AwsSolutions-IAM5[{resource}]", reason)
        for prefix in ("capture", "capture-errors"):
            acknowledge(
                self.stream_role,
                "AwsSolutions",
                f"AwsSolutions-IAM5[Resource::<{bucket}.Arn>/{prefix}/*]",
                "Firehose writes objects with generated names under its own prefixes of the monitoring bucket.",
            )
        acknowledge(
            api_function.role or self.role,
            "AwsSolutions",
            f"AwsSolutions-IAM5[{reports}]",
            "Read-only s3:GetObject on this model's drift reports, for GET /monitoring/latest(.html).",
        )
        acknowledge(
            self.function,
            "Serverless",
            "Serverless-LambdaDLQ",
            "Invoked by EventBridge Scheduler, whose target retry policy retries failed runs; a missed day "
            "is covered by the next run's window, and failures raise the function's Errors alarm "
            "(infra/monitoring.py).",
        )
