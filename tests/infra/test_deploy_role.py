"""The GitHub OIDC deploy-role stack (``-c deploy_role=github``): who may assume it (trust
conditions on the token's ``sub`` and ``aud``), what it may do (only CDK's bootstrap roles),
the read-only pull-request role, and cdk-nag."""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks, ServerlessChecks

from infra.config import ConfigError
from infra.delivery import build_app
from infra.deploy_role import DeployRoleStack
from tests.infra.conftest import CDK_JSON_CONTEXT, allowed, as_list, render

REPO = "acme/mlserve"
ACCOUNT_ID = "<AWS::AccountId>"
PROVIDER_ARN = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"


def bootstrap_role(kind: str, region: str = "<AWS::Region>") -> str:
    return f"arn:<AWS::Partition>:iam::{ACCOUNT_ID}:role/cdk-hnb659fds-{kind}-{ACCOUNT_ID}-{region}"


def synth_role_stack(outdir: str | None = None, **context: Any) -> tuple[App, DeployRoleStack, dict[str, Any]]:
    full = {
        **CDK_JSON_CONTEXT,
        "aws:cdk:bundling-stacks": [],
        "deploy_role": "github",
        "github_repository": REPO,
        **context,
    }
    app = App(context=full, outdir=outdir)
    stack = next(stack for stack in build_app(app) if isinstance(stack, DeployRoleStack))
    return app, stack, dict(Template.from_stack(stack).to_json())


@pytest.fixture(scope="module")
def role_stack() -> tuple[App, DeployRoleStack, dict[str, Any]]:
    return synth_role_stack()


def resources_of(template: dict[str, Any], resource_type: str) -> dict[str, Any]:
    return {key: value for key, value in template["Resources"].items() if value["Type"] == resource_type}


def role_id(stack: DeployRoleStack, role: Any) -> str:
    return str(stack.resolve(stack.get_logical_id(role.node.default_child)))


def trust_allows(template: dict[str, Any], logical_id: str, claims: dict[str, str]) -> bool:
    """Evaluate the role's trust policy for an AssumeRoleWithWebIdentity with these token claims."""
    statements = template["Resources"][logical_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    for statement in statements:
        if statement["Effect"] != "Allow" or statement["Action"] != "sts:AssumeRoleWithWebIdentity":
            continue
        holds = True
        for operator, checks in statement["Condition"].items():
            for key, expected in checks.items():
                value = claims.get(key.split(":")[-1])
                if value is None:
                    holds = False
                elif operator == "StringEquals":
                    holds &= value in as_list(expected)
                elif operator == "StringLike":
                    holds &= any(fnmatch.fnmatchcase(value, pattern) for pattern in as_list(expected))
                else:
                    raise AssertionError(f"unexpected operator {operator}")
        if holds:
            return True
    return False


def role_statements(template: dict[str, Any], logical_id: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for policy in resources_of(template, "AWS::IAM::Policy").values():
        if {"Ref": logical_id} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def test_creates_githubs_oidc_provider_natively(role_stack: tuple[App, DeployRoleStack, dict[str, Any]]) -> None:
    _, _, template = role_stack
    providers = resources_of(template, "AWS::IAM::OIDCProvider")
    assert [provider["Properties"] for provider in providers.values()] == [
        {"Url": "https://token.actions.githubusercontent.com", "ClientIdList": ["sts.amazonaws.com"]}
    ]
    # No custom-resource Lambda behind it.
    assert not resources_of(template, "AWS::Lambda::Function")


def test_trust_conditions_on_sub_and_aud(role_stack: tuple[App, DeployRoleStack, dict[str, Any]]) -> None:
    _, stack, template = role_stack
    trust = template["Resources"][role_id(stack, stack.deploy_role)]["Properties"]["AssumeRolePolicyDocument"]
    (statement,) = trust["Statement"]
    assert statement["Principal"] == {
        "Federated": {"Ref": next(iter(resources_of(template, "AWS::IAM::OIDCProvider")))}
    }
    assert statement["Condition"] == {
        "StringEquals": {
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:sub": [
                f"repo:{REPO}:ref:refs/heads/main",
                f"repo:{REPO}:environment:dev",
                f"repo:{REPO}:environment:prod",
            ],
        }
    }


@pytest.mark.parametrize(
    ("sub", "aud", "expected"),
    [
        (f"repo:{REPO}:ref:refs/heads/main", "sts.amazonaws.com", True),
        (f"repo:{REPO}:environment:prod", "sts.amazonaws.com", True),
        (f"repo:{REPO}:environment:dev", "sts.amazonaws.com", True),
        # a feature branch, a pull request, a tag, another environment, a fork, a look-alike repo
        (f"repo:{REPO}:ref:refs/heads/feature", "sts.amazonaws.com", False),
        (f"repo:{REPO}:pull_request", "sts.amazonaws.com", False),
        (f"repo:{REPO}:ref:refs/tags/v1", "sts.amazonaws.com", False),
        (f"repo:{REPO}:environment:staging", "sts.amazonaws.com", False),
        ("repo:evil/mlserve:ref:refs/heads/main", "sts.amazonaws.com", False),
        (f"repo:{REPO}-fork:environment:prod", "sts.amazonaws.com", False),
        # a token minted for another audience
        (f"repo:{REPO}:ref:refs/heads/main", "https://github.com/acme", False),
    ],
)
def test_who_may_assume_the_deploy_role(
    role_stack: tuple[App, DeployRoleStack, dict[str, Any]], sub: str, aud: str, expected: bool
) -> None:
    _, stack, template = role_stack
    assert trust_allows(template, role_id(stack, stack.deploy_role), {"sub": sub, "aud": aud}) is expected


def test_deploy_role_may_only_assume_cdk_bootstrap_roles(
    role_stack: tuple[App, DeployRoleStack, dict[str, Any]],
) -> None:
    _, stack, template = role_stack
    statements = role_statements(template, role_id(stack, stack.deploy_role))
    assert [sorted(as_list(statement["Action"])) for statement in statements] == [["sts:AssumeRole", "sts:TagSession"]]
    resources = sorted(render(resource) for resource in as_list(statements[0]["Resource"]))
    assert resources == sorted(
        bootstrap_role(kind) for kind in ("deploy-role", "file-publishing-role", "image-publishing-role", "lookup-role")
    )
    for kind in ("deploy-role", "file-publishing-role", "image-publishing-role", "lookup-role"):
        assert allowed(statements, "sts:AssumeRole", bootstrap_role(kind))
    # Not the CloudFormation execution role, not any other role, nothing else at all.
    assert not allowed(statements, "sts:AssumeRole", bootstrap_role("cfn-exec-role"))
    assert not allowed(statements, "sts:AssumeRole", f"arn:<AWS::Partition>:iam::{ACCOUNT_ID}:role/Admin")
    for action in ("cloudformation:CreateStack", "iam:CreateRole", "s3:PutObject", "lambda:UpdateFunctionCode"):
        assert not allowed(statements, action, "*")


def test_pull_request_role_is_read_only(role_stack: tuple[App, DeployRoleStack, dict[str, Any]]) -> None:
    _, stack, template = role_stack
    assert stack.diff_role is not None
    diff_id = role_id(stack, stack.diff_role)
    assert trust_allows(template, diff_id, {"sub": f"repo:{REPO}:pull_request", "aud": "sts.amazonaws.com"})
    assert not trust_allows(template, diff_id, {"sub": f"repo:{REPO}:ref:refs/heads/main", "aud": "sts.amazonaws.com"})
    assert not trust_allows(template, diff_id, {"sub": "repo:evil/x:pull_request", "aud": "sts.amazonaws.com"})
    statements = role_statements(template, diff_id)
    assert allowed(statements, "sts:AssumeRole", bootstrap_role("lookup-role"))
    for kind in ("deploy-role", "file-publishing-role", "image-publishing-role"):
        assert not allowed(statements, "sts:AssumeRole", bootstrap_role(kind))
    # A pull request cannot use the deploy role either.
    deploy_id = role_id(stack, stack.deploy_role)
    assert not trust_allows(template, deploy_id, {"sub": f"repo:{REPO}:pull_request", "aud": "sts.amazonaws.com"})


def test_outputs_name_the_role_arns(role_stack: tuple[App, DeployRoleStack, dict[str, Any]]) -> None:
    _, _, template = role_stack
    assert {"DeployRoleArn", "PullRequestDiffRoleArn", "GithubOidcProviderArn"} <= set(template["Outputs"])


def test_existing_provider_custom_branch_and_no_diff_role() -> None:
    _, stack, template = synth_role_stack(
        github_oidc_provider_arn=PROVIDER_ARN,
        github_branch="release",
        github_environments="production",
        github_pull_request_diff="false",
    )
    assert not resources_of(template, "AWS::IAM::OIDCProvider")
    assert stack.diff_role is None and len(resources_of(template, "AWS::IAM::Role")) == 1
    trust = template["Resources"][role_id(stack, stack.deploy_role)]["Properties"]["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"] == {"Federated": PROVIDER_ARN}
    assert trust["Statement"][0]["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"] == [
        f"repo:{REPO}:ref:refs/heads/release",
        f"repo:{REPO}:environment:production",
    ]


def test_bootstrap_roles_of_every_environment_region_and_custom_qualifier() -> None:
    environments = {
        "dev": {"environment": "dev", "region": "eu-west-1"},
        "prod": {"environment": "prod", "region": "us-east-1", "upload_cors_origins": ["https://ml.example.com"]},
    }
    _, stack, template = synth_role_stack(environments=environments, **{"@aws-cdk/core:bootstrapQualifier": "team1"})
    (statement,) = role_statements(template, role_id(stack, stack.deploy_role))
    resources = {render(resource) for resource in as_list(statement["Resource"])}
    assert f"arn:<AWS::Partition>:iam::{ACCOUNT_ID}:role/cdk-team1-deploy-role-{ACCOUNT_ID}-eu-west-1" in resources
    assert f"arn:<AWS::Partition>:iam::{ACCOUNT_ID}:role/cdk-team1-deploy-role-{ACCOUNT_ID}-us-east-1" in resources
    assert len(resources) == 8 and not any("<AWS::Region>" in resource for resource in resources)


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"github_repository": ""}, "context 'github_repository' must be OWNER/REPO"),
        ({"github_repository": "acme/*"}, "context 'github_repository' must be OWNER/REPO"),
        ({"github_branch": "release/*"}, "context 'github_branch' must be one branch name"),
        ({"github_environments": ["prod*"]}, "context 'github_environments' must be a list"),
        ({"github_oidc_provider_arn": "arn:aws:iam::1:oidc-provider/x"}, "context 'github_oidc_provider_arn'"),
        ({"github_pull_request_diff": "maybe"}, "context 'github_pull_request_diff' must be true or false"),
        ({"deploy_role": "gitlab"}, "context 'deploy_role' must be github or empty"),
    ],
)
def test_bad_context_names_the_key(context: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("*", r"\*").replace("(", r"\(")):
        synth_role_stack(**context)


def test_cdk_nag_clean_without_acknowledgements(tmp_path: Path) -> None:
    app, stack, _ = synth_role_stack(outdir=str(tmp_path))
    for pack in (AwsSolutionsChecks, ServerlessChecks):
        assert pack().validate_scope(stack).violations == [], pack.__name__
    assembly = app.synth()
    report = json.loads((Path(assembly.directory) / "validation-report.json").read_text())
    for plugin in report["pluginReports"]:
        assert plugin["violations"] == [] and plugin["conclusion"] == "success"
        suppressed_here = [
            finding
            for finding in plugin.get("suppressedViolations", [])
            if any(c["constructPath"].startswith("MlserveDeployRole/") for c in finding["violatingConstructs"])
        ]
        assert suppressed_here == []


def test_template_is_cfn_lint_clean(role_stack: tuple[App, DeployRoleStack, dict[str, Any]], tmp_path: Path) -> None:
    import subprocess
    import sys

    _, _, template = role_stack
    path = tmp_path / "MlserveDeployRole.template.json"
    path.write_text(json.dumps(template, indent=1))
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([str(cfn_lint), "--", str(path)], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
