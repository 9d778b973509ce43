"""Low: alarms on the redeploy DLQ and on undeliverable notifications; the alarm topic's
KMS key and SNS policy grant services only on behalf of this account / this rule."""

from __future__ import annotations

from typing import Any

from tests.infra.conftest import Synth, render


def alarm_descriptions(result: Synth) -> dict[str, dict[str, Any]]:
    return {
        str(a["Properties"]["AlarmDescription"]): a["Properties"]
        for a in result.of_type("AWS::CloudWatch::Alarm").values()
    }


def test_redeploy_and_notification_dlqs_have_alarms(default_synth: Synth) -> None:
    alarms = alarm_descriptions(default_synth)
    redeploy_dlq = default_synth.logical_id(default_synth.stack.promotion.dlq)
    notifications = default_synth.logical_id(default_synth.stack.monitoring.dead_letters)
    queues = {
        render(dim["Value"])
        for props in alarms.values()
        if props.get("MetricName") == "ApproximateNumberOfMessagesVisible"
        for dim in props["Dimensions"]
    }
    assert {f"<{redeploy_dlq}.QueueName>", f"<{notifications}.QueueName>"} <= queues


def test_kms_key_grants_to_services_are_conditioned_on_the_account(default_synth: Synth) -> None:
    key = default_synth.resources[default_synth.logical_id(default_synth.stack.monitoring.key)]
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    [deny] = [s for s in statements if s.get("Sid") == "ServicesOnlyForThisAccount"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"StringNotEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    denied = set(deny["Principal"]["Service"])
    for statement in statements:  # every service grant, conditioned or CDK's own, is covered
        services = statement["Principal"].get("Service") if isinstance(statement["Principal"], dict) else None
        if services and statement["Effect"] == "Allow":
            assert set(services if isinstance(services, list) else [services]) <= denied


def test_sns_publish_by_eventbridge_is_limited_to_the_deployment_failed_rule(default_synth: Synth) -> None:
    [policy] = default_synth.of_type("AWS::SNS::TopicPolicy").values()
    rule = default_synth.logical_id(default_synth.stack.monitoring.deployment_failed_rule)
    [deny] = [
        s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s.get("Sid") == "OnlyTheDeploymentFailedRule"
    ]
    assert deny["Effect"] == "Deny" and deny["Principal"] == {"Service": "events.amazonaws.com"}
    assert render(deny["Condition"]["ArnNotEquals"]["aws:SourceArn"]) == f"<{rule}.Arn>"
