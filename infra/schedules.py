"""Scheduled batch scoring (context ``schedules``): one EventBridge Scheduler schedule per
``{name, cron, input_prefix}``, each invoking one function with ``{"schedule": name,
"input_prefix": prefix}``. The function scores every CSV under the prefix that has no
results for the live version, with the batch job's code, into the batch bucket's
``results/`` (same files, reports and markers as dropped CSVs) and writes a run summary
``results/_runs/<name>/<timestamp>.json``.

Least privilege: the Scheduler role may invoke only this function; the function reads only
the schedules' prefixes and ``results/`` (reports and markers), writes only ``results/``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.batch import BatchScoring
from infra.config import FunctionSettings, ScheduleSettings, ServingConfig
from infra.functions import AsyncInvocation, FunctionFactory, ServingFunction
from infra.model_store import ModelStore
from infra.nag import acknowledge, logical_id_ref
from mlserve.contract import Env

SCHEDULED_HANDLER = "lambda_batch.scheduled.handler"


@dataclass(frozen=True)
class ScheduledScoringProps:
    """What scheduled batch uses of the configuration (context schedules, schedule_*)."""

    model_name: str
    function: FunctionSettings
    schedules: tuple[ScheduleSettings, ...]
    timezone: str
    flexible_window_minutes: int
    max_files: int
    stop_margin_seconds: int
    retry_attempts: int

    @classmethod
    def from_config(cls, config: ServingConfig) -> ScheduledScoringProps:
        return cls(
            model_name=config.model_name,
            function=config.scheduled_function,
            schedules=config.schedules,
            timezone=config.schedule_timezone,
            flexible_window_minutes=config.schedule_flexible_window_minutes,
            max_files=config.schedule_max_files,
            stop_margin_seconds=config.schedule_stop_margin_seconds,
            retry_attempts=config.batch_retry_attempts,
        )


class ScheduledScoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: ScheduledScoringProps,
        functions: FunctionFactory,
        model_store: ModelStore,
        batch: BatchScoring,
    ) -> None:
        super().__init__(scope, construct_id)
        self.props = props
        results_prefix = batch.results_prefix
        prefixes = {schedule.name: schedule.input_prefix for schedule in props.schedules}
        self.serving: ServingFunction = functions.create(
            self,
            "Function",
            package="lambda_batch",
            handler=SCHEDULED_HANDLER,
            service="mlserve-scheduled",
            settings=props.function,
            kind="scheduled",
            description="mlserve scheduled batch: CSVs without results for the live version -> results/",
            extra_environment={
                Env.BATCH_BUCKET: batch.bucket.bucket_name,
                **batch.scoring_environment,
                Env.SCHEDULES: json.dumps(prefixes, sort_keys=True),
                Env.SCHEDULE_MAX_FILES: str(props.max_files),
                Env.SCHEDULE_STOP_MARGIN_SECONDS: str(props.stop_margin_seconds),
            },
            # Scheduler invokes asynchronously: a failed run (summary written, then raised) is
            # retried by Lambda, which scores only what is still missing; then the DLQ.
            asynchronous=AsyncInvocation(
                retry_attempts=props.retry_attempts, max_event_age=Duration.hours(6), reserved_concurrency=None
            ),
        )
        self.function = self.serving.function
        self.role = self.serving.role
        assert self.serving.dead_letter_queue is not None
        self.dead_letter_queue: sqs.Queue = self.serving.dead_letter_queue

        for prefix in sorted(set(prefixes.values())):
            batch.bucket.grant_read(self.role, f"{prefix}*")
        # Reports and markers decide what is missing; results/ is where everything is written.
        batch.bucket.grant_read(self.role, f"{results_prefix}*")
        batch.bucket.grant_put(self.role, f"{results_prefix}*")
        model_store.grant_read_model(self.role)

        # One role for every schedule of this stack, allowed to invoke exactly this function.
        stack = Stack.of(self)
        self.scheduler_role = iam.Role(
            self,
            "SchedulerRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": stack.account}}
            ),
            description=f"EventBridge Scheduler: invoke the mlserve scheduled batch function ({props.model_name})",
        )
        self.scheduler_role.add_to_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[self.function.function_arn])
        )
        flexible = (
            scheduler.CfnSchedule.FlexibleTimeWindowProperty(
                mode="FLEXIBLE", maximum_window_in_minutes=props.flexible_window_minutes
            )
            if props.flexible_window_minutes
            else scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF")
        )
        self.schedules: dict[str, scheduler.CfnSchedule] = {}
        for schedule in props.schedules:
            self.schedules[schedule.name] = scheduler.CfnSchedule(
                self,
                f"Schedule-{schedule.name}",
                description=f"mlserve scheduled batch {schedule.name}: score {schedule.input_prefix}",
                schedule_expression=schedule.expression,
                schedule_expression_timezone=props.timezone,
                flexible_time_window=flexible,
                state="ENABLED",
                target=scheduler.CfnSchedule.TargetProperty(
                    arn=self.function.function_arn,
                    role_arn=self.scheduler_role.role_arn,
                    input=json.dumps({"schedule": schedule.name, "input_prefix": schedule.input_prefix}),
                    # Retries of the asynchronous Invoke call itself (throttling); failed runs
                    # are retried by Lambda's async config.
                    retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                        maximum_retry_attempts=3, maximum_event_age_in_seconds=3600
                    ),
                ),
            )
        self._acknowledge_findings(model_store, batch, sorted(set(prefixes.values())), results_prefix)

    def _acknowledge_findings(
        self, model_store: ModelStore, batch: BatchScoring, prefixes: list[str], results_prefix: str
    ) -> None:
        model_bucket = logical_id_ref(model_store.bucket)
        batch_bucket = logical_id_ref(batch.bucket)
        reasons = {
            f"Resource::<{model_bucket}.Arn>/models/{self.props.model_name}/*": (
                "Read-only s3:GetObject on this model's own prefix: versions are published at "
                "run time (models/<name>/versions/<v>/), so their keys cannot be listed here."
            ),
            f"Resource::<{batch_bucket}.Arn>/{results_prefix}*": (
                "Read and put (no delete) on results/: the reports and markers tell which inputs "
                "still need scoring, and predictions/reports/run summaries are written there; "
                "keys derive from input keys known only at run time."
            ),
            "Action::s3:GetObject*": (
                "CDK grant_read on the schedules' input prefixes and results/: GetObject plus "
                "GetObjectVersion (a run scores the exact version it listed)."
            ),
            "Action::s3:GetBucket*": "CDK grant_read on the batch bucket: bucket-level metadata reads only.",
            "Action::s3:List*": (
                "CDK grant_read: a run lists its input prefix to find the CSVs to score; the "
                "names are of this stack's own batch bucket."
            ),
            "Action::s3:Abort*": (
                "CDK grant_put on results/: AbortMultipartUpload removes a failed run's partial output."
            ),
        }
        for prefix in prefixes:
            reasons[f"Resource::<{batch_bucket}.Arn>/{prefix}*"] = (
                f"Read-only on the schedule's input prefix {prefix}: files arrive under arbitrary keys at run time."
            )
        for resource, reason in reasons.items():
            acknowledge(self.role, "AwsSolutions", f"AwsSolutions-IAM5[{resource}]", reason)
