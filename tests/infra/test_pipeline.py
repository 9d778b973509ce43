"""The CDK Pipelines alternative (``-c pipeline_connection_arn=...``): synthesized only, never
deployed. Source from the CodeConnections connection, self-mutation, dev → smoke test →
manual approval → prod → smoke test, and cdk-nag clean with specific acknowledgements."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks, ServerlessChecks

from infra.config import ConfigError
from infra.delivery import build_app
from infra.pipeline import PipelineStack
from tests.infra.conftest import CDK_JSON_CONTEXT

CONNECTION = "arn:aws:codeconnections:eu-west-1:111111111111:connection/0a1b2c3d-aaaa-bbbb-cccc-0123456789ab"


def pipeline_context(**overrides: Any) -> dict[str, Any]:
    environments = json.loads(json.dumps(CDK_JSON_CONTEXT["environments"]))
    environments["dev"].update(account="111111111111", region="eu-west-1")
    environments["prod"].update(account="222222222222", region="eu-west-1", alarm_email="oncall@example.com")
    return {
        **CDK_JSON_CONTEXT,
        "aws:cdk:bundling-stacks": [],
        "environments": environments,
        "pipeline_connection_arn": CONNECTION,
        "github_repository": "acme/mlserve",
        **overrides,
    }


def build(outdir: str | None = None, **overrides: Any) -> tuple[App, PipelineStack]:
    app = App(context=pipeline_context(**overrides), outdir=outdir)
    stack = next(stack for stack in build_app(app) if isinstance(stack, PipelineStack))
    return app, stack


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> tuple[App, PipelineStack, dict[str, Any]]:
    app, stack = build(outdir=str(tmp_path_factory.mktemp("cdk.out")))
    return app, stack, dict(Template.from_stack(stack).to_json())


def the_pipeline(template: dict[str, Any]) -> dict[str, Any]:
    (resource,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::CodePipeline::Pipeline"]
    return dict(resource["Properties"])


def test_stages_in_order_with_approval_before_prod(pipeline: tuple[App, PipelineStack, dict[str, Any]]) -> None:
    _, _, template = pipeline
    stages = {stage["Name"]: stage["Actions"] for stage in the_pipeline(template)["Stages"]}
    assert list(stages) == ["Source", "Build", "UpdatePipeline", "Assets", "Dev", "Prod"]

    def ordered(actions: list[dict[str, Any]]) -> list[tuple[int, str, str]]:
        return sorted((a["RunOrder"], a["ActionTypeId"]["Category"], a["Name"]) for a in actions)

    assert ordered(stages["Dev"]) == [
        (1, "Deploy", "Mlserve-dev.Prepare"),
        (2, "Deploy", "Mlserve-dev.Deploy"),
        (3, "Build", "SmokeTestDev"),
    ]
    assert ordered(stages["Prod"]) == [
        (1, "Approval", "ApproveProd"),
        (2, "Deploy", "Mlserve-prod.Prepare"),
        (3, "Deploy", "Mlserve-prod.Deploy"),
        (4, "Build", "SmokeTestProd"),
    ]


def test_source_is_the_codeconnections_connection(pipeline: tuple[App, PipelineStack, dict[str, Any]]) -> None:
    _, _, template = pipeline
    (action,) = the_pipeline(template)["Stages"][0]["Actions"]
    assert action["ActionTypeId"]["Provider"] == "CodeStarSourceConnection"
    assert action["Configuration"]["ConnectionArn"] == CONNECTION
    assert action["Configuration"]["FullRepositoryId"] == "acme/mlserve"
    assert action["Configuration"]["BranchName"] == "main"


def test_self_mutating(pipeline: tuple[App, PipelineStack, dict[str, Any]]) -> None:
    _, _, template = pipeline
    (action,) = next(s for s in the_pipeline(template)["Stages"] if s["Name"] == "UpdatePipeline")["Actions"]
    assert action["Name"] == "SelfMutate"
    buildspecs = [
        r["Properties"]["Source"]["BuildSpec"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::CodeBuild::Project"
    ]
    assert any("cdk -a . deploy" in spec and "MlservePipeline" in spec for spec in buildspecs)


def test_smoke_tests_get_the_stage_outputs_and_must_run(pipeline: tuple[App, PipelineStack, dict[str, Any]]) -> None:
    _, _, template = pipeline
    stages = {stage["Name"]: stage["Actions"] for stage in the_pipeline(template)["Stages"]}
    for stage, name in (("Dev", "SmokeTestDev"), ("Prod", "SmokeTestProd")):
        action = next(a for a in stages[stage] if a["Name"] == name)
        variables = {v["name"]: v["value"] for v in json.loads(action["Configuration"]["EnvironmentVariables"])}
        # CodePipeline variables of the stage's deploy action: filled from the stack outputs.
        assert variables["MLSERVE_SMOKE_API_URL"].startswith("#{") and "ApiUrl" in variables["MLSERVE_SMOKE_API_URL"]
        assert "ApiKeyId" in variables["MLSERVE_SMOKE_API_KEY_ID"]
    smoke_projects = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::CodeBuild::Project" and "tests/smoke" in r["Properties"]["Source"]["BuildSpec"]
    ]
    assert len(smoke_projects) == 2
    for project in smoke_projects:
        static = {v["Name"]: v["Value"] for v in project["Environment"]["EnvironmentVariables"]}
        assert static["MLSERVE_SMOKE_REQUIRED"] == "1"
        assert static["MLSERVE_SMOKE_MODEL_NAME"] == "demo-classifier"


def test_stage_stacks_are_the_environments(pipeline: tuple[App, PipelineStack, dict[str, Any]]) -> None:
    _, stack, _ = pipeline
    placed = {(s.stack.stack_name, s.stack.account, s.stack.region, s.stack.config.is_prod) for s in stack.stages}
    assert placed == {
        ("Mlserve-dev", "111111111111", "eu-west-1", False),
        ("Mlserve-prod", "222222222222", "eu-west-1", True),
    }
    prod = next(s for s in stack.stages if s.stack.config.is_prod)
    assert prod.stack.config.alarm_email == "oncall@example.com" and prod.stack.config.log_retention_days == 365
    assert (stack.account, stack.region) == ("111111111111", "eu-west-1")


def test_cdk_nag_clean_with_specific_acknowledgements(pipeline: tuple[App, PipelineStack, dict[str, Any]]) -> None:
    app, stack, _ = pipeline
    report = json.loads((Path(app.synth().directory) / "validation-report.json").read_text())
    for plugin in report["pluginReports"]:
        assert plugin["violations"] == [], plugin["violations"]
        assert plugin["conclusion"] == "success"
    suppressed = {
        (finding["ruleName"], construct["constructPath"]): finding
        for plugin in report["pluginReports"]
        for finding in plugin.get("suppressedViolations", [])
        for construct in finding["violatingConstructs"]
    }
    pipeline_path = stack.pipeline.node.path
    raw = {
        (v.rule_name, r.construct_path)
        for pack in (AwsSolutionsChecks, ServerlessChecks)
        for v in pack().validate_scope(stack.pipeline).violations
        for r in v.violating_resources
        if r.construct_path is not None
    }
    assert raw, "CDK Pipelines' roles carry wildcards; expected acknowledged findings"
    for rule, path in raw:
        finding = suppressed[(rule, path)]
        acknowledged_at = finding["acknowledgedAt"]
        # On the owning construct inside the pipeline, never the stack or app.
        assert acknowledged_at.startswith(pipeline_path + "/") and path.startswith(acknowledged_at), (rule, path)
        assert len(finding["reason"]) >= 60, (rule, finding["reason"])


def test_an_unexpected_wildcard_is_not_acknowledged() -> None:
    from infra.pipeline import _pipeline_finding_reason

    assert _pipeline_finding_reason("AwsSolutions-IAM5[Resource::*]", "X/Pipeline/Pipeline/Build/Synth/Role") is None
    assert _pipeline_finding_reason("AwsSolutions-IAM5[Action::iam:*]", "X/Pipeline/Assets/FileRole") is None
    assert _pipeline_finding_reason("AwsSolutions-S1", "X/Dev/Mlserve/ModelStore/Bucket/Resource") is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"pipeline_connection_arn": "arn:aws:s3:::bucket"}, "context 'pipeline_connection_arn' must be"),
        ({"github_repository": ""}, "context 'pipeline_repository' \\(or 'github_repository'\\)"),
        ({"pipeline_stages": ["dev", "qa"]}, "context 'environments' has no environment 'qa'"),
        ({"environments": CDK_JSON_CONTEXT["environments"]}, "context 'environments.dev' needs account and region"),
    ],
)
def test_bad_pipeline_context_names_the_key(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build(**overrides)


def test_builds_run_node_22_and_the_repositorys_make_targets(
    pipeline: tuple[App, PipelineStack, dict[str, Any]],
) -> None:
    _, _, template = pipeline
    specs = {
        key: json.loads(r["Properties"]["Source"]["BuildSpec"])
        for key, r in template["Resources"].items()
        if r["Type"] == "AWS::CodeBuild::Project" and ("Synth" in key or "SmokeTest" in key)
    }
    assert len(specs) == 3
    for spec in specs.values():
        assert spec["phases"]["install"]["runtime-versions"] == {"nodejs": "22", "python": "3.12"}
    synth = next(spec for key, spec in specs.items() if "Synth" in key)
    assert synth["phases"]["build"]["commands"] == ["make venv node PYTHON=python3.12", "npx cdk synth --quiet"]


def test_template_is_cfn_lint_clean(pipeline: tuple[App, PipelineStack, dict[str, Any]], tmp_path: Path) -> None:
    import subprocess
    import sys

    _, _, template = pipeline
    path = tmp_path / "MlservePipeline.template.json"
    path.write_text(json.dumps(template, indent=1))
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    # Ignored, with the reason: CDK Pipelines itself writes the deploy actions' bootstrap-role
    # ARNs as Fn::Join with an empty delimiter (E3703, a style preference for Fn::Sub) and
    # adds DependsOn on the pipeline role next to a GetAtt of it (W3005, redundant, harmless).
    command = [str(cfn_lint), "--ignore-checks", "E3703", "W3005", "--", str(path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
