"""Streaming scoring (context ``stream``): a Kinesis input stream, a Lambda event source
mapping, the shared scorer + live model on each batch, predictions out to a second Kinesis
stream or a Firehose delivery stream into the batch bucket (context ``stream_output``).

Failure path: one SQS queue. Malformed records are sent there by the function itself
(with the reason) and not reported as failures, so they never hold up the shard; batches
that still fail after the mapping's retries (bisected down to the failing record) are sent
there by Lambda as the mapping's on-failure destination (metadata: shard and sequence range).

Least privilege: the function reads exactly the input stream, writes exactly the output
(stream or delivery stream) and sends to exactly the failure queue.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import FunctionSettings, ServingConfig, StreamSettings
from infra.functions import FunctionFactory, ServingFunction, log_retention
from infra.model_store import ModelStore
from infra.nag import acknowledge, logical_id_ref
from mlserve.contract import Env

STREAM_HANDLER = "lambda_batch.stream.handler"
# Firehose output lands here, in the batch bucket (JSON lines, one prediction record a line).
FIREHOSE_PREFIX = "stream-output/"
FIREHOSE_ERROR_PREFIX = "stream-output-errors/"


@dataclass(frozen=True)
class StreamScoringProps:
    """What streaming uses of the configuration (context stream_*, functions.stream)."""

    model_name: str
    is_prod: bool
    log_retention_days: int
    function: FunctionSettings
    stream: StreamSettings

    @classmethod
    def from_config(cls, config: ServingConfig, stream: StreamSettings) -> StreamScoringProps:
        return cls(
            model_name=config.model_name,
            is_prod=config.is_prod,
            log_retention_days=config.log_retention_days,
            function=config.stream_function,
            stream=stream,
        )


class StreamScoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: StreamScoringProps,
        functions: FunctionFactory,
        model_store: ModelStore,
        output_bucket: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        removal = RemovalPolicy.RETAIN if props.is_prod else RemovalPolicy.DESTROY
        self.props = props
        settings = self.settings = props.stream
        retention = Duration.hours(settings.retention_hours)
        self.input_stream = kinesis.Stream(
            self,
            "InputStream",
            shard_count=settings.shards,
            retention_period=retention,
            encryption=kinesis.StreamEncryption.MANAGED,
            removal_policy=removal,
        )
        self.failure_queue = sqs.Queue(
            self,
            "FailureQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
            removal_policy=removal,
        )

        self.output_stream: kinesis.Stream | None = None
        self.delivery_stream: firehose.CfnDeliveryStream | None = None
        if settings.output == "kinesis":
            self.output_stream = kinesis.Stream(
                self,
                "OutputStream",
                shard_count=settings.shards,
                retention_period=retention,
                encryption=kinesis.StreamEncryption.MANAGED,
                removal_policy=removal,
            )
            output_name = self.output_stream.stream_name
        else:
            self.delivery_stream = self._delivery_stream(output_bucket, removal)
            output_name = self.delivery_stream.ref

        self.serving: ServingFunction = functions.create(
            self,
            "Function",
            package="lambda_batch",
            handler=STREAM_HANDLER,
            service="mlserve-stream",
            settings=props.function,
            kind="stream",
            description=f"mlserve stream scoring: Kinesis records -> {settings.output} predictions",
            extra_environment={
                Env.STREAM_OUTPUT: settings.output,
                Env.STREAM_OUTPUT_NAME: output_name,
                Env.STREAM_FAILURE_QUEUE_URL: self.failure_queue.queue_url,
            },
        )
        self.function = self.serving.function
        self.role = self.serving.role

        # The mapping (grants the role read on the input stream only, and SendMessage on the
        # queue for the on-failure destination).
        self.function.add_event_source(
            event_sources.KinesisEventSource(
                self.input_stream,
                starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                batch_size=settings.batch_size,
                max_batching_window=Duration.seconds(settings.batching_window_seconds),
                report_batch_item_failures=True,
                bisect_batch_on_error=settings.bisect_on_error,
                on_failure=event_sources.SqsDlq(self.failure_queue),
                max_record_age=(
                    Duration.seconds(settings.max_record_age_seconds) if settings.max_record_age_seconds != -1 else None
                ),
                retry_attempts=settings.retry_attempts,
                parallelization_factor=settings.parallelization_factor,
            )
        )
        if self.output_stream is not None:
            # Only the writes the consumer does (CDK's grant_write adds ListShards too).
            self.role.add_to_policy(
                iam.PolicyStatement(
                    actions=["kinesis:PutRecord", "kinesis:PutRecords"], resources=[self.output_stream.stream_arn]
                )
            )
        else:
            assert self.delivery_stream is not None
            self.role.add_to_policy(
                iam.PolicyStatement(
                    actions=["firehose:PutRecord", "firehose:PutRecordBatch"],
                    resources=[self.delivery_stream.attr_arn],
                )
            )
        self.failure_queue.grant_send_messages(self.role)
        model_store.grant_read_model(self.role)
        self._acknowledge_findings(model_store)

    def add_alarms(self, topic: sns.ITopic, iterator_age_seconds: int = 300) -> dict[str, cloudwatch.Alarm]:
        """Alarms on the alarm topic: anything in the failure queue (malformed records or
        batches that exhausted their retries), and a consumer falling behind its shard."""
        action = cw_actions.SnsAction(topic)
        alarms = {
            "StreamFailures": cloudwatch.Alarm(
                self,
                "FailureQueueAlarm",
                metric=self.failure_queue.metric_approximate_number_of_messages_visible(period=Duration.minutes(5)),
                alarm_description="stream: records in the failure queue (malformed or retries exhausted)",
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            "StreamIteratorAge": cloudwatch.Alarm(
                self,
                "IteratorAgeAlarm",
                metric=self.function.metric("IteratorAge", statistic="Maximum", period=Duration.minutes(1)),
                alarm_description=f"stream: consumer more than {iterator_age_seconds}s behind its shard",
                threshold=iterator_age_seconds * 1000,
                evaluation_periods=5,
                datapoints_to_alarm=3,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
        }
        for created in alarms.values():
            created.add_alarm_action(action)
            created.add_ok_action(action)
        return alarms

    def _delivery_stream(self, bucket: s3.IBucket, removal: RemovalPolicy) -> firehose.CfnDeliveryStream:
        """L1 with our own role: CDK's S3 destination grants read/write/delete on the whole
        bucket; Firehose needs only to put objects under its two prefixes."""
        log_group = logs.LogGroup(
            self, "DeliveryLogs", retention=log_retention(self.props.log_retention_days), removal_policy=removal
        )
        log_stream = logs.LogStream(self, "DeliveryLogStream", log_group=log_group, removal_policy=removal)
        role = iam.Role(
            self,
            "DeliveryRole",
            assumed_by=iam.ServicePrincipal(
                "firehose.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}},
            ),
            description="Firehose: write stream predictions under stream-output/ of the batch bucket",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
                resources=[bucket.bucket_arn],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject", "s3:AbortMultipartUpload"],
                resources=[
                    bucket.arn_for_objects(f"{FIREHOSE_PREFIX}*"),
                    bucket.arn_for_objects(f"{FIREHOSE_ERROR_PREFIX}*"),
                ],
            )
        )
        role.add_to_policy(iam.PolicyStatement(actions=["logs:PutLogEvents"], resources=[log_group.log_group_arn]))
        stream = firehose.CfnDeliveryStream(
            self,
            "DeliveryStream",
            delivery_stream_type="DirectPut",
            delivery_stream_encryption_configuration_input=firehose.CfnDeliveryStream.DeliveryStreamEncryptionConfigurationInputProperty(
                key_type="AWS_OWNED_CMK"
            ),
            extended_s3_destination_configuration=firehose.CfnDeliveryStream.ExtendedS3DestinationConfigurationProperty(
                bucket_arn=bucket.bucket_arn,
                role_arn=role.role_arn,
                prefix=FIREHOSE_PREFIX + "!{timestamp:yyyy/MM/dd/HH}/",
                error_output_prefix=FIREHOSE_ERROR_PREFIX + "!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/",
                buffering_hints=firehose.CfnDeliveryStream.BufferingHintsProperty(
                    interval_in_seconds=60, size_in_m_bs=5
                ),
                compression_format="UNCOMPRESSED",
                cloud_watch_logging_options=firehose.CfnDeliveryStream.CloudWatchLoggingOptionsProperty(
                    enabled=True, log_group_name=log_group.log_group_name, log_stream_name=log_stream.log_stream_name
                ),
            ),
        )
        stream.node.add_dependency(role)
        self.delivery_role = role
        acknowledge(
            role,
            "AwsSolutions",
            f"AwsSolutions-IAM5[Resource::<{logical_id_ref(bucket)}.Arn>/{FIREHOSE_PREFIX}*]",
            "Firehose writes time-partitioned objects (keys chosen at delivery time) under stream-output/ only.",
        )
        acknowledge(
            role,
            "AwsSolutions",
            f"AwsSolutions-IAM5[Resource::<{logical_id_ref(bucket)}.Arn>/{FIREHOSE_ERROR_PREFIX}*]",
            "Firehose writes records it could not deliver under stream-output-errors/ only.",
        )
        return stream

    def _acknowledge_findings(self, model_store: ModelStore) -> None:
        acknowledge(
            self.function,
            "Serverless",
            "Serverless-LambdaDLQ",
            "Invoked synchronously by the Kinesis event source mapping, never asynchronously: "
            "its failure path is the mapping's on-failure SQS destination (and malformed records "
            "go to the same queue from the function), a function DLQ would never receive anything.",
        )
        acknowledge(
            self.input_stream,
            "AwsSolutions",
            "AwsSolutions-KDS3",
            "Server-side encryption with the AWS-managed aws/kinesis key: no key policy to "
            "manage; records carry model features, not secrets. Use a customer-managed key "
            "through an Aspect if your data requires one.",
        )
        if self.output_stream is not None:
            acknowledge(
                self.output_stream,
                "AwsSolutions",
                "AwsSolutions-KDS3",
                "Server-side encryption with the AWS-managed aws/kinesis key (as the input stream).",
            )
        acknowledge(
            self.failure_queue,
            "AwsSolutions",
            "AwsSolutions-SQS3",
            "This queue is itself the failure destination (malformed records and batches that "
            "exhausted the mapping's retries); a DLQ for it would only move the same messages.",
        )
        acknowledge(
            self.failure_queue,
            "Serverless",
            "Serverless-SQSRedrivePolicy",
            "End of the stream's failure path: messages are inspected (and the records re-put) "
            "by an operator, not consumed by another function.",
        )
        model_bucket = logical_id_ref(model_store.bucket)
        acknowledge(
            self.role,
            "AwsSolutions",
            f"AwsSolutions-IAM5[Resource::<{model_bucket}.Arn>/models/{self.props.model_name}/*]",
            "Read-only s3:GetObject on this model's own prefix: versions are published at run "
            "time (models/<name>/versions/<v>/), so their keys cannot be listed here.",
        )
