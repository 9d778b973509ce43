"""Alarms, notifications and a dashboard for a deployed mlserve stack.

One self-contained construct with explicit inputs, so the stack decides what to watch:

    Monitoring(self, "Monitoring",
               api=online_api.api,
               functions={"api": ..., "batch": ..., "redeploy": ..., "webhook": ...},
               batch_dlq=batch.dead_letter_queue,
               event_bus=promotion.bus,
               alarm_email=config.alarm_email)      # None: topic without a subscription

Alarms (all to one KMS-encrypted, SSL-only SNS topic):
  - API 5XX rate (average of the 5XXError metric = share of requests answered 5xx)
  - API p99 latency
  - Lambda Errors and Throttles, one pair per function
  - batch DLQ: messages visible > 0
  - ``ModelDeploymentFailed`` on the event bus: a rule sends each event to the topic, and an
    alarm on the rule's TriggeredRules metric shows the state on the dashboard.
Dashboard: online (API + API function + prediction metrics), batch (function, DLQ, rows
scored/rejected) and deployment (redeploys by outcome, model load time, failures) views.
Custom metric names/namespace come from ``mlserve.contract`` (emitted as EMF by ``mlserve.observability``).
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from mlserve.contract import (
    METRICS_NAMESPACE,
    MODEL_DEPLOYMENT_FAILED,
    MODEL_LOAD_SECONDS,
    PREDICTIONS,
    REDEPLOYS,
    REGISTRY_EVENT_SOURCE,
    ROWS_REJECTED,
    ROWS_SCORED,
    VALIDATION_ERRORS,
)

DEFAULT_NAMESPACE = METRICS_NAMESPACE
PERIOD = Duration.minutes(5)


def _search(namespace: str, metric: str, statistic: str, label: str, extra_dims: str = "") -> cloudwatch.MathExpression:
    """All series of an EMF metric, whatever model_version they carry."""
    dims = f"{namespace},model_name,model_version,service{extra_dims}"
    return cloudwatch.MathExpression(
        expression=f"SEARCH('{{{dims}}} MetricName=\"{metric}\"', '{statistic}', {int(PERIOD.to_seconds())})",
        using_metrics={},
        label=label,
        period=PERIOD,
    )


SERVICES = ("cloudwatch.amazonaws.com", "events.amazonaws.com", "sns.amazonaws.com")


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        api: apigw.RestApi,
        functions: Mapping[str, lambda_.IFunction],
        batch_dlq: sqs.IQueue | None = None,
        redeploy_dlq: sqs.IQueue | None = None,
        event_bus: events.IEventBus | None = None,
        alarm_email: str | None = None,
        metrics_namespace: str = DEFAULT_NAMESPACE,
        server_error_rate: float = 0.01,
        p99_latency_ms: float = 3000,
        dashboard_name: str | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.DESTROY,
    ) -> None:
        super().__init__(scope, construct_id)
        self.alarms: dict[str, cloudwatch.Alarm] = {}

        self.key = kms.Key(
            self,
            "TopicKey",
            description="mlserve alarm topic encryption",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        # CloudWatch alarms and EventBridge publish to the encrypted topic; SNS and
        # EventBridge write undeliverable messages to the encrypted dead-letter queue.
        # Each service may use the key only on behalf of this account (aws:SourceAccount),
        # so no other account's alarm or rule can make the key encrypt for it.
        account = Stack.of(self).account
        for service in SERVICES:
            self.key.add_to_resource_policy(
                iam.PolicyStatement(
                    principals=[iam.ServicePrincipal(service)],
                    actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                    resources=["*"],
                    conditions={"StringEquals": {"aws:SourceAccount": account}},
                )
            )
        # Grants CDK adds on its own (the SnsTopic target's events.amazonaws.com) carry no
        # condition: deny every service use on behalf of another account.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="ServicesOnlyForThisAccount",
                effect=iam.Effect.DENY,
                principals=[iam.ServicePrincipal(s) for s in SERVICES],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringNotEquals": {"aws:SourceAccount": account}},
            )
        )
        self.topic = sns.Topic(self, "AlarmTopic", master_key=self.key, enforce_ssl=True, display_name="mlserve alarms")
        # Undeliverable notifications (and failed EventBridge deliveries) land here.
        self.dead_letters = sqs.Queue(
            self,
            "NotificationDeadLetters",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=self.key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
            removal_policy=removal_policy,
        )
        for rule_id in ("AwsSolutions::AwsSolutions-SQS3", "Serverless::Serverless-SQSRedrivePolicy"):
            Validations.of(self.dead_letters).acknowledge(
                Acknowledgment(
                    id=rule_id,
                    reason="This queue IS the dead-letter queue of the alarm topic's subscriptions and of the "
                    "deployment-failure rule target; a dead-letter queue of its own would only move the problem.",
                )
            )
        if alarm_email:
            self.topic.add_subscription(
                subscriptions.EmailSubscription(alarm_email, dead_letter_queue=self.dead_letters)
            )
        action = cw_actions.SnsAction(self.topic)

        def alarm(key: str, metric: cloudwatch.IMetric, description: str, **kwargs: object) -> cloudwatch.Alarm:
            created = cloudwatch.Alarm(
                self,
                f"{key}Alarm",
                metric=metric,
                alarm_description=description,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                **kwargs,  # type: ignore[arg-type]
            )
            created.add_alarm_action(action)
            created.add_ok_action(action)
            self.alarms[key] = created
            return created

        # --- online API ------------------------------------------------------------
        server_errors = api.metric_server_error(statistic="Average", period=PERIOD)
        latency_p99 = api.metric_latency(statistic="p99", period=PERIOD)
        alarm(
            "Api5xxRate",
            server_errors,
            f"More than {server_error_rate:.1%} of API requests answered 5XX",
            threshold=server_error_rate,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=3,
            datapoints_to_alarm=2,
        )
        alarm(
            "ApiLatencyP99",
            latency_p99,
            f"API p99 latency above {p99_latency_ms:.0f} ms",
            threshold=p99_latency_ms,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=3,
            datapoints_to_alarm=2,
        )

        # --- every function ----------------------------------------------------------
        for key, function in functions.items():
            label = key.capitalize()
            alarm(
                f"{label}Errors",
                function.metric_errors(statistic="Sum", period=PERIOD),
                f"{key} function: invocation errors",
                threshold=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                evaluation_periods=1,
            )
            alarm(
                f"{label}Throttles",
                function.metric_throttles(statistic="Sum", period=PERIOD),
                f"{key} function: throttled invocations",
                threshold=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                evaluation_periods=1,
            )

        # --- batch dead letters ------------------------------------------------------
        dlq_visible: cloudwatch.IMetric | None = None
        if batch_dlq is not None:
            dlq_visible = batch_dlq.metric_approximate_number_of_messages_visible(
                statistic="Maximum", period=Duration.minutes(1)
            )
            alarm(
                "BatchDlqNotEmpty",
                dlq_visible,
                "Batch events that failed every retry are waiting in the dead-letter queue",
                threshold=0,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=1,
            )

        # --- redeploy dead letters and undeliverable notifications ------------------------
        if redeploy_dlq is not None:
            alarm(
                "RedeployDlqNotEmpty",
                redeploy_dlq.metric_approximate_number_of_messages_visible(
                    statistic="Maximum", period=Duration.minutes(1)
                ),
                "Promotion events the redeploy could not handle after every retry are in its dead-letter queue",
                threshold=0,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=1,
            )
        alarm(
            "NotificationDlqNotEmpty",
            self.dead_letters.metric_approximate_number_of_messages_visible(
                statistic="Maximum", period=Duration.minutes(1)
            ),
            "Alarm notifications or deployment-failure events could not be delivered to the topic",
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
        )

        # --- failed deployments --------------------------------------------------------
        failures: cloudwatch.IMetric | None = None
        self.deployment_failed_rule: events.Rule | None = None
        if event_bus is not None:
            self.deployment_failed_rule = events.Rule(
                self,
                "DeploymentFailedRule",
                event_bus=event_bus,
                description="Every ModelDeploymentFailed event to the alarm topic",
                event_pattern=events.EventPattern(
                    source=[REGISTRY_EVENT_SOURCE], detail_type=[MODEL_DEPLOYMENT_FAILED]
                ),
            )
            self.deployment_failed_rule.add_target(
                targets.SnsTopic(
                    self.topic,
                    dead_letter_queue=self.dead_letters,
                    message=events.RuleTargetInput.from_text(
                        f"mlserve: deployment of {events.EventField.from_path('$.detail.model_name')} "
                        f"version {events.EventField.from_path('$.detail.version')} failed: "
                        f"{events.EventField.from_path('$.detail.reason')}"
                    ),
                )
            )
            # The SnsTopic target grants events.amazonaws.com sns:Publish with no condition:
            # only this rule (aws:SourceArn) of this account may use that grant.
            self.topic.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="OnlyTheDeploymentFailedRule",
                    effect=iam.Effect.DENY,
                    principals=[iam.ServicePrincipal("events.amazonaws.com")],
                    actions=["sns:Publish"],
                    resources=[self.topic.topic_arn],
                    conditions={
                        "ArnNotEquals": {"aws:SourceArn": self.deployment_failed_rule.rule_arn},
                    },
                )
            )
            failures = cloudwatch.Metric(
                namespace="AWS/Events",
                metric_name="TriggeredRules",
                dimensions_map={"RuleName": self.deployment_failed_rule.rule_name},
                statistic="Sum",
                period=PERIOD,
            )
            alarm(
                "DeploymentFailed",
                failures,
                "A model promotion was refused or failed; the previous version is still live",
                threshold=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                evaluation_periods=1,
            )

        # --- dashboard --------------------------------------------------------------
        self.dashboard = cloudwatch.Dashboard(
            self, "Dashboard", dashboard_name=dashboard_name, default_interval=Duration.hours(3)
        )
        ns = metrics_namespace

        def fn_widgets(key: str) -> list[cloudwatch.IWidget]:
            function = functions.get(key)
            if function is None:
                return []
            return [
                cloudwatch.GraphWidget(
                    title=f"{key} function: invocations, errors, throttles",
                    left=[
                        function.metric_invocations(period=PERIOD),
                        function.metric_errors(period=PERIOD),
                        function.metric_throttles(period=PERIOD),
                    ],
                    width=8,
                ),
                cloudwatch.GraphWidget(
                    title=f"{key} function: duration",
                    left=[
                        function.metric_duration(statistic="p50", period=PERIOD),
                        function.metric_duration(statistic="p99", period=PERIOD),
                    ],
                    width=8,
                ),
            ]

        self.dashboard.add_widgets(cloudwatch.TextWidget(markdown="# Online predictions", width=24, height=1))
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="API requests and errors",
                left=[
                    api.metric_count(period=PERIOD, statistic="Sum"),
                    api.metric_client_error(period=PERIOD, statistic="Sum"),
                    api.metric_server_error(period=PERIOD, statistic="Sum"),
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="API latency",
                left=[api.metric_latency(statistic="p50", period=PERIOD), latency_p99],
                left_annotations=[cloudwatch.HorizontalAnnotation(value=p99_latency_ms, label="p99 alarm")],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Predicted rows and validation errors (by model version)",
                left=[
                    _search(ns, PREDICTIONS, "Sum", "rows predicted"),
                    _search(ns, VALIDATION_ERRORS, "Sum", "validation errors"),
                ],
                width=8,
            ),
        )
        self.dashboard.add_widgets(*fn_widgets("api"))
        self.dashboard.add_widgets(cloudwatch.TextWidget(markdown="# Batch scoring", width=24, height=1))
        batch_row: list[cloudwatch.IWidget] = [
            cloudwatch.GraphWidget(
                title="Rows scored / rejected (by model version)",
                left=[_search(ns, ROWS_SCORED, "Sum", "rows scored"), _search(ns, ROWS_REJECTED, "Sum", "rejected")],
                width=8,
            )
        ]
        if dlq_visible is not None:
            batch_row.append(cloudwatch.GraphWidget(title="Batch dead-letter queue", left=[dlq_visible], width=8))
        self.dashboard.add_widgets(*batch_row)
        self.dashboard.add_widgets(*fn_widgets("batch"))
        self.dashboard.add_widgets(cloudwatch.TextWidget(markdown="# Deployments", width=24, height=1))
        deploy_row: list[cloudwatch.IWidget] = [
            cloudwatch.GraphWidget(
                title="Redeploys by outcome",
                # one series per model version and outcome (deployed, failed, superseded, ...)
                left=[_search(ns, REDEPLOYS, "Sum", "redeploys", extra_dims=",outcome")],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Model load seconds (cold start / hot swap)",
                left=[_search(ns, MODEL_LOAD_SECONDS, "Maximum", "load seconds")],
                width=8,
            ),
        ]
        if failures is not None:
            deploy_row.append(cloudwatch.GraphWidget(title="Failed deployments", left=[failures], width=8))
        self.dashboard.add_widgets(*deploy_row)
        self.dashboard.add_widgets(*fn_widgets("redeploy"))
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms.values()), width=24)
        )
