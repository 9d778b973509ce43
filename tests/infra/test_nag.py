"""cdk-nag (AwsSolutions + Serverless): zero unacknowledged findings, every acknowledgement
attached to the construct that owns the finding and carrying a specific reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks, ServerlessChecks

from infra.nag import register_nag
from tests.infra.conftest import Synth, synth

PACKS = (AwsSolutionsChecks, ServerlessChecks)


def validation_report(result: Synth) -> dict[str, Any]:
    """CDK's own policy-validation report: findings minus acknowledgements, with reasons.
    ``app.synth()`` raises when any finding is left unacknowledged."""
    assembly = result.app.synth()
    return json.loads((Path(assembly.directory) / "validation-report.json").read_text())


def raw_findings(result: Synth, pack: type) -> set[tuple[str, str]]:
    """Everything the pack flags before acknowledgements: (rule, construct path)."""
    violations = pack().validate_scope(result.stack).violations
    return {(v.rule_name, r.construct_path) for v in violations for r in v.violating_resources}


@pytest.fixture(scope="module", params=["api_key", "iam", "none", "prod", "bundle_deps_function"])
def variant(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Synth:
    outdir = str(tmp_path_factory.mktemp("cdk.out"))
    if request.param == "prod":
        return synth(outdir=outdir, environment="prod", upload_cors_origins=["https://app.example.com"])
    if request.param == "bundle_deps_function":
        return synth(outdir=outdir, bundle_deps="function")
    return synth(outdir=outdir, auth=request.param)


def test_both_packs_run_with_zero_unacknowledged_findings(variant: Synth) -> None:
    report = validation_report(variant)
    plugins = {plugin["pluginName"]: plugin for plugin in report["pluginReports"]}
    assert set(plugins) == {"AwsSolutions", "Serverless"}
    for name, plugin in plugins.items():
        assert plugin["violations"] == [], (name, plugin["violations"])
        assert plugin["conclusion"] == "success"


@pytest.mark.parametrize("pack", PACKS, ids=lambda pack: pack.__name__)
def test_every_raw_finding_is_acknowledged_specifically(variant: Synth, pack: type) -> None:
    report = validation_report(variant)
    stack_path = variant.stack.node.path
    suppressed = {
        (finding["ruleName"], construct["constructPath"]): finding
        for plugin in report["pluginReports"]
        for finding in plugin.get("suppressedViolations", [])
        for construct in finding["violatingConstructs"]
    }
    for rule, path in raw_findings(variant, pack):
        finding = suppressed.get((rule, path))
        assert finding is not None, f"{rule} on {path} is neither fixed nor acknowledged"
        # Acknowledged on the owning construct (or a parent inside the stack), never
        # stack- or app-wide, and with a reason that explains this case.
        acknowledged_at = finding["acknowledgedAt"]
        assert acknowledged_at.startswith(stack_path + "/"), (rule, acknowledged_at)
        assert path.startswith(acknowledged_at), (rule, acknowledged_at, path)
        assert len(finding["reason"]) >= 60, (rule, finding["reason"])


def fanout_invoke_and_child_execution_rules(result: Synth) -> list[str]:
    fanout = result.stack.fanout
    functions = [
        f"AwsSolutions-IAM5[Resource::<{result.logical_id(step.function)}.Arn>:*]"
        for step in (fanout.plan, fanout.range, fanout.merge, fanout.fail)
    ]
    machine = '{"Fn::Select":[6,{"Fn::Split":[":",{"Ref":"' + result.logical_id(fanout.state_machine) + '"}]}]}'
    execution = f"arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:{machine}"
    return [*functions, f"AwsSolutions-IAM5[Resource::{execution}:*]", f"AwsSolutions-IAM5[Resource::{execution}/*:*]"]


def test_expected_acknowledgements_only(default_synth: Synth) -> None:
    rules = sorted({rule for pack in PACKS for rule, _ in raw_findings(default_synth, pack)})
    bucket_id = default_synth.logical_id(default_synth.stack.model_store.bucket)
    batch_id = default_synth.logical_id(default_synth.stack.batch.bucket)
    drift = default_synth.stack.drift
    assert drift is not None
    drift_id = default_synth.logical_id(drift.bucket)
    assert rules == sorted(
        [
            # batch role (infra/batch.py): explicit actions on prefixes (issue 11: no
            # s3:List*/GetBucket*/GetObject* wildcards any more)
            f"AwsSolutions-IAM5[Resource::<{batch_id}.Arn>/incoming/*]",
            f"AwsSolutions-IAM5[Resource::<{batch_id}.Arn>/results/*]",
            f"AwsSolutions-IAM5[Resource::<{batch_id}.Arn>/results/.markers/*]",
            f"AwsSolutions-IAM5[Resource::<{batch_id}.Arn>/results/.jobs/*]",
            # the batch and redeploy DLQs (infra/functions.py, async functions) and the alarm
            # topic's dead-letter queue (infra/monitoring.py)
            "AwsSolutions-SQS3",
            "Serverless-SQSRedrivePolicy",
            # CDK's own BucketNotificationsHandler (infra/stack.py)
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
            "AwsSolutions-APIG2",
            "AwsSolutions-APIG3",
            "AwsSolutions-APIG4",
            "AwsSolutions-COG4",
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AmazonAPIGatewayPushToCloudWatchLogs]",
            "AwsSolutions-IAM5[Resource::*]",
            f"AwsSolutions-IAM5[Resource::<{bucket_id}.Arn>/models/demo-classifier/*]",
            "Serverless-LambdaDLQ",
            # promotion (infra/promotion.py): the webhook's HMAC secret is rotated by hand;
            # the redeploy's write access to models/<name>/* is the IAM5 model-prefix entry
            # above; POST /registry/events is HMAC-authenticated (APIG4/COG4 above)
            "AwsSolutions-SMG4",
            # the web page (infra/online_api.py): the API role's incoming/* put and results/*
            # read are the batch-bucket IAM5 entries above; the key-free page GETs are the
            # APIG4/COG4 entries above
            # drift monitoring (infra/drift.py): captures and reports of this model's prefixes
            # (the job's and the API's), Firehose's own prefixes; the job's model read, batch
            # incoming/* read and LambdaDLQ (scheduler retries) are entries above
            f"AwsSolutions-IAM5[Resource::<{drift_id}.Arn>/capture/*]",
            f"AwsSolutions-IAM5[Resource::<{drift_id}.Arn>/capture-errors/*]",
            f"AwsSolutions-IAM5[Resource::<{drift_id}.Arn>/capture/demo-classifier/*]",
            f"AwsSolutions-IAM5[Resource::<{drift_id}.Arn>/monitoring/demo-classifier/drift/*]",
            # the fan-out (infra/fanout.py): the step roles' scratch prefix, the state machine
            # invoking its step functions (and versions) and managing its child executions;
            # its X-Ray/log delivery is the Resource::* entry, the synchronous step functions
            # the Serverless-LambdaDLQ entry above
            f"AwsSolutions-IAM5[Resource::<{batch_id}.Arn>/results/.fanout/*]",
            *fanout_invoke_and_child_execution_rules(default_synth),
        ]
    )


def test_cdk_managed_policy_is_acknowledged_only_on_the_notifications_handler(default_synth: Synth) -> None:
    basic = "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]"
    paths = {path for rule, path in raw_findings(default_synth, AwsSolutionsChecks) if rule == basic}
    assert paths and all("/BucketNotificationsHandler" in path for path in paths), paths


def test_iam_auth_satisfies_apig4_without_acknowledgement(iam_synth: Synth) -> None:
    """Under auth=iam only the HMAC-authenticated webhook route has no AWS authorization."""
    paths = {path for rule, path in raw_findings(iam_synth, AwsSolutionsChecks) if rule == "AwsSolutions-APIG4"}
    assert paths and all(path.endswith("/registry/events/POST/Resource") for path in paths), paths


def test_nag_runs_as_a_validation_plugin_and_fails_synth() -> None:
    """Registered on the app, a finding fails synthesis (not just a printed warning)."""
    app = App(context={"aws:cdk:bundling-stacks": []})
    stack = Stack(app, "Bad")
    lambda_.Function(
        stack,
        "Old",
        runtime=lambda_.Runtime.PYTHON_3_11,
        handler="x.handler",
        code=lambda_.Code.from_inline("def handler(e, c): pass"),
    )
    register_nag(app)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        Template.from_stack(stack)
