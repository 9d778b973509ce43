"""Big batch files fan out on a Step Functions Distributed Map (docs/batch.md "Fan-out").

    Plan (Lambda) -> Ranges (Distributed Map, S3 JSON item reader over the plan's manifest,
    MaxConcurrency from context, one range function per item) -> Merge (Lambda)
    any error -> Fail report (Lambda, the merge function) -> Fail

The S3-triggered batch function starts an execution (named after the object version) for a
plain CSV over ``fanout_threshold_bytes``; smaller files and gzip stay on its own path.
Functions come from the stack's ``FunctionFactory`` like every mlserve function; each step's
role may touch only what that step needs (no delete anywhere). The state machine logs every
event to its own log group and is traced with X-Ray.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy, Stack, Token
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.batch import BatchScoring
from infra.config import ServingConfig
from infra.functions import FunctionFactory, ServingFunction, log_retention
from infra.model_store import ModelStore
from infra.nag import acknowledge, logical_id_ref
from mlserve.contract import INCOMING_PREFIX, Env

FANOUT_DIR = ".fanout/"
# Job files (manifest, parts, range reports) are scratch once the merge wrote the results.
SCRATCH_EXPIRY = Duration.days(7)


class ManifestReader(sfn.S3JsonItemReader):
    """The Distributed Map's S3 JSON item reader, allowed to read the fan-out's scratch prefix
    only (CDK's own reader grants GetObject on the whole bucket)."""

    def __init__(self, *, bucket: s3.IBucket, key: str, readable_prefix: str) -> None:
        super().__init__(bucket=bucket, key=key)
        self._readable = bucket.arn_for_objects(f"{readable_prefix}*")

    def provide_policy_statements(self) -> list[iam.PolicyStatement]:
        return [iam.PolicyStatement(actions=["s3:GetObject"], resources=[self._readable])]


@dataclass(frozen=True)
class BatchFanoutProps:
    """What the fan-out uses of the configuration (context fanout_*)."""

    model_name: str
    is_prod: bool
    log_retention_days: int
    threshold_bytes: int
    range_bytes: int
    max_concurrency: int

    @classmethod
    def from_config(cls, config: ServingConfig) -> BatchFanoutProps:
        return cls(
            model_name=config.model_name,
            is_prod=config.is_prod,
            log_retention_days=config.log_retention_days,
            threshold_bytes=config.fanout_threshold_bytes,
            range_bytes=config.fanout_range_bytes,
            max_concurrency=config.fanout_max_concurrency,
        )


class BatchFanout(Construct):
    """The fan-out state machine, its three step functions and their least-privilege roles."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: BatchFanoutProps,
        functions: FunctionFactory,
        model_store: ModelStore,
        batch: BatchScoring,
    ) -> None:
        super().__init__(scope, construct_id)
        self.props = props
        bucket = batch.bucket
        results = batch.results_prefix
        self.scratch_prefix = f"{results}{FANOUT_DIR}"
        environment = {**batch.scoring_environment, Env.FANOUT_RANGE_BYTES: str(props.range_bytes)}

        # The batch function's memory and timeout, but not its startup settings (no `kind`):
        # the batch function's reserved concurrency would cap every step below
        # fanout_max_concurrency, and the state machine invokes the steps unqualified, so
        # SnapStart would not apply.
        step_settings = batch.props.function

        def step(construct_id: str, handler: str, description: str) -> ServingFunction:
            return functions.create(
                self,
                construct_id,
                package="lambda_batch",
                handler=f"lambda_batch.fanout.{handler}",
                service="mlserve-batch-fanout",
                settings=step_settings,
                description=description,
                extra_environment=environment,
            )

        self.plan = step("Plan", "plan", "mlserve batch fan-out: pin the model version, split the file into ranges")
        self.range = step("Range", "score", "mlserve batch fan-out: score one byte range into a part")
        self.merge = step("Merge", "merge", "mlserve batch fan-out: assemble the parts (UploadPartCopy) and report")
        self.fail = step("FailReport", "fail", "mlserve batch fan-out: the failed report naming the ranges")

        incoming = bucket.arn_for_objects(f"{INCOMING_PREFIX}*")
        scratch = bucket.arn_for_objects(f"{self.scratch_prefix}*")
        results_objects = bucket.arn_for_objects(f"{results}*")
        read_input = iam.PolicyStatement(actions=["s3:GetObject", "s3:GetObjectVersion"], resources=[incoming])
        # Without ListBucket a missing object is a 403, not a 404: a range that never reported
        # must read as "not finished", so the report steps may list the scratch prefix only.
        list_scratch = iam.PolicyStatement(
            actions=["s3:ListBucket"],
            resources=[bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{self.scratch_prefix}*"]}},
        )
        for function in (self.plan, self.range, self.merge, self.fail):
            function.role.add_to_policy(read_input)
        for function in (self.plan, self.range):  # the merge never loads a model
            model_store.grant_read_model(function.role)
        self.plan.role.add_to_policy(iam.PolicyStatement(actions=["s3:PutObject"], resources=[scratch]))
        self.range.role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[scratch]))
        self.range.role.add_to_policy(
            iam.PolicyStatement(actions=["s3:PutObject", "s3:AbortMultipartUpload"], resources=[scratch])
        )
        for function in (self.merge, self.fail):
            # The results (predictions by UploadPartCopy from the parts, report, summary).
            function.role.add_to_policy(
                iam.PolicyStatement(
                    actions=["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"], resources=[results_objects]
                )
            )
            function.role.add_to_policy(list_scratch)

        bucket.add_lifecycle_rule(id="expire-fanout-scratch", prefix=self.scratch_prefix, expiration=SCRATCH_EXPIRY)

        self.state_machine = self._state_machine(bucket)
        batch.function.add_environment(Env.FANOUT_STATE_MACHINE_ARN, self.state_machine.state_machine_arn)
        batch.function.add_environment(Env.FANOUT_THRESHOLD_BYTES, str(props.threshold_bytes))
        self.state_machine.grant_start_execution(batch.role)
        self._acknowledge_findings(model_store, batch)

    def _state_machine(self, bucket: s3.IBucket) -> sfn.StateMachine:
        props = self.props
        plan = tasks.LambdaInvoke(
            self,
            "PlanRanges",
            lambda_function=self.plan.function,
            payload_response_only=True,
            result_path="$.plan",
        )
        score = tasks.LambdaInvoke(
            self,
            "ScoreRange",
            lambda_function=self.range.function,
            payload_response_only=True,
        )
        ranges = sfn.DistributedMap(
            self,
            "ScoreRanges",
            item_reader=ManifestReader(
                bucket=bucket,
                key=sfn.JsonPath.string_at("$.plan.manifest_key"),
                readable_prefix=self.scratch_prefix,
            ),
            item_selector={
                "bucket.$": "$.bucket",
                "job_key.$": "$.plan.job_key",
                "range.$": "$$.Map.Item.Value",
            },
            max_concurrency=props.max_concurrency,
            # A range can run up to the function's 15 minutes: standard (not express) children.
            map_execution_type=sfn.StateMachineType.STANDARD,
            tolerated_failure_percentage=0,
            result_path=sfn.JsonPath.DISCARD,
        )
        ranges.item_processor(score)
        merge = tasks.LambdaInvoke(
            self,
            "MergeParts",
            lambda_function=self.merge.function,
            payload=sfn.TaskInput.from_object(
                {"bucket.$": "$.bucket", "plan.$": "$.plan", "execution.$": "$$.Execution.Id"}
            ),
            payload_response_only=True,
            result_path="$.result",
        )
        report_failure = tasks.LambdaInvoke(
            self,
            "ReportFailure",
            lambda_function=self.fail.function,
            payload=sfn.TaskInput.from_object({"request.$": "$", "execution.$": "$$.Execution.Id"}),
            payload_response_only=True,
            result_path="$.result",
        )
        failed = sfn.Fail(
            self, "FileFailed", cause="a range or step failed; see the file's report.json", error="FanoutFailed"
        )
        report_failure.next(failed)
        for state in (plan, ranges, merge):
            state.add_catch(report_failure, errors=["States.ALL"], result_path="$.error")
        definition = plan.next(ranges).next(merge)

        log_group = logs.LogGroup(
            self,
            "StateMachineLogs",
            retention=log_retention(props.log_retention_days),
            removal_policy=RemovalPolicy.RETAIN if props.is_prod else RemovalPolicy.DESTROY,
        )
        return sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            comment="mlserve batch fan-out: plan -> Distributed Map of range scorers -> merge",
            # Plan (one read of the file) + ranges + merge, each bounded by its function's timeout.
            timeout=Duration.hours(6),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
        )

    def _acknowledge_findings(self, model_store: ModelStore, batch: BatchScoring) -> None:
        batch_bucket = logical_id_ref(batch.bucket)
        model_bucket = logical_id_ref(model_store.bucket)
        results = batch.results_prefix
        common = {
            f"Resource::<{batch_bucket}.Arn>/{INCOMING_PREFIX}*": (
                "Read-only (GetObject/GetObjectVersion) on incoming/: the input key and version "
                "come from the execution at run time."
            ),
            f"Resource::<{model_bucket}.Arn>/models/{self.props.model_name}/*": (
                "Read-only on this model's own prefix: the pinned version's files are only known at run time."
            ),
            f"Resource::<{batch_bucket}.Arn>/{self.scratch_prefix}*": (
                "The fan-out's own scratch prefix (results/.fanout/<path>/<version>/: manifest, job, parts); "
                "its keys derive from input keys known only at run time. No delete."
            ),
            f"Resource::<{batch_bucket}.Arn>/{results}*": (
                "The merge writes results/<path>.predictions.csv (UploadPartCopy from the parts), the report "
                "and summary, whose keys derive from the input key at run time. No delete."
            ),
        }
        for function in (self.plan, self.range, self.merge, self.fail):
            for resource, reason in common.items():
                acknowledge(function.role, "AwsSolutions", f"AwsSolutions-IAM5[{resource}]", reason)
        state_machine = self.state_machine
        acknowledge(
            state_machine.role,
            "AwsSolutions",
            f"AwsSolutions-IAM5[Resource::<{batch_bucket}.Arn>/{self.scratch_prefix}*]",
            "The Distributed Map's item reader reads the manifest the plan step wrote under the fan-out's "
            "scratch prefix; its key derives from the input key at run time. Read-only.",
        )
        acknowledge(
            state_machine.role,
            "AwsSolutions",
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray tracing (xray:PutTraceSegments etc.) and CloudWatch Logs vended delivery "
            "(logs:CreateLogDelivery etc.) do not support resource-level permissions.",
        )
        for function in (self.plan, self.range, self.merge, self.fail):
            acknowledge(
                state_machine.role,
                "AwsSolutions",
                f"AwsSolutions-IAM5[Resource::<{logical_id_ref(function.function)}.Arn>:*]",
                "lambda:InvokeFunction on this step's own function and its versions (CDK LambdaInvoke).",
            )
            acknowledge(
                function.function,
                "Serverless",
                "Serverless-LambdaDLQ",
                "Invoked synchronously by the fan-out state machine, never asynchronously: a failure is caught "
                "by the state machine, which writes the file's failed report naming the range.",
            )
        machine_name = '{"Fn::Select":[6,{"Fn::Split":[":",{"Ref":"' + logical_id_ref(state_machine) + '"}]}]}'
        partition, region, account = _nag_arn_env(Stack.of(self))
        execution = f"arn:{partition}:states:{region}:{account}:execution:{machine_name}"
        for resource in (f"{execution}:*", f"{execution}/*:*"):
            acknowledge(
                state_machine,
                "AwsSolutions",
                f"AwsSolutions-IAM5[Resource::{resource}]",
                "CDK's Distributed Map policy: the map starts, describes and stops child executions of this "
                "state machine only, whose names Step Functions picks at run time.",
            )


def _nag_arn_env(stack: Stack) -> tuple[str, str, str]:
    """Partition, region and account as cdk-nag prints them in a finding's resource: literal
    values in a stack with a concrete environment (pipeline stages), pseudo-parameter
    references in an environment-agnostic one."""
    parts = (
        ("<AWS::Partition>", stack.partition),
        ("<AWS::Region>", stack.region),
        ("<AWS::AccountId>", stack.account),
    )
    partition, region, account = (pseudo if Token.is_unresolved(value) else value for pseudo, value in parts)
    return partition, region, account
