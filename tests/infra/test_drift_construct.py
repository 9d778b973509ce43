"""Drift monitoring infra: the Firehose capture stream, the schedule, the job, the alarms,
the API's capture settings, and what each role can (not) do."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config import ConfigError, DriftConfig
from tests.infra.conftest import Synth, allowed, role_statements, synth


@pytest.fixture(scope="module")
def drift(default_synth: Synth) -> Any:
    assert default_synth.stack.drift is not None
    return default_synth.stack.drift


def only(result: Synth, resource_type: str) -> dict[str, Any]:
    found = list(result.of_type(resource_type).values())
    assert len(found) == 1, found
    return dict(found[0]["Properties"])


def test_capture_stream_writes_gzip_partitions_by_version_and_day(default_synth: Synth, drift: Any) -> None:
    stream = only(default_synth, "AWS::KinesisFirehose::DeliveryStream")
    assert stream["DeliveryStreamType"] == "DirectPut"
    assert stream["DeliveryStreamEncryptionConfigurationInput"] == {"KeyType": "AWS_OWNED_CMK"}
    destination = stream["ExtendedS3DestinationConfiguration"]
    assert destination["CompressionFormat"] == "GZIP"
    assert (
        destination["Prefix"] == "capture/demo-classifier/!{partitionKeyFromQuery:version}/dt=!{timestamp:yyyy-MM-dd}/"
    )
    assert destination["DynamicPartitioningConfiguration"] == {"Enabled": True}
    bucket_id = default_synth.logical_id(drift.bucket)
    assert destination["BucketARN"] == {"Fn::GetAtt": [bucket_id, "Arn"]}


def test_schedule_invokes_the_job_daily(default_synth: Synth, drift: Any) -> None:
    schedule = only(default_synth, "AWS::Scheduler::Schedule")
    assert schedule["ScheduleExpression"] == "rate(1 day)"
    job_id = default_synth.logical_id(drift.function)
    assert schedule["Target"]["Arn"] == {"Fn::GetAtt": [job_id, "Arn"]}
    function = default_synth.resources[job_id]["Properties"]
    assert function["Handler"] == "lambda_batch.drift.handler"
    env = function["Environment"]["Variables"]
    assert env["MLSERVE_DRIFT_WINDOW_DAYS"] == "1.0" and env["MLSERVE_DRIFT_NUMERIC_TEST"] == "psi"
    scheduler_statements = role_statements(default_synth, default_synth.logical_id(drift.scheduler_role))
    job_arn = f"<{job_id}.Arn>"
    assert allowed(scheduler_statements, "lambda:InvokeFunction", job_arn)
    assert not allowed(scheduler_statements, "lambda:InvokeFunction", "<SomeOtherFunction.Arn>")


def test_alarm_on_drifted_feature_share_goes_to_the_alarm_topic(default_synth: Synth, drift: Any) -> None:
    alarm = default_synth.resources[default_synth.logical_id(drift.alarm)]["Properties"]
    assert alarm["MetricName"] == "DriftedFeatureShare" and alarm["Namespace"] == "mlserve"
    assert alarm["Dimensions"] == [{"Name": "Model", "Value": "demo-classifier"}]
    assert alarm["Threshold"] == 0.5 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    topic_id = default_synth.logical_id(default_synth.stack.monitoring.topic)
    assert alarm["AlarmActions"] == [{"Ref": topic_id}]


def test_api_captures_through_the_stream_only(default_synth: Synth, drift: Any) -> None:
    api = default_synth.stack.online_api
    env = default_synth.resources[default_synth.logical_id(api.function)]["Properties"]["Environment"]["Variables"]
    stream_id = default_synth.stack.resolve(drift.stream.logical_id)
    assert env["MLSERVE_CAPTURE_STREAM"] == {"Ref": stream_id}
    assert env["MLSERVE_CAPTURE_COLUMNS"] == ""  # default: no input field leaves the request
    assert env["MLSERVE_CAPTURE_SAMPLE_RATE"] == "1.0"
    statements = role_statements(default_synth, default_synth.logical_id(api.serving.role))
    stream_arn = f"<{stream_id}.Arn>"
    bucket = f"<{default_synth.logical_id(drift.bucket)}.Arn>"
    assert allowed(statements, "firehose:PutRecordBatch", stream_arn)
    assert not allowed(statements, "firehose:PutRecordBatch", "<OtherStream.Arn>")
    assert allowed(statements, "s3:GetObject", f"{bucket}/monitoring/demo-classifier/drift/latest.json")
    assert not allowed(statements, "s3:GetObject", f"{bucket}/capture/demo-classifier/1/dt=2026-01-01/x.gz")
    assert not allowed(statements, "s3:PutObject", f"{bucket}/monitoring/demo-classifier/drift/latest.json")


def test_job_role_is_least_privilege(default_synth: Synth, drift: Any) -> None:
    statements = role_statements(default_synth, default_synth.logical_id(drift.role))
    bucket = f"<{default_synth.logical_id(drift.bucket)}.Arn>"
    models = f"<{default_synth.logical_id(default_synth.stack.model_store.bucket)}.Arn>"
    batch = f"<{default_synth.logical_id(default_synth.stack.batch.bucket)}.Arn>"
    assert allowed(statements, "s3:GetObject", f"{models}/models/demo-classifier/versions/3/profile.json")
    assert allowed(statements, "s3:GetObject", f"{bucket}/capture/demo-classifier/3/dt=2026-01-01/a.gz")
    assert allowed(statements, "s3:ListBucket", bucket, {"s3:prefix": "capture/demo-classifier/"})
    assert allowed(statements, "s3:PutObject", f"{bucket}/monitoring/demo-classifier/drift/2026-01-01.json")
    assert allowed(statements, "s3:GetObject", f"{batch}/incoming/data.csv")
    assert allowed(statements, "cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": "mlserve"})
    bus = f"<{default_synth.logical_id(default_synth.stack.promotion.bus)}.Arn>"
    assert allowed(statements, "events:PutEvents", bus)
    for action, resource, context in [
        ("s3:PutObject", f"{models}/models/demo-classifier/live.json", None),
        ("s3:PutObject", f"{bucket}/capture/demo-classifier/3/x.gz", None),
        ("s3:GetObject", f"{bucket}/capture/other-model/3/x.gz", None),
        ("s3:ListBucket", bucket, {"s3:prefix": ""}),
        ("s3:GetObject", f"{batch}/results/data.predictions.csv", None),
        ("s3:PutObject", f"{batch}/incoming/data.csv", None),
        ("s3:DeleteObject", f"{bucket}/monitoring/demo-classifier/drift/latest.json", None),
        ("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": "AWS/Lambda"}),
    ]:
        assert not allowed(statements, action, resource, context), (action, resource)


def test_firehose_role_writes_only_its_prefixes(default_synth: Synth, drift: Any) -> None:
    statements = role_statements(default_synth, default_synth.logical_id(drift.stream_role))
    bucket = f"<{default_synth.logical_id(drift.bucket)}.Arn>"
    assert allowed(statements, "s3:PutObject", f"{bucket}/capture/demo-classifier/1/dt=2026-01-01/x.gz")
    assert not allowed(statements, "s3:PutObject", f"{bucket}/monitoring/demo-classifier/drift/latest.json")
    assert not allowed(statements, "s3:GetObject", f"{bucket}/capture/demo-classifier/1/dt=2026-01-01/x.gz")


def test_monitoring_off_builds_none_of_it() -> None:
    result = synth(monitoring=False)
    assert result.stack.drift is None
    assert not result.of_type("AWS::KinesisFirehose::DeliveryStream")
    assert not result.of_type("AWS::Scheduler::Schedule")
    api = result.resources[result.logical_id(result.stack.online_api.function)]["Properties"]
    assert "MLSERVE_CAPTURE_STREAM" not in api["Environment"]["Variables"]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("drift_schedule", "every day", "drift_schedule"),
        ("drift_thresholds", {"wasserstein": 0.1}, "drift_thresholds"),
        ("drift_numeric_test", "chisquare", "drift_numeric_test"),
        ("capture_sample_rate", 1.5, "capture_sample_rate"),
        ("capture_columns", ["*", "age"], "capture_columns"),
        ("drift_share", 0, "drift_share"),
    ],
)
def test_bad_drift_context_names_the_key(key: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DriftConfig.from_context({key: value}.get)


def test_capture_columns_from_the_command_line() -> None:
    assert DriftConfig.from_context({"capture_columns": "age,income"}.get).capture_columns == ("age", "income")
    assert DriftConfig.from_context({"capture_columns": '["*"]'}.get).capture_columns == ("*",)
