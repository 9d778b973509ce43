"""Issue 11 (Low), the batch bucket in the synthesized stack: the batch role has no
s3:List*/GetBucket* on the bucket and no PutObjectLegalHold/Retention/Tagging; CORS allows
POST only and prod needs explicit origins; incoming/ and results/ expire after
`batch_retention_days`, noncurrent versions after 7 days; the limits reach the function."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config import ConfigError, ServingConfig
from tests.infra.conftest import CDK_JSON_CONTEXT, Synth, allowed, as_list, role_statements, synth


@pytest.fixture(scope="module")
def default() -> Synth:
    return synth()


def batch_role(result: Synth) -> tuple[list[dict[str, Any]], str]:
    stack = result.stack
    return role_statements(
        result, result.logical_id(stack.batch.role)
    ), f"<{result.logical_id(stack.batch.bucket)}.Arn>"


def test_batch_role_cannot_list_or_read_bucket_metadata(default: Synth) -> None:
    statements, bucket_arn = batch_role(default)
    bucket_id = default.logical_id(default.stack.batch.bucket)
    on_batch_bucket = [st for st in statements if bucket_id in str(st["Resource"])]
    actions = {action for st in on_batch_bucket for action in as_list(st["Action"])}
    assert not [a for a in actions if a.startswith(("s3:List", "s3:GetBucket"))], actions
    for action in ("s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucketLocation", "s3:GetBucketPolicy"):
        assert not allowed(statements, action, bucket_arn), action
        assert not allowed(statements, action, bucket_arn, {"s3:prefix": "incoming/"}), action


@pytest.mark.parametrize(
    "action", ["s3:PutObjectLegalHold", "s3:PutObjectRetention", "s3:PutObjectTagging", "s3:PutObjectAcl"]
)
def test_batch_role_cannot_lock_or_tag_results(default: Synth, action: str) -> None:
    statements, bucket_arn = batch_role(default)
    assert not allowed(statements, action, f"{bucket_arn}/results/x.csv.predictions.csv")


@pytest.mark.parametrize(
    ("action", "key"),
    [
        ("s3:GetObjectVersion", "incoming/a/b.csv"),
        ("s3:PutObject", "results/a/b.csv.report.json"),
        ("s3:AbortMultipartUpload", "results/a/b.csv.predictions.csv"),
        ("s3:GetObject", "results/.markers/a/b.csv/v1"),
        ("s3:GetObject", "results/.jobs/0123456789abcdef0123456789abcdef"),
    ],
)
def test_batch_role_still_does_its_job(default: Synth, action: str, key: str) -> None:
    statements, bucket_arn = batch_role(default)
    assert allowed(statements, action, f"{bucket_arn}/{key}")


def batch_bucket(result: Synth) -> dict[str, Any]:
    return dict(result.resources[result.logical_id(result.stack.batch.bucket)]["Properties"])


def test_cors_allows_post_only(default: Synth) -> None:
    (rule,) = batch_bucket(default)["CorsConfiguration"]["CorsRules"]
    assert rule["AllowedMethods"] == ["POST"]


def test_prod_requires_explicit_origins() -> None:
    with pytest.raises(ConfigError, match="upload_cors_origins"):
        ServingConfig.from_mapping({**CDK_JSON_CONTEXT, "environment": "prod"})
    config = ServingConfig.from_mapping(
        {**CDK_JSON_CONTEXT, "environment": "prod", "upload_cors_origins": ["https://app.example.com"]}
    )
    assert config.upload_cors_origins == ("https://app.example.com",)


def rules(result: Synth) -> dict[str, dict[str, Any]]:
    return {r["Id"]: r for r in batch_bucket(result)["LifecycleConfiguration"]["Rules"]}


def test_lifecycle_expires_inputs_results_and_old_versions(default: Synth) -> None:
    found = rules(default)
    assert found["expire-incoming"]["Prefix"] == "incoming/" and found["expire-incoming"]["ExpirationInDays"] == 30
    assert found["expire-results"]["Prefix"] == "results/" and found["expire-results"]["ExpirationInDays"] == 30
    assert found["expire-old-versions"]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 7


def test_retention_zero_keeps_inputs_and_results() -> None:
    found = rules(synth(batch_retention_days=0))
    assert "expire-incoming" not in found and "expire-results" not in found
    assert found["expire-old-versions"]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 7


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("batch_max_bytes", 10),
        ("batch_max_record_bytes", "big"),
        ("batch_max_columns", 0),
        ("batch_max_decompression_ratio", 5000),
        ("batch_retention_days", -1),
        ("batch_escape_formulas", "maybe"),
    ],
)
def test_bad_limit_context_names_the_key(key: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=key):
        ServingConfig.from_mapping({**CDK_JSON_CONTEXT, key: value})


def test_limits_reach_the_batch_function_and_the_page_gets_the_upload_origin(default: Synth) -> None:
    stack = default.stack
    functions = default.of_type("AWS::Lambda::Function")
    batch_env = functions[default.logical_id(stack.batch.function)]["Properties"]["Environment"]["Variables"]
    assert batch_env["MLSERVE_BATCH_MAX_BYTES"] == str(10 * 1024**3)
    assert batch_env["MLSERVE_BATCH_MAX_RECORD_BYTES"] == str(1024 * 1024)
    assert batch_env["MLSERVE_BATCH_MAX_COLUMNS"] == "10000"
    assert batch_env["MLSERVE_BATCH_MAX_DECOMPRESSION_RATIO"] == "200"
    assert batch_env["MLSERVE_BATCH_ESCAPE_FORMULAS"] == "false"
    api_env = functions[default.logical_id(stack.online_api.function)]["Properties"]["Environment"]["Variables"]
    assert "RegionalDomainName" in str(api_env["MLSERVE_UPLOAD_ORIGIN"])
