"""Named environments (context ``environments`` + ``deploy_env``): one ``Mlserve-<env>`` stack
per environment with its own settings and placement, so one account can hold dev and prod;
without ``deploy_env`` the app is exactly what it was (one ``Mlserve`` stack)."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template

from infra.config import ConfigError
from infra.delivery import build_app
from infra.environments import resolve, selected_names
from infra.stack import MlserveStack
from tests.infra.conftest import CDK_JSON_CONTEXT, REPO_ROOT

# Resource names that must be unique per account (and region): a literal one in both
# stacks would make the second deploy fail.
UNIQUE_NAMES = {
    "AWS::S3::Bucket": "BucketName",
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Lambda::LayerVersion": "LayerName",
    "AWS::Events::EventBus": "Name",
    "AWS::Events::Rule": "Name",
    "AWS::SNS::Topic": "TopicName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::SecretsManager::Secret": "Name",
    "AWS::CloudWatch::Dashboard": "DashboardName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::KMS::Alias": "AliasName",
    "AWS::DynamoDB::Table": "TableName",
}


def context(**overrides: Any) -> dict[str, Any]:
    return {**CDK_JSON_CONTEXT, "aws:cdk:bundling-stacks": [], **overrides}


def stacks_of(**overrides: Any) -> list[MlserveStack]:
    app = App(context=context(**overrides))
    return [stack for stack in build_app(app) if isinstance(stack, MlserveStack)]


def test_without_deploy_env_the_app_is_the_single_mlserve_stack() -> None:
    (stack,) = stacks_of()
    assert stack.stack_name == "Mlserve" and stack.config.environment == "dev"


@pytest.fixture(scope="module")
def both() -> dict[str, MlserveStack]:
    return {stack.stack_name: stack for stack in stacks_of(deploy_env="all")}


def test_all_gives_one_stack_per_environment(both: dict[str, MlserveStack]) -> None:
    assert set(both) == {"Mlserve-dev", "Mlserve-prod"}
    dev, prod = both["Mlserve-dev"].config, both["Mlserve-prod"].config
    assert not dev.is_prod and prod.is_prod
    assert (dev.log_retention_days, prod.log_retention_days) == (30, 365)
    assert dev.auth == prod.auth == "api_key"


def test_one_account_can_hold_both(both: dict[str, MlserveStack]) -> None:
    names: dict[str, set[str]] = {}
    for stack_name, stack in both.items():
        found = set()
        for resource in Template.from_stack(stack).to_json()["Resources"].values():
            key = UNIQUE_NAMES.get(resource["Type"])
            value = resource.get("Properties", {}).get(key) if key else None
            if isinstance(value, str):  # a literal, not a generated or stack-scoped token
                found.add(f"{resource['Type']} {value}")
        names[stack_name] = found
    assert names["Mlserve-dev"] & names["Mlserve-prod"] == set()


def test_entry_settings_and_placement_win_over_the_flat_context() -> None:
    environments = {
        "dev": {"account": "111111111111", "region": "eu-west-1", "model_name": "churn", "auth": "iam"},
        "prod": {
            "account": "222222222222",
            "region": "eu-central-1",
            "alarm_email": "oncall@example.com",
            "upload_cors_origins": ["https://ml.example.com"],
        },
    }
    (dev,) = stacks_of(deploy_env="dev", environments=environments)
    assert (dev.stack_name, dev.account, dev.region) == ("Mlserve-dev", "111111111111", "eu-west-1")
    assert dev.config.model_name == "churn" and dev.config.auth == "iam" and not dev.config.is_prod
    (prod,) = stacks_of(deploy_env="prod", environments=environments, model_name="flat-default")
    assert (prod.account, prod.region, prod.config.is_prod) == ("222222222222", "eu-central-1", True)
    assert prod.config.model_name == "flat-default" and prod.config.alarm_email == "oncall@example.com"


def test_environments_from_the_command_line_as_json() -> None:
    raw = json.dumps({"qa": {"environment": "dev", "model_name": "qa-model"}})
    (qa,) = stacks_of(deploy_env="qa", environments=raw)
    assert qa.stack_name == "Mlserve-qa" and qa.config.model_name == "qa-model"


def test_comma_list_selects_several() -> None:
    assert selected_names(context(deploy_env="prod, dev").get) == ["prod", "dev"]
    assert selected_names(context(deploy_env="").get) == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"deploy_env": "staging"}, "context 'deploy_env' names 'staging', which is not in context 'environments'"),
        ({"environments": {"dev": {"colour": "blue"}}, "deploy_env": "dev"}, "'environments.dev' has unknown key"),
        ({"environments": {"Dev!": {}}, "deploy_env": "all"}, "environment name 'Dev!' must be lower-case"),
        ({"environments": {"dev": {"account": "12"}}, "deploy_env": "dev"}, "'environments.dev.account' must be"),
        ({"environments": {"dev": {"region": "mars"}}, "deploy_env": "dev"}, "'environments.dev.region' must be"),
        ({"environments": {"qa": {}}, "deploy_env": "qa"}, "'environments.qa.environment' is required"),
        ({"environments": {"prod": {"auth": "none"}}, "deploy_env": "prod"}, "environments.prod: context 'auth'"),
        ({"environments": {"dev": {"log_retention_days": 2}}, "deploy_env": "dev"}, "environments.dev: context 'log_"),
        ({"environments": "{not json", "deploy_env": "dev"}, "context 'environments' is not valid JSON"),
    ],
)
def test_bad_environment_context_names_the_key(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        stacks_of(**overrides)


def test_resolve_defaults_the_tier_to_the_name() -> None:
    target = resolve(context(environments={"prod": {"upload_cors_origins": ["https://ml.example.com"]}}).get, "prod")
    assert target.config.is_prod and target.account is None and target.region is None


def make_dry_run(*args: str) -> str:
    result = subprocess.run(
        ["make", "-n", "--no-print-directory", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def test_make_deploy_env_targets_the_environment_stack() -> None:
    assert "npx cdk deploy -c deploy_env=dev Mlserve-dev --ci" in make_dry_run(
        "deploy", "ENV=dev", "CDK_DEPLOY_FLAGS=--ci"
    )
    assert "npx cdk diff -c deploy_env=prod Mlserve-prod" in make_dry_run("diff", "ENV=prod")
    # No ENV: the single Mlserve stack, as `npx cdk deploy` always deployed.
    assert "npx cdk deploy Mlserve" in make_dry_run("deploy")
