"""The fan-out state machine: Distributed Map over the plan's manifest, logging, X-Ray,
context keys, and what each step's role (and the state machine's) can and cannot do."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.config import ConfigError, ServingConfig
from tests.infra.conftest import CDK_JSON_CONTEXT, Synth, allowed, role_statements, synth


def definition(result: Synth) -> dict[str, Any]:
    machine = result.resources[result.logical_id(result.stack.fanout.state_machine)]["Properties"]
    body = machine["DefinitionString"]
    # {"Fn::Join": ["", [...]]}: resolve the tokens to placeholders, enough to read the shape.
    parts = body["Fn::Join"][1] if isinstance(body, dict) else [body]
    return dict(json.loads("".join(p if isinstance(p, str) else "TOKEN" for p in parts)))


def test_state_machine_shape_logging_and_tracing(default_synth: Synth) -> None:
    stack = default_synth.stack
    machine = default_synth.resources[default_synth.logical_id(stack.fanout.state_machine)]["Properties"]
    assert machine["TracingConfiguration"] == {"Enabled": True}
    assert machine["LoggingConfiguration"]["Level"] == "ALL"
    assert machine["LoggingConfiguration"]["IncludeExecutionData"] is False
    states = definition(default_synth)["States"]
    assert definition(default_synth)["StartAt"] == "PlanRanges"
    ranges = states["ScoreRanges"]
    assert ranges["Type"] == "Map"
    assert ranges["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert ranges["ItemProcessor"]["ProcessorConfig"]["ExecutionType"] == "STANDARD"
    assert ranges["ItemReader"]["Resource"].endswith(":states:::s3:getObject")
    assert ranges["ItemReader"]["ReaderConfig"]["InputType"] == "JSON"
    assert ranges["ItemReader"]["Parameters"]["Key.$"] == "$.plan.manifest_key"
    assert ranges["MaxConcurrency"] == CDK_JSON_CONTEXT["fanout_max_concurrency"]
    assert ranges.get("ToleratedFailurePercentage", 0) == 0 and "ToleratedFailureCount" not in ranges
    assert ranges["Next"] == "MergeParts"
    # Every step's failure goes to the failure report, then the execution fails.
    for name in ("PlanRanges", "ScoreRanges", "MergeParts"):
        assert states[name]["Catch"][0]["Next"] == "ReportFailure"
    assert states["ReportFailure"]["Next"] == "FileFailed" and states["FileFailed"]["Type"] == "Fail"


def test_context_sets_threshold_range_size_and_concurrency() -> None:
    result = synth(fanout_threshold_bytes="1048576", fanout_range_bytes=16 * 1024**2, fanout_max_concurrency=3)
    stack = result.stack
    batch_env = result.resources[result.logical_id(stack.batch.function)]["Properties"]["Environment"]["Variables"]
    assert batch_env["MLSERVE_FANOUT_THRESHOLD_BYTES"] == "1048576"
    assert batch_env["MLSERVE_FANOUT_STATE_MACHINE_ARN"] == {"Ref": result.logical_id(stack.fanout.state_machine)}
    plan_env = result.resources[result.logical_id(stack.fanout.plan.function)]["Properties"]["Environment"]
    assert plan_env["Variables"]["MLSERVE_FANOUT_RANGE_BYTES"] == str(16 * 1024**2)
    assert definition(result)["States"]["ScoreRanges"]["MaxConcurrency"] == 3


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("fanout_threshold_bytes", 0),
        ("fanout_range_bytes", 1024),  # parts would fall under S3's 5 MiB multipart minimum
        ("fanout_max_concurrency", 0),
        ("fanout_max_concurrency", "many"),
    ],
)
def test_bad_fanout_context_names_the_key(key: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=key):
        ServingConfig.from_mapping({**CDK_JSON_CONTEXT, key: value})


@pytest.fixture(scope="module")
def arns(default_synth: Synth) -> dict[str, str]:
    stack = default_synth.stack
    return {
        "batch": f"<{default_synth.logical_id(stack.batch.bucket)}.Arn>",
        "model": f"<{default_synth.logical_id(stack.model_store.bucket)}.Arn>",
    }


def statements_of(result: Synth, role: Any) -> list[dict[str, Any]]:
    return role_statements(result, result.logical_id(role))


@pytest.mark.parametrize(
    ("step", "action", "key", "expected"),
    [
        ("plan", "s3:GetObjectVersion", "incoming/a.csv", True),
        ("plan", "s3:PutObject", "results/.fanout/a.csv/v1/manifest.json", True),
        ("plan", "s3:PutObject", "results/a.csv.predictions.csv", False),
        ("plan", "s3:PutObject", "incoming/a.csv", False),
        ("range", "s3:GetObject", "results/.fanout/a.csv/v1/job.json", True),
        ("range", "s3:PutObject", "results/.fanout/a.csv/v1/parts/00001.csv", True),
        ("range", "s3:PutObject", "results/a.csv.predictions.csv", False),
        ("range", "s3:GetObject", "results/other.csv.predictions.csv", False),
        ("merge", "s3:PutObject", "results/a.csv.predictions.csv", True),
        ("merge", "s3:GetObject", "results/.fanout/a.csv/v1/parts/00001.csv", True),
        ("merge", "s3:PutObject", "incoming/a.csv", False),
        ("fail", "s3:PutObject", "results/a.csv.report.json", True),
    ]
    + [
        (step, "s3:DeleteObject", key, False)
        for step in ("plan", "range", "merge", "fail")
        for key in ("incoming/a.csv", "results/a.csv.predictions.csv", "results/.fanout/a.csv/v1/parts/00001.csv")
    ],
)
def test_step_roles_least_privilege(
    default_synth: Synth, arns: dict[str, str], step: str, action: str, key: str, expected: bool
) -> None:
    role = getattr(default_synth.stack.fanout, step).role
    assert allowed(statements_of(default_synth, role), action, f"{arns['batch']}/{key}") is expected


def test_only_the_plan_and_range_steps_read_the_model(default_synth: Synth, arns: dict[str, str]) -> None:
    fanout = default_synth.stack.fanout
    pointer = f"{arns['model']}/models/demo-classifier/live.json"
    assert allowed(statements_of(default_synth, fanout.plan.role), "s3:GetObject", pointer)
    assert allowed(statements_of(default_synth, fanout.range.role), "s3:GetObject", pointer)
    assert not allowed(statements_of(default_synth, fanout.merge.role), "s3:GetObject", pointer)


def test_state_machine_reads_only_the_manifest_prefix_and_the_batch_function_may_start_it(
    default_synth: Synth, arns: dict[str, str]
) -> None:
    stack = default_synth.stack
    machine = statements_of(default_synth, stack.fanout.state_machine.role)
    assert allowed(machine, "s3:GetObject", f"{arns['batch']}/results/.fanout/a.csv/v1/manifest.json")
    assert not allowed(machine, "s3:GetObject", f"{arns['batch']}/incoming/a.csv")
    assert not allowed(machine, "s3:GetObject", f"{arns['batch']}/results/a.csv.predictions.csv")
    assert not allowed(machine, "s3:PutObject", f"{arns['batch']}/results/.fanout/a.csv/v1/manifest.json")
    batch = statements_of(default_synth, stack.batch.role)
    machine_ref = default_synth.logical_id(stack.fanout.state_machine)
    assert any(
        "states:StartExecution" in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])
        and st["Resource"] == {"Ref": machine_ref}
        for st in batch
    )


def test_scratch_prefix_expires(default_synth: Synth) -> None:
    bucket = default_synth.resources[default_synth.logical_id(default_synth.stack.batch.bucket)]["Properties"]
    rules = {r["Id"]: r for r in bucket["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-fanout-scratch"]["Prefix"] == "results/.fanout/"
    assert rules["expire-fanout-scratch"]["ExpirationInDays"] == 7
