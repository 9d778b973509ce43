"""The Monitoring construct on a tiny stack of its own: every alarm, the topic, the
deployment-failure rule and the dashboard are in the template; cdk-nag finds nothing."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

from aws_cdk import App, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_events as events
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Match, Template
from cdk_nag import AwsSolutionsChecks, ServerlessChecks

from infra.monitoring import Monitoring

FUNCTIONS = ("api", "batch", "redeploy", "webhook")


def build(alarm_email: str | None = "ops@example.com", with_optional: bool = True) -> tuple[Stack, Monitoring]:
    app = App()
    stack = Stack(app, "MonitoringTest")
    functions = {
        key: lambda_.Function(
            stack,
            f"{key.capitalize()}Fn",
            runtime=lambda_.Runtime.PYTHON_3_12,
            handler="index.handler",
            code=lambda_.Code.from_inline("def handler(event, context):\n    return {}\n"),
        )
        for key in FUNCTIONS
    }
    api = apigw.LambdaRestApi(stack, "Api", handler=functions["api"])
    dlq = sqs.Queue(stack, "BatchDlq") if with_optional else None
    bus = events.EventBus(stack, "Bus") if with_optional else None
    monitoring = Monitoring(
        stack,
        "Monitoring",
        api=api,
        functions=functions,
        batch_dlq=dlq,
        event_bus=bus,
        alarm_email=alarm_email,
        p99_latency_ms=2500,
    )
    return stack, monitoring


@pytest.fixture(scope="module")
def built() -> tuple[Stack, Monitoring, Template]:
    stack, monitoring = build()
    return stack, monitoring, Template.from_stack(stack)


def alarms(template: Template) -> Any:
    return template.find_resources("AWS::CloudWatch::Alarm")


def alarm_for(template: Template, metric: str, namespace: str) -> list[dict[str, Any]]:
    return [
        a["Properties"]
        for a in alarms(template).values()
        if a["Properties"].get("MetricName") == metric and a["Properties"].get("Namespace") == namespace
    ]


def test_api_5xx_rate_alarm(built: Any) -> None:
    _, _, template = built
    (props,) = alarm_for(template, "5XXError", "AWS/ApiGateway")
    assert props["Statistic"] == "Average"  # share of requests, not a count
    assert props["Threshold"] == 0.01
    assert props["ComparisonOperator"] == "GreaterThanThreshold"
    assert props["TreatMissingData"] == "notBreaching"


def test_api_p99_latency_alarm(built: Any) -> None:
    _, _, template = built
    (props,) = alarm_for(template, "Latency", "AWS/ApiGateway")
    assert props["ExtendedStatistic"] == "p99"
    assert props["Threshold"] == 2500


@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
def test_errors_and_throttles_alarm_per_function(built: Any, metric: str) -> None:
    stack, _, template = built
    found = alarm_for(template, metric, "AWS/Lambda")
    assert len(found) == len(FUNCTIONS)
    named = {json.dumps(stack.resolve(p["Dimensions"])) for p in found}
    assert len(named) == len(FUNCTIONS)  # one per function
    for props in found:
        assert props["Threshold"] == 1
        assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def test_batch_dlq_alarm(built: Any) -> None:
    _, _, template = built
    # the batch DLQ's and (always) the notification dead letters' alarms
    found = alarm_for(template, "ApproximateNumberOfMessagesVisible", "AWS/SQS")
    assert len(found) == 2
    props = found[0]
    assert props["Threshold"] == 0
    assert props["ComparisonOperator"] == "GreaterThanThreshold"


def test_deployment_failed_rule_targets_topic_and_alarms(built: Any) -> None:
    _, _, template = built
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {"source": ["mlserve.registry"], "detail-type": ["ModelDeploymentFailed"]},
            "EventBusName": Match.any_value(),
            "Targets": Match.array_with(
                [Match.object_like({"Arn": {"Ref": Match.string_like_regexp("MonitoringAlarmTopic")}})]
            ),
        },
    )
    (props,) = alarm_for(template, "TriggeredRules", "AWS/Events")
    assert props["Threshold"] == 1


def test_every_alarm_notifies_the_topic(built: Any) -> None:
    _, _, template = built
    topic_ref = {"Ref": Match.string_like_regexp("MonitoringAlarmTopic")}
    found = alarms(template)
    assert len(found) == 2 + 2 * len(FUNCTIONS) + 2 + 1  # + undeliverable notifications
    template.all_resources_properties("AWS::CloudWatch::Alarm", {"AlarmActions": [topic_ref], "OKActions": [topic_ref]})


def test_topic_is_encrypted_ssl_only_with_email_subscription(built: Any) -> None:
    _, _, template = built
    template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]
                )
            }
        },
    )
    template.has_resource_properties("AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ops@example.com"})


def test_no_subscription_without_email_and_optional_parts() -> None:
    stack, monitoring = build(alarm_email=None, with_optional=False)
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::SNS::Subscription", 0)
    template.resource_count_is("AWS::Events::Rule", 0)
    assert "BatchDlqNotEmpty" not in monitoring.alarms
    assert "DeploymentFailed" not in monitoring.alarms


def test_dashboard_has_online_batch_and_deployment_views(built: Any) -> None:
    stack, _, template = built
    (dashboard,) = template.find_resources("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(stack.resolve(dashboard["Properties"]["DashboardBody"]))
    for heading in ("# Online predictions", "# Batch scoring", "# Deployments"):
        assert heading in body
    for metric in ("5XXError", "Latency", "Predictions", "ValidationErrors", "RowsScored", "RowsRejected"):
        assert metric in body, metric
    for metric in ("Redeploys", "ModelLoadSeconds", "TriggeredRules", "ApproximateNumberOfMessagesVisible"):
        assert metric in body, metric
    assert "alarm" in body.lower()


@pytest.mark.parametrize("pack", [AwsSolutionsChecks, ServerlessChecks], ids=lambda p: p.__name__)
def test_cdk_nag_finds_only_the_acknowledged_dead_letter_queue(built: Any, pack: type) -> None:
    stack, _, _ = built
    violations = pack().validate_scope(stack).violations
    ours = [
        (v.rule_name, r.construct_path)
        for v in violations
        for r in v.violating_resources
        if "/Monitoring/" in r.construct_path
    ]
    # The notification DLQ has no DLQ of its own; acknowledged on that queue (with a reason).
    expected = {"AwsSolutionsChecks": "AwsSolutions-SQS3", "ServerlessChecks": "Serverless-SQSRedrivePolicy"}
    assert ours == [(expected[pack.__name__], "MonitoringTest/Monitoring/NotificationDeadLetters/Resource")]
