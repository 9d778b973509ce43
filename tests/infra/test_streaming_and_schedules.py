"""Streaming (context stream) and scheduled batch (context schedules): resources, the event
source mapping's settings, least privilege, cdk-nag and cfn-lint, config validation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra.config import ConfigError, ServingConfig
from tests.infra.conftest import Synth, allowed, as_list, render, role_statements, synth
from tests.infra.test_cfn_lint import cfn_lint

SCHEDULES = [
    {"name": "daily", "cron": "0 2 * * ? *", "input_prefix": "scheduled/daily/"},
    {"name": "hourly", "cron": "cron(15 * * * ? *)", "input_prefix": "incoming/hourly/"},
]
STREAM_CONTEXT: dict[str, Any] = {
    "stream": "true",  # as `-c stream=true` delivers it
    "schedules": json.dumps(SCHEDULES),
    "stream_batch_size": 500,
    "stream_batching_window_seconds": 5,
    "stream_max_record_age_seconds": 7200,
    "stream_retry_attempts": 4,
    "schedule_timezone": "Europe/Berlin",
    "schedule_flexible_window_minutes": 15,
}


@pytest.fixture(scope="module")
def streamed(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synth(outdir=str(tmp_path_factory.mktemp("cdk.out")), **STREAM_CONTEXT)


@pytest.fixture(scope="module")
def firehosed(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synth(outdir=str(tmp_path_factory.mktemp("cdk.out")), stream="true", stream_output="firehose")


def arn(result: Synth, construct: Any) -> str:
    return f"<{result.logical_id(construct)}.Arn>"


def not_drift(resources: dict[str, Any]) -> dict[str, Any]:
    """Leave out the drift monitor's own Firehose stream and schedule (docs/monitoring.md)."""
    return {logical_id: r for logical_id, r in resources.items() if not logical_id.startswith("DriftMonitoring")}


def test_off_by_default(default_synth: Synth) -> None:
    assert default_synth.stack.streaming is None and default_synth.stack.scheduled is None
    for kind in ("AWS::Kinesis::Stream", "AWS::Lambda::EventSourceMapping", "AWS::Scheduler::Schedule"):
        assert not not_drift(default_synth.of_type(kind)), kind


def test_event_source_mapping_settings(streamed: Synth) -> None:
    [mapping] = streamed.of_type("AWS::Lambda::EventSourceMapping").values()
    props = mapping["Properties"]
    streaming = streamed.stack.streaming
    assert streaming is not None
    assert render(props["EventSourceArn"]) == arn(streamed, streaming.input_stream)
    assert render(props["FunctionName"]) == f"<{streamed.logical_id(streaming.function)}>"
    assert props["BatchSize"] == 500
    assert props["MaximumBatchingWindowInSeconds"] == 5
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["BisectBatchOnFunctionError"] is True
    assert props["MaximumRecordAgeInSeconds"] == 7200
    assert props["MaximumRetryAttempts"] == 4
    assert props["StartingPosition"] == "TRIM_HORIZON"
    destination = props["DestinationConfig"]["OnFailure"]["Destination"]
    assert render(destination) == arn(streamed, streaming.failure_queue)


def test_stream_function_environment(streamed: Synth) -> None:
    streaming = streamed.stack.streaming
    assert streaming is not None and streaming.output_stream is not None
    function = streamed.resources[streamed.logical_id(streaming.function)]["Properties"]
    env = function["Environment"]["Variables"]
    assert function["Handler"] == "lambda_batch.stream.handler"
    assert env["MLSERVE_STREAM_OUTPUT"] == "kinesis"
    assert render(env["MLSERVE_STREAM_OUTPUT_NAME"]) == f"<{streamed.logical_id(streaming.output_stream)}>"
    assert render(env["MLSERVE_STREAM_FAILURE_QUEUE_URL"]) == f"<{streamed.logical_id(streaming.failure_queue)}>"
    for stream in (streaming.input_stream, streaming.output_stream):
        props = streamed.resources[streamed.logical_id(stream)]["Properties"]
        assert props["StreamEncryption"]["EncryptionType"] == "KMS"


def test_stream_consumer_reads_exactly_one_stream_and_writes_one(streamed: Synth) -> None:
    streaming = streamed.stack.streaming
    assert streaming is not None and streaming.output_stream is not None
    statements = role_statements(streamed, streamed.logical_id(streaming.role))
    input_arn, output_arn = arn(streamed, streaming.input_stream), arn(streamed, streaming.output_stream)
    for action in ("kinesis:GetRecords", "kinesis:GetShardIterator", "kinesis:DescribeStream", "kinesis:ListShards"):
        assert allowed(statements, action, input_arn), action
        assert not allowed(statements, action, output_arn), action
    assert allowed(statements, "kinesis:PutRecords", output_arn)
    assert not allowed(statements, "kinesis:PutRecords", input_arn)
    assert not allowed(statements, "kinesis:PutRecords", "arn:aws:kinesis:us-east-1:123456789012:stream/other")
    assert not allowed(statements, "kinesis:GetRecords", "arn:aws:kinesis:us-east-1:123456789012:stream/other")
    kinesis_resources = {
        render(resource)
        for statement in statements
        if any(str(action).startswith("kinesis:") for action in as_list(statement["Action"]))
        for resource in as_list(statement["Resource"])
    }
    assert kinesis_resources == {input_arn, output_arn}
    queue_arn = arn(streamed, streaming.failure_queue)
    assert allowed(statements, "sqs:SendMessage", queue_arn)
    assert not allowed(statements, "sqs:ReceiveMessage", queue_arn)
    assert not allowed(statements, "sqs:SendMessage", arn(streamed, streamed.stack.batch.dead_letter_queue))
    batch_bucket = arn(streamed, streamed.stack.batch.bucket)
    assert not allowed(statements, "s3:PutObject", f"{batch_bucket}/results/x")
    assert not allowed(statements, "s3:GetObject", f"{batch_bucket}/incoming/x.csv")


def test_firehose_output(firehosed: Synth) -> None:
    streaming = firehosed.stack.streaming
    assert streaming is not None and streaming.delivery_stream is not None and streaming.output_stream is None
    [stream] = not_drift(firehosed.of_type("AWS::KinesisFirehose::DeliveryStream")).values()
    destination = stream["Properties"]["ExtendedS3DestinationConfiguration"]
    assert render(destination["BucketARN"]) == arn(firehosed, firehosed.stack.batch.bucket)
    assert destination["Prefix"].startswith("stream-output/")
    statements = role_statements(firehosed, firehosed.logical_id(streaming.role))
    stack = firehosed.stack
    delivery_arn = f"<{stack.resolve(stack.get_logical_id(streaming.delivery_stream))}.Arn>"
    assert allowed(statements, "firehose:PutRecordBatch", delivery_arn)
    assert not allowed(statements, "firehose:PutRecordBatch", "arn:aws:firehose:us-east-1:1:deliverystream/other")
    assert not any(str(a).startswith("kinesis:Put") for s in statements for a in as_list(s["Action"]))
    # The delivery role writes only under stream-output*/ of the batch bucket, deletes nothing.
    delivery = role_statements(firehosed, firehosed.logical_id(streaming.delivery_role))
    bucket = arn(firehosed, firehosed.stack.batch.bucket)
    assert allowed(delivery, "s3:PutObject", f"{bucket}/stream-output/2026/12/02/13/x")
    assert not allowed(delivery, "s3:PutObject", f"{bucket}/results/x.csv.report.json")
    assert not allowed(delivery, "s3:PutObject", f"{bucket}/incoming/x.csv")
    assert not any("Delete" in str(a) or "GetObject" in str(a) for s in delivery for a in as_list(s["Action"]))


def test_schedules(streamed: Synth) -> None:
    schedules = {
        json.loads(s["Properties"]["Target"]["Input"])["schedule"]: s["Properties"]
        for s in not_drift(streamed.of_type("AWS::Scheduler::Schedule")).values()
    }
    assert set(schedules) == {"daily", "hourly"}
    daily = schedules["daily"]
    assert daily["ScheduleExpression"] == "cron(0 2 * * ? *)"
    assert daily["ScheduleExpressionTimezone"] == "Europe/Berlin"
    assert daily["FlexibleTimeWindow"] == {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15}
    assert json.loads(daily["Target"]["Input"]) == {"schedule": "daily", "input_prefix": "scheduled/daily/"}
    scheduled = streamed.stack.scheduled
    assert scheduled is not None
    assert render(daily["Target"]["Arn"]) == arn(streamed, scheduled.function)
    assert render(daily["Target"]["RoleArn"]) == arn(streamed, scheduled.scheduler_role)
    env = streamed.resources[streamed.logical_id(scheduled.function)]["Properties"]["Environment"]["Variables"]
    assert json.loads(env["MLSERVE_SCHEDULES"]) == {"daily": "scheduled/daily/", "hourly": "incoming/hourly/"}
    assert env["MLSERVE_SCHEDULE_MAX_FILES"] == "100"


def test_scheduler_role_invokes_only_its_function(streamed: Synth) -> None:
    scheduled = streamed.stack.scheduled
    assert scheduled is not None
    role = streamed.resources[streamed.logical_id(scheduled.scheduler_role)]["Properties"]
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert "aws:SourceAccount" in trust["Condition"]["StringEquals"]
    statements = role_statements(streamed, streamed.logical_id(scheduled.scheduler_role))
    assert allowed(statements, "lambda:InvokeFunction", arn(streamed, scheduled.function))
    others = [
        streamed.stack.batch.function,
        streamed.stack.online_api.function,
        streamed.stack.promotion.redeploy_function,
    ]
    assert streamed.stack.streaming is not None
    others.append(streamed.stack.streaming.function)
    for function in others:
        assert not allowed(statements, "lambda:InvokeFunction", arn(streamed, function))
    assert [a for s in statements for a in as_list(s["Action"])] == ["lambda:InvokeFunction"]


def test_scheduled_function_reads_its_prefixes_and_writes_results_only(streamed: Synth) -> None:
    scheduled = streamed.stack.scheduled
    assert scheduled is not None
    statements = role_statements(streamed, streamed.logical_id(scheduled.role))
    bucket = arn(streamed, streamed.stack.batch.bucket)
    assert allowed(statements, "s3:GetObject", f"{bucket}/scheduled/daily/a.csv")
    assert allowed(statements, "s3:GetObject", f"{bucket}/incoming/hourly/a.csv")
    assert not allowed(statements, "s3:GetObject", f"{bucket}/incoming/other/a.csv")
    assert allowed(statements, "s3:GetObject", f"{bucket}/results/scheduled/daily/a.csv.report.json")
    assert allowed(statements, "s3:PutObject", f"{bucket}/results/_runs/daily/20261202T020000.000000Z.json")
    assert not allowed(statements, "s3:PutObject", f"{bucket}/scheduled/daily/a.csv")
    assert not any("Delete" in str(a) for s in statements for a in as_list(s["Action"]))


@pytest.mark.parametrize("fixture", ["streamed", "firehosed"])
def test_nag_clean(fixture: str, request: pytest.FixtureRequest) -> None:
    result: Synth = request.getfixturevalue(fixture)
    result.app.synth()  # raises ValidationFailed on any unacknowledged cdk-nag finding


@pytest.mark.parametrize("fixture", ["streamed", "firehosed"])
def test_cfn_lint_clean(fixture: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    result = cfn_lint(request.getfixturevalue(fixture), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"stream": "maybe"}, "'stream' must be true or false"),
        ({"stream": True, "stream_output": "s3"}, "'stream_output' must be kinesis or firehose"),
        ({"stream": True, "stream_batch_size": 20000}, "'stream_batch_size' must be between 1 and 10000"),
        ({"stream": True, "stream_batching_window_seconds": 301}, "'stream_batching_window_seconds'"),
        ({"stream": True, "stream_max_record_age_seconds": 30}, "'stream_max_record_age_seconds' must be -1"),
        ({"stream": True, "stream_retry_attempts": -2}, "'stream_retry_attempts'"),
        ({"schedules": "[{"}, "'schedules' is not valid JSON"),
        ({"schedules": [{"name": "x", "cron": "0 2 * * ? *"}]}, "'schedules[0]' must be an object"),
        ({"schedules": [{"name": "a b", "cron": "0 2 * * ? *", "input_prefix": "d/"}]}, "'schedules[0].name'"),
        ({"schedules": [{"name": "a", "cron": "0 2 * *", "input_prefix": "d/"}]}, "'schedules[0].cron'"),
        ({"schedules": [{"name": "a", "cron": "0 2 1 * 1 *", "input_prefix": "d/"}]}, "must be '?'"),
        ({"schedules": [{"name": "a", "cron": "0 2 * * ? *", "input_prefix": "d"}]}, "'schedules[0].input_prefix'"),
        ({"schedules": [{"name": "a", "cron": "0 2 * * ? *", "input_prefix": "results/x/"}]}, "not be under results/"),
        ({"schedules": [{"name": "a", "cron": "0 2 * * ? *", "input_prefix": "../x/"}]}, "input_prefix"),
        (
            {"schedules": [{"name": "a", "cron": "rate(1 day)", "input_prefix": "x/"}] * 2},
            "duplicate name(s) ['a']",
        ),
        ({"schedule_timezone": "Not a zone"}, "'schedule_timezone'"),
        ({"schedule_flexible_window_minutes": 2000}, "'schedule_flexible_window_minutes'"),
        ({"functions": {"stream": {"memory_mb": 64}}}, "'functions.stream.memory_mb'"),
    ],
)
def test_config_errors_name_the_key(context: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        ServingConfig.from_mapping(context)
    assert message in str(error.value)


def test_alarms_cover_the_new_functions_and_the_failure_queue(streamed: Synth) -> None:
    stack = streamed.stack
    assert {"StreamErrors", "StreamThrottles", "ScheduledErrors", "ScheduledThrottles"} <= set(stack.monitoring.alarms)
    topic = f"<{streamed.logical_id(stack.monitoring.topic)}>"
    for key in ("StreamFailures", "StreamIteratorAge"):
        props = streamed.resources[streamed.logical_id(stack.stream_alarms[key])]["Properties"]
        assert [render(a) for a in props["AlarmActions"]] == [topic]
    failures = streamed.resources[streamed.logical_id(stack.stream_alarms["StreamFailures"])]["Properties"]
    assert failures["MetricName"] == "ApproximateNumberOfMessagesVisible" and failures["Threshold"] == 1
    age = streamed.resources[streamed.logical_id(stack.stream_alarms["StreamIteratorAge"])]["Properties"]
    assert age["MetricName"] == "IteratorAge" and age["Threshold"] == 300_000
