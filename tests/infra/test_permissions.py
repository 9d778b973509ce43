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


def test_only_get_list_and_page_upload_s3_actions_in_the_api_role(api: tuple[Synth, list[dict], str, str]) -> None:
    _, statements, _, _ = api
    s3_actions = {action for st in statements for action in as_list(st["Action"]) if action.startswith("s3:")}
    # PutObject: only the web page's presigned POST into the batch bucket's incoming/
    assert s3_actions == {"s3:GetObject", "s3:ListBucket", "s3:PutObject"}
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


# --- batch scoring role ----------------------------------------------------------------


@pytest.fixture(scope="module")
def batch(default_synth: Synth) -> tuple[list[dict], str, str]:
    stack = default_synth.stack
    role_id = default_synth.logical_id(stack.batch.role)
    batch_arn = f"<{default_synth.logical_id(stack.batch.bucket)}.Arn>"
    model_arn = f"<{default_synth.logical_id(stack.model_store.bucket)}.Arn>"
    return role_statements(default_synth, role_id), batch_arn, model_arn


@pytest.mark.parametrize(
    ("action", "key"),
    [
        ("s3:GetObject", "incoming/data.csv"),
        ("s3:GetObjectVersion", "incoming/sub dir/données.csv.gz"),  # the event pins a version
        ("s3:GetObject", "results/.markers/data.csv/3HL4kqtJlcpXroDTDmJ"),
        ("s3:PutObject", "results/data.predictions.csv"),
        ("s3:PutObject", "results/data.report.json"),
        ("s3:PutObject", "results/.markers/data.csv/3HL4kqtJlcpXroDTDmJ"),
        ("s3:AbortMultipartUpload", "results/data.predictions.csv"),
    ],
)
def test_batch_role_can_use_its_batch_bucket_prefixes(
    batch: tuple[list[dict], str, str], action: str, key: str
) -> None:
    statements, batch_arn, _ = batch
    assert allowed(statements, action, f"{batch_arn}/{key}")


@pytest.mark.parametrize(
    ("action", "key"),
    [
        ("s3:PutObject", "incoming/data.csv"),  # input is never modified...
        ("s3:DeleteObject", "incoming/data.csv"),  # ...nor deleted
        ("s3:DeleteObjectVersion", "incoming/data.csv"),
        ("s3:DeleteObject", "results/data.predictions.csv"),
        ("s3:GetObject", "results/data.predictions.csv"),  # results: write-only (markers aside)
        ("s3:GetObject", "other/secret.csv"),
        ("s3:PutObject", "other/x.csv"),
        ("s3:PutObjectAcl", "results/data.predictions.csv"),
        ("s3:PutBucketPolicy", ""),
        ("s3:PutBucketNotification", ""),
    ],
)
def test_batch_role_cannot_in_its_batch_bucket(batch: tuple[list[dict], str, str], action: str, key: str) -> None:
    statements, batch_arn, _ = batch
    assert not allowed(statements, action, f"{batch_arn}/{key}" if key else batch_arn)


def test_batch_role_reads_only_its_model(batch: tuple[list[dict], str, str]) -> None:
    statements, _, model_arn = batch
    assert allowed(statements, "s3:GetObject", f"{model_arn}/models/demo-classifier/live.json")
    assert allowed(statements, "s3:GetObject", f"{model_arn}/models/demo-classifier/versions/3/model.skops")
    assert allowed(statements, "s3:ListBucket", model_arn, {"s3:prefix": "models/demo-classifier/"})
    for action, key in [
        ("s3:GetObject", "models/other-model/live.json"),
        ("s3:GetObject", "models/demo-classifier-evil/live.json"),
        ("s3:PutObject", "models/demo-classifier/live.json"),
        ("s3:DeleteObject", "models/demo-classifier/live.json"),
        ("s3:PutObject", "results/x.csv"),  # results go to the batch bucket only
    ]:
        assert not allowed(statements, action, f"{model_arn}/{key}"), (action, key)
    assert not allowed(statements, "s3:ListBucket", model_arn, {"s3:prefix": ""})


def test_batch_role_has_no_delete_and_no_s3_star(batch: tuple[list[dict], str, str]) -> None:
    statements, _, _ = batch
    actions = {action for st in statements for action in as_list(st["Action"])}
    assert not any(action.startswith("s3:Delete") or action in ("s3:*", "*") for action in actions)


def test_batch_role_sends_failures_only_to_its_dead_letter_queue(
    default_synth: Synth, batch: tuple[list[dict], str, str]
) -> None:
    statements, _, _ = batch
    stack = default_synth.stack
    queue_arn = f"<{default_synth.logical_id(stack.batch.dead_letter_queue)}.Arn>"
    log_group_arn = f"<{default_synth.logical_id(stack.batch.log_group)}.Arn>"
    assert allowed(statements, "sqs:SendMessage", queue_arn)
    assert not allowed(statements, "sqs:ReceiveMessage", queue_arn)
    assert not allowed(statements, "sqs:DeleteMessage", queue_arn)
    assert allowed(statements, "logs:PutLogEvents", log_group_arn)
    api_log_group = f"<{default_synth.logical_id(stack.online_api.serving.log_group)}.Arn>"
    assert not allowed(statements, "logs:PutLogEvents", api_log_group)
    wildcard = [st for st in statements if "*" in [render(r) for r in as_list(st["Resource"])]]
    assert wildcard and all(a.startswith("xray:") for st in wildcard for a in as_list(st["Action"]))


# --- the API role and the batch bucket (the web page) ------------------------------------


@pytest.mark.parametrize(
    ("action", "key"),
    [
        ("s3:PutObject", "incoming/3f2a9c/leads.csv"),  # signs the browser's presigned POST
        ("s3:PutObject", "incoming/3f2a9c/leads.csv.gz"),
        ("s3:GetObject", "results/3f2a9c/leads.csv.report.json"),  # job status, preview
        ("s3:GetObject", "results/3f2a9c/leads.csv.predictions.csv"),  # presigned download
    ],
)
def test_api_role_can_serve_the_page_uploads(
    api: tuple[Synth, list[dict], str, str], batch: tuple[list[dict], str, str], action: str, key: str
) -> None:
    _, api_statements, _, _ = api
    _, batch_arn, _ = batch
    assert allowed(api_statements, action, f"{batch_arn}/{key}")


@pytest.mark.parametrize(
    ("action", "key"),
    [
        ("s3:GetObject", "incoming/3f2a9c/leads.csv"),  # never reads what others uploaded
        ("s3:PutObject", "results/3f2a9c/leads.csv.predictions.csv"),  # never forges results
        ("s3:PutObject", "results/.markers/leads.csv/v1"),
        ("s3:PutObject", "other/x.csv"),
        ("s3:GetObject", "other/x.csv"),
        ("s3:DeleteObject", "incoming/3f2a9c/leads.csv"),
        ("s3:DeleteObject", "results/3f2a9c/leads.csv.predictions.csv"),
        ("s3:PutObjectAcl", "incoming/3f2a9c/leads.csv"),
        ("s3:GetObjectVersion", "results/3f2a9c/leads.csv.report.json"),
        ("s3:PutBucketCors", ""),
        ("s3:PutBucketPolicy", ""),
    ],
)
def test_api_role_cannot_elsewhere_in_the_batch_bucket(
    api: tuple[Synth, list[dict], str, str], batch: tuple[list[dict], str, str], action: str, key: str
) -> None:
    _, api_statements, _, _ = api
    _, batch_arn, _ = batch
    assert not allowed(api_statements, action, f"{batch_arn}/{key}" if key else batch_arn)


def test_api_role_lists_only_the_page_prefixes(
    api: tuple[Synth, list[dict], str, str], batch: tuple[list[dict], str, str]
) -> None:
    _, api_statements, model_arn, _ = api
    _, batch_arn, _ = batch
    assert allowed(api_statements, "s3:ListBucket", batch_arn, {"s3:prefix": "incoming/3f2a9c/"})
    assert allowed(api_statements, "s3:ListBucket", batch_arn, {"s3:prefix": "results/3f2a9c/"})
    assert not allowed(api_statements, "s3:ListBucket", batch_arn, {"s3:prefix": ""})
    assert not allowed(api_statements, "s3:ListBucket", batch_arn, {"s3:prefix": "other/"})
    assert not allowed(api_statements, "s3:ListBucket", batch_arn)
    # and still nothing new in the model bucket
    assert not allowed(api_statements, "s3:PutObject", f"{model_arn}/incoming/x.csv")


# --- promotion: redeploy and webhook roles -------------------------------------------------


@pytest.fixture(scope="module")
def redeploy(default_synth: Synth) -> tuple[list[dict], str, str]:
    stack = default_synth.stack
    role_id = default_synth.logical_id(stack.promotion.redeploy_role)
    model_arn = f"<{default_synth.logical_id(stack.model_store.bucket)}.Arn>"
    batch_arn = f"<{default_synth.logical_id(stack.batch.bucket)}.Arn>"
    return role_statements(default_synth, role_id), model_arn, batch_arn


@pytest.mark.parametrize(
    ("action", "key"),
    [
        ("s3:PutObject", "models/demo-classifier/versions/4/model.skops"),
        ("s3:PutObject", "models/demo-classifier/versions/4/checksums.json"),
        ("s3:PutObject", "models/demo-classifier/live.json"),
        ("s3:PutObject", "models/demo-classifier/deployments/2026-11-25T12-00-00Z-4.json"),
        ("s3:GetObject", "models/demo-classifier/live.json"),
        ("s3:GetObject", "models/demo-classifier/versions/3/MLmodel"),
    ],
)
def test_redeploy_role_can_write_its_model(redeploy: tuple[list[dict], str, str], action: str, key: str) -> None:
    statements, model_arn, _ = redeploy
    assert allowed(statements, action, f"{model_arn}/{key}")


@pytest.mark.parametrize(
    ("action", "key"),
    [
        ("s3:PutObject", "models/other-model/live.json"),
        ("s3:PutObject", "models/demo-classifier-evil/live.json"),
        ("s3:PutObject", "models/live.json"),
        ("s3:PutObject", "live.json"),
        ("s3:GetObject", "models/other-model/live.json"),
        ("s3:DeleteObject", "models/demo-classifier/live.json"),  # versions and manifests stay
        ("s3:DeleteObject", "models/demo-classifier/versions/3/model.skops"),
        ("s3:DeleteObjectVersion", "models/demo-classifier/live.json"),
        ("s3:PutObjectAcl", "models/demo-classifier/live.json"),
    ],
)
def test_redeploy_role_cannot_outside_its_model(redeploy: tuple[list[dict], str, str], action: str, key: str) -> None:
    statements, model_arn, _ = redeploy
    assert not allowed(statements, action, f"{model_arn}/{key}")


def test_redeploy_role_cannot_touch_the_batch_bucket_or_list_other_prefixes(
    redeploy: tuple[list[dict], str, str],
) -> None:
    statements, model_arn, batch_arn = redeploy
    for action in ("s3:GetObject", "s3:PutObject"):
        assert not allowed(statements, action, f"{batch_arn}/incoming/x.csv")
        assert not allowed(statements, action, f"{batch_arn}/results/x.csv")
    assert allowed(statements, "s3:ListBucket", model_arn, {"s3:prefix": "models/demo-classifier/deployments/"})
    assert not allowed(statements, "s3:ListBucket", model_arn, {"s3:prefix": "models/"})
    assert not allowed(statements, "s3:ListBucket", model_arn, {"s3:prefix": ""})
    for action in ("s3:PutBucketPolicy", "s3:DeleteBucket", "s3:PutBucketVersioning"):
        assert not allowed(statements, action, model_arn, {"s3:prefix": "models/demo-classifier/"})
    actions = {action for st in statements for action in as_list(st["Action"])}
    assert not any(action in ("s3:*", "*") or action.startswith("s3:Delete") for action in actions)


def test_redeploy_role_events_queue_and_logs(default_synth: Synth, redeploy: tuple[list[dict], str, str]) -> None:
    statements, _, _ = redeploy
    promotion = default_synth.stack.promotion
    bus_arn = f"<{default_synth.logical_id(promotion.bus)}.Arn>"
    queue_arn = f"<{default_synth.logical_id(promotion.dlq)}.Arn>"
    assert allowed(statements, "events:PutEvents", bus_arn)  # ModelDeployed / ModelDeploymentFailed
    assert not allowed(statements, "events:PutEvents", "arn:aws:events:us-east-1:123456789012:event-bus/default")
    assert allowed(statements, "sqs:SendMessage", queue_arn)  # on-failure destination
    assert not allowed(statements, "sqs:ReceiveMessage", queue_arn)
    log_group = f"<{default_synth.logical_id(promotion.redeploy_logs)}.Arn>"
    assert allowed(statements, "logs:PutLogEvents", log_group)
    api_logs = f"<{default_synth.logical_id(default_synth.stack.online_api.serving.log_group)}.Arn>"
    assert not allowed(statements, "logs:PutLogEvents", api_logs)
    assert not allowed(
        statements, "secretsmanager:GetSecretValue", f"<{default_synth.logical_id(promotion.webhook_secret)}>"
    )
    wildcard = [st for st in statements if "*" in [render(r) for r in as_list(st["Resource"])]]
    assert wildcard and all(a.startswith("xray:") for st in wildcard for a in as_list(st["Action"]))


def test_webhook_role_verifies_records_and_publishes_only(default_synth: Synth) -> None:
    stack = default_synth.stack
    promotion = stack.promotion
    statements = role_statements(default_synth, default_synth.logical_id(promotion.webhook_role))
    secret = f"<{default_synth.logical_id(promotion.webhook_secret)}>"
    table = f"<{default_synth.logical_id(promotion.deliveries)}.Arn>"
    bus_arn = f"<{default_synth.logical_id(promotion.bus)}.Arn>"
    assert allowed(statements, "secretsmanager:GetSecretValue", secret)
    assert allowed(statements, "dynamodb:PutItem", table)  # one-time delivery ids
    assert allowed(statements, "dynamodb:DeleteItem", table)
    assert not allowed(statements, "dynamodb:Scan", table)
    assert allowed(statements, "events:PutEvents", bus_arn)
    assert not allowed(statements, "secretsmanager:PutSecretValue", secret)
    model_arn = f"<{default_synth.logical_id(stack.model_store.bucket)}.Arn>"
    for action in ("s3:GetObject", "s3:PutObject"):
        assert not allowed(statements, action, f"{model_arn}/models/demo-classifier/live.json")
    assert not any(a.startswith("s3:") for st in statements for a in as_list(st["Action"]))
