"""What each role can and cannot do, evaluated over the synthesized IAM statements."""

from __future__ import annotations

import pytest

from tests.infra.conftest import Synth, allowed, as_list, render, role_statements, synth


@pytest.fixture(scope="module")
def api(default_synth: Synth) -> tuple[Synth, list[dict], str, str]:
    online_api = default_synth.stack.online_api
    role_id = default_synth.logical_id(online_api.serving.role)
    bucket_arn = f"<{default_synth.logical_id(default_synth.stack.model_store.bucket)}.Arn>"
    log_group_arn = f"<{default_synth.logical_id(online_api.serving.log_group)}.Arn>"
    return default_synth, role_statements(default_synth, role_id), bucket_arn, log_group_arn


def test_api_role_has_no_managed_policies(api: tuple[Synth, list[dict], str, str]) -> None:
    result, _, _, _ = api
    role = result.resources[result.logical_id(result.stack.online_api.serving.role)]["Properties"]
    assert not role.get("ManagedPolicyArns")
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}


@pytest.mark.parametrize(
    "key",
    [
        "models/demo-classifier/live.json",
        "models/demo-classifier/versions/3/model.skops",
        "models/demo-classifier/versions/3/MLmodel",
        "models/demo-classifier/deployments/2026-01-01T00-00-00Z.json",
    ],
)
def test_api_role_can_read_its_model(api: tuple[Synth, list[dict], str, str], key: str) -> None:
    _, statements, bucket_arn, _ = api
    assert allowed(statements, "s3:GetObject", f"{bucket_arn}/{key}")


def test_api_role_can_list_only_its_model_prefix(api: tuple[Synth, list[dict], str, str]) -> None:
    _, statements, bucket_arn, _ = api
    assert allowed(statements, "s3:ListBucket", bucket_arn, {"s3:prefix": "models/demo-classifier/versions/"})
    assert not allowed(statements, "s3:ListBucket", bucket_arn, {"s3:prefix": "models/other-model/"})
    assert not allowed(statements, "s3:ListBucket", bucket_arn, {"s3:prefix": ""})
    assert not allowed(statements, "s3:ListBucket", bucket_arn)


@pytest.mark.parametrize(
    ("action", "key"),
    [
        ("s3:GetObject", "models/other-model/live.json"),
        ("s3:GetObject", "models/demo-classifier-evil/live.json"),
        ("s3:GetObject", "incoming/data.csv"),
        ("s3:PutObject", "models/demo-classifier/live.json"),
        ("s3:PutObject", "models/demo-classifier/versions/9/model.skops"),
        ("s3:DeleteObject", "models/demo-classifier/live.json"),
        ("s3:DeleteObjectVersion", "models/demo-classifier/live.json"),
        ("s3:PutObjectAcl", "models/demo-classifier/live.json"),
        ("s3:GetObjectVersion", "models/demo-classifier/live.json"),
    ],
)
def test_api_role_cannot(api: tuple[Synth, list[dict], str, str], action: str, key: str) -> None:
    _, statements, bucket_arn, _ = api
    assert not allowed(statements, action, f"{bucket_arn}/{key}")


def test_api_role_cannot_touch_bucket_configuration(api: tuple[Synth, list[dict], str, str]) -> None:
    _, statements, bucket_arn, _ = api
    for action in ("s3:PutBucketPolicy", "s3:DeleteBucket", "s3:PutBucketVersioning", "s3:ListAllMyBuckets"):
        assert not allowed(statements, action, bucket_arn, {"s3:prefix": "models/demo-classifier/"})
    assert not allowed(statements, "s3:ListBucket", "<SomeOtherBucket.Arn>", {"s3:prefix": "models/demo-classifier/"})


def test_only_get_and_list_s3_actions_anywhere_in_the_api_role(api: tuple[Synth, list[dict], str, str]) -> None:
    _, statements, _, _ = api
    s3_actions = {action for st in statements for action in as_list(st["Action"]) if action.startswith("s3:")}
    assert s3_actions == {"s3:GetObject", "s3:ListBucket"}
    assert not any("*" in action for st in statements for action in as_list(st["Action"]))


def test_api_role_writes_logs_only_to_its_own_log_group(api: tuple[Synth, list[dict], str, str]) -> None:
    result, statements, _, log_group_arn = api
    assert allowed(statements, "logs:PutLogEvents", log_group_arn)
    assert allowed(statements, "logs:CreateLogStream", log_group_arn)
    access_logs = f"<{result.logical_id(result.stack.online_api.access_logs)}.Arn>"
    assert not allowed(statements, "logs:PutLogEvents", access_logs)
    assert not allowed(statements, "logs:CreateLogGroup", "*")


def test_wildcard_resource_is_only_for_xray(api: tuple[Synth, list[dict], str, str]) -> None:
    _, statements, _, _ = api
    wildcard = [st for st in statements if "*" in [render(r) for r in as_list(st["Resource"])]]
    assert wildcard, "X-Ray statement expected"
    for statement in wildcard:
        assert all(action.startswith("xray:") for action in as_list(statement["Action"]))


def test_read_grant_follows_the_model_name() -> None:
    result = synth(model_name="churn")
    role_id = result.logical_id(result.stack.online_api.serving.role)
    statements = role_statements(result, role_id)
    bucket_arn = f"<{result.logical_id(result.stack.model_store.bucket)}.Arn>"
    assert allowed(statements, "s3:GetObject", f"{bucket_arn}/models/churn/live.json")
    assert not allowed(statements, "s3:GetObject", f"{bucket_arn}/models/demo-classifier/live.json")
