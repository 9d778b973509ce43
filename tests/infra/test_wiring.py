"""The promotion construct and the web page's needs, wired into the real stack."""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.conftest import Synth, api_methods, render, synth

WEBHOOK = ("POST", "/registry/events")
PUBLIC_PAGE = {("GET", "/"), ("GET", "/ui"), ("GET", "/ui/static/{name}"), ("GET", "/ui/config")}


def props(result: Synth, construct: Any) -> dict[str, Any]:
    return result.resources[result.logical_id(construct)]["Properties"]


def env(result: Synth, function: Any) -> dict[str, Any]:
    return props(result, function)["Environment"]["Variables"]


# --- promotion -----------------------------------------------------------------------------


def test_promotion_functions_come_from_the_factory(default_synth: Synth) -> None:
    stack = default_synth.stack
    promotion = stack.promotion
    layers = [
        {"Ref": default_synth.logical_id(stack.deps_layer)},
        {"Ref": default_synth.logical_id(stack.common_layer)},
    ]
    api = props(default_synth, stack.online_api.function)
    for function, handler, memory, timeout in (
        (promotion.redeploy_function, "lambda_promote.redeploy.handler", 2048, 300),
        (promotion.webhook_function, "lambda_promote.webhook.handler", 256, 10),
    ):
        p = props(default_synth, function)
        assert p["Handler"] == handler
        assert (p["MemorySize"], p["Timeout"]) == (memory, timeout)
        # runtime, architecture, layers, logging and tracing: the same as every function
        for key in ("Runtime", "Architectures", "TracingConfig"):
            assert p[key] == api[key], key
        # the mlserve layer is shared; the deps layer is the function's own traced set
        assert layers[1] in p["Layers"] and len(p["Layers"]) == 2
        assert p["LoggingConfig"]["LogFormat"] == "JSON"
        assert render(p["LoggingConfig"]["LogGroup"]).startswith("<")
        variables = p["Environment"]["Variables"]
        assert variables["MLSERVE_MODEL_NAME"] == "demo-classifier"
        assert variables["MLSERVE_REGISTRY_ALIAS"] == "champion"
        assert variables["MLSERVE_EVENT_BUS"] == {"Ref": default_synth.logical_id(promotion.bus)}
        assert variables["POWERTOOLS_SERVICE_NAME"] == "mlserve-promotion"
        # empty mlflow_tracking_uri (the default): no registry URL in the environment
        assert "MLSERVE_MLFLOW_TRACKING_URI" not in variables


def test_redeploy_env_retries_and_dead_letter_queue(default_synth: Synth) -> None:
    promotion = default_synth.stack.promotion
    p = props(default_synth, promotion.redeploy_function)
    variables = p["Environment"]["Variables"]
    assert (
        render(variables["MLSERVE_STORE"])
        == f"s3://<{default_synth.logical_id(default_synth.stack.model_store.bucket)}>"
    )
    assert variables["MLSERVE_ALLOW_PICKLE"] == "false"
    assert "MLSERVE_SAGEMAKER_PACKAGE_GROUP" not in variables
    assert p["ReservedConcurrentExecutions"] == 1  # one redeploy at a time
    queue_id = default_synth.logical_id(promotion.dlq)
    [config] = [
        c["Properties"]
        for c in default_synth.of_type("AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": default_synth.logical_id(promotion.redeploy_function)}
    ]
    assert config["MaximumRetryAttempts"] == 2
    assert config["MaximumEventAgeInSeconds"] == 7200
    assert config["DestinationConfig"] == {"OnFailure": {"Destination": {"Fn::GetAtt": [queue_id, "Arn"]}}}


def test_promoted_rule_targets_the_redeploy_with_retries_and_dlq(default_synth: Synth) -> None:
    promotion = default_synth.stack.promotion
    rules = default_synth.of_type("AWS::Events::Rule")
    rule = rules[default_synth.logical_id(promotion.promoted_rule)]["Properties"]
    assert rule["EventBusName"] == {"Ref": default_synth.logical_id(promotion.bus)}
    assert rule["EventPattern"] == {
        "source": ["mlserve.registry"],
        "detail-type": ["ModelPromoted", "ModelPromotionForced"],
    }
    [target] = rule["Targets"]
    # the live alias: SnapStart applies to its published version, never to $LATEST
    assert target["Arn"] == {"Ref": default_synth.logical_id(promotion.redeploy.invoke_target)}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 4, "MaximumEventAgeInSeconds": 7200}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [default_synth.logical_id(promotion.dlq), "Arn"]}}
    assert promotion.sagemaker_rule is None
    # the queue lets EventBridge deliver failed events from this rule only
    [policy] = [
        p["Properties"]
        for p in default_synth.of_type("AWS::SQS::QueuePolicy").values()
        if {"Ref": default_synth.logical_id(promotion.dlq)} in p["Properties"]["Queues"]
    ]
    statements = policy["PolicyDocument"]["Statement"]
    events = [s for s in statements if s.get("Principal") == {"Service": "events.amazonaws.com"}]
    assert events and all(
        s["Condition"]["ArnEquals"]["aws:SourceArn"]
        == {"Fn::GetAtt": [default_synth.logical_id(promotion.promoted_rule), "Arn"]}
        for s in events
    )


def test_registry_settings_from_context() -> None:
    result = synth(
        mlflow_tracking_uri="https://mlflow.example.com",
        sagemaker_model_package_group="mlserve-demo-group",
        functions={"promote": {"memory_mb": 3008}},
    )
    promotion = result.stack.promotion
    redeploy = env(result, promotion.redeploy_function)
    assert redeploy["MLSERVE_MLFLOW_TRACKING_URI"] == "https://mlflow.example.com"
    assert redeploy["MLSERVE_SAGEMAKER_PACKAGE_GROUP"] == "mlserve-demo-group"
    assert env(result, promotion.webhook_function)["MLSERVE_MLFLOW_TRACKING_URI"] == "https://mlflow.example.com"
    assert props(result, promotion.redeploy_function)["MemorySize"] == 3008
    assert promotion.sagemaker_rule is not None
    rule = props(result, promotion.sagemaker_rule)
    assert "EventBusName" not in rule  # SageMaker publishes on the default bus
    assert rule["EventPattern"]["detail"] == {
        "ModelPackageGroupName": ["mlserve-demo-group"],
        "ModelApprovalStatus": ["Approved"],
    }


def test_webhook_route_function_secret_and_ledger(default_synth: Synth) -> None:
    promotion = default_synth.stack.promotion
    method = api_methods(default_synth)[WEBHOOK]
    assert method["AuthorizationType"] == "NONE" and method["ApiKeyRequired"] is False
    assert method["Integration"]["Type"] == "AWS_PROXY"
    webhook_id = default_synth.logical_id(promotion.webhook_function)
    assert f"<{webhook_id}.Arn>" in render(method["Integration"]["Uri"])
    variables = env(default_synth, promotion.webhook_function)
    assert variables["MLSERVE_WEBHOOK_SECRET_ID"] == {"Ref": default_synth.logical_id(promotion.webhook_secret)}
    assert variables["MLSERVE_WEBHOOK_DELIVERIES_TABLE"] == {"Ref": default_synth.logical_id(promotion.deliveries)}
    assert "ReservedConcurrentExecutions" not in props(default_synth, promotion.webhook_function)
    table = props(default_synth, promotion.deliveries)
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    secret = props(default_synth, promotion.webhook_secret)
    assert secret["GenerateSecretString"]["PasswordLength"] == 48


def test_promotion_outputs(default_synth: Synth) -> None:
    promotion = default_synth.stack.promotion
    outputs = default_synth.template.to_json()["Outputs"]
    assert outputs["EventBusName"]["Value"] == {"Ref": default_synth.logical_id(promotion.bus)}
    assert outputs["WebhookSecretArn"]["Value"] == {"Ref": default_synth.logical_id(promotion.webhook_secret)}
    url = render(outputs["WebhookUrl"]["Value"])
    rest_api = default_synth.logical_id(default_synth.stack.online_api.api)
    assert url.startswith(f"https://<{rest_api}>.execute-api.") and url.endswith("/registry/events")
    stage = default_synth.logical_id(default_synth.stack.online_api.api.deployment_stage)
    assert f"/<{stage}>/registry/events" in url


def test_prod_retains_promotion_state(prod_synth: Synth) -> None:
    promotion = prod_synth.stack.promotion
    for construct in (promotion.dlq, promotion.redeploy_logs, promotion.webhook_logs, promotion.webhook_secret):
        assert prod_synth.resources[prod_synth.logical_id(construct)]["DeletionPolicy"] == "Retain"


# --- the web page --------------------------------------------------------------------------


def test_api_function_env_for_the_page(default_synth: Synth) -> None:
    variables = env(default_synth, default_synth.stack.online_api.function)
    assert variables["MLSERVE_BATCH_BUCKET"] == {"Ref": default_synth.logical_id(default_synth.stack.batch.bucket)}
    assert variables["MLSERVE_AUTH"] == "api_key"
    assert variables["MLSERVE_UPLOAD_MAX_BYTES"] == str(50 * 1024 * 1024)
    # the page's results prefix is the batch function's
    assert (
        variables["MLSERVE_RESULTS_PREFIX"]
        == env(default_synth, default_synth.stack.batch.function)["MLSERVE_RESULTS_PREFIX"]
    )


@pytest.mark.parametrize("auth", ["iam", "none"])
def test_page_auth_mode_and_upload_limit_follow_context(auth: str) -> None:
    result = synth(auth=auth, upload_max_bytes=1024)
    variables = env(result, result.stack.online_api.function)
    assert variables["MLSERVE_AUTH"] == auth
    assert variables["MLSERVE_UPLOAD_MAX_BYTES"] == "1024"


def test_batch_bucket_cors_for_browser_uploads(default_synth: Synth) -> None:
    bucket = props(default_synth, default_synth.stack.batch.bucket)
    [rule] = bucket["CorsConfiguration"]["CorsRules"]
    # Issue 11: POST only (downloads navigate to a presigned GET, which needs no CORS).
    assert sorted(rule["AllowedMethods"]) == ["POST"]
    assert rule["AllowedOrigins"] == ["*"]
    assert rule["AllowedHeaders"] == ["*"]
    assert "PUT" not in rule["AllowedMethods"] and "DELETE" not in rule["AllowedMethods"]


def test_cors_origins_follow_context() -> None:
    result = synth(upload_cors_origins=["https://ml.example.com", "http://localhost:8000"])
    [rule] = props(result, result.stack.batch.bucket)["CorsConfiguration"]["CorsRules"]
    assert rule["AllowedOrigins"] == ["https://ml.example.com", "http://localhost:8000"]


def test_page_shell_is_key_free_and_everything_else_keyed(default_synth: Synth) -> None:
    methods = api_methods(default_synth)
    for key in PUBLIC_PAGE:
        assert methods[key]["ApiKeyRequired"] is False, key
        assert methods[key]["AuthorizationType"] == "NONE", key
    keyed = set(methods) - PUBLIC_PAGE - {WEBHOOK}
    # the model's input example, anything else under /ui and the catch-all proxy (which
    # serves /predict, /invocations, /model, /batch/uploads, /batch/jobs/{id}, ...)
    assert {("GET", "/ui/example"), ("ANY", "/ui/{proxy+}"), ("ANY", "/"), ("ANY", "/{proxy+}")} <= keyed
    for key in keyed:
        assert methods[key]["ApiKeyRequired"] is True, key
    # no explicit /batch resource: batch routes reach the app through the keyed {proxy+}
    assert not [k for k in methods if k[1].startswith("/batch")]


# --- monitoring ----------------------------------------------------------------------------


def test_alarms_watch_every_function_the_api_and_the_batch_dlq(default_synth: Synth) -> None:
    stack = default_synth.stack
    monitoring = stack.monitoring
    alarms = default_synth.of_type("AWS::CloudWatch::Alarm")
    by_key = {key: alarms[default_synth.logical_id(alarm)]["Properties"] for key, alarm in monitoring.alarms.items()}
    functions = {
        "Api": stack.online_api.function,
        "Batch": stack.batch.function,
        "Redeploy": stack.promotion.redeploy_function,
        "Webhook": stack.promotion.webhook_function,
        "Fanoutplan": stack.fanout.plan.function,
        "Fanoutrange": stack.fanout.range.function,
        "Fanoutmerge": stack.fanout.merge.function,
        "Fanoutfail": stack.fanout.fail.function,
    }
    if stack.drift is not None:
        functions["Drift"] = stack.drift.function
    # every mlserve function (CDK's own deploy-time helpers aside) has an errors and a throttles alarm
    python_functions = {
        logical_id
        for logical_id, function in default_synth.of_type("AWS::Lambda::Function").items()
        if str(function["Properties"].get("Handler", "")).startswith("lambda_")
    }
    assert python_functions == {default_synth.logical_id(f) for f in functions.values()}
    for label, function in functions.items():
        for metric in ("Errors", "Throttles"):
            alarm = by_key[f"{label}{metric}"]
            assert alarm["MetricName"] == metric and alarm["Namespace"] == "AWS/Lambda"
            assert alarm["Dimensions"] == [
                {"Name": "FunctionName", "Value": {"Ref": default_synth.logical_id(function)}}
            ]
    api_name = {"Name": "ApiName", "Value": f"mlserve-{stack.config.model_name}"}
    assert by_key["Api5xxRate"]["MetricName"] == "5XXError" and api_name in by_key["Api5xxRate"]["Dimensions"]
    assert by_key["ApiLatencyP99"]["ExtendedStatistic"] == "p99"
    dlq = by_key["BatchDlqNotEmpty"]
    assert dlq["Dimensions"] == [
        {
            "Name": "QueueName",
            "Value": {"Fn::GetAtt": [default_synth.logical_id(stack.batch.dead_letter_queue), "QueueName"]},
        }
    ]
    topic = {"Ref": default_synth.logical_id(monitoring.topic)}
    for alarm in by_key.values():
        assert alarm["AlarmActions"] == [topic] and alarm["OKActions"] == [topic]


def test_deployment_failures_from_the_promotion_bus_reach_the_topic(default_synth: Synth) -> None:
    monitoring = default_synth.stack.monitoring
    assert monitoring.deployment_failed_rule is not None
    rule = props(default_synth, monitoring.deployment_failed_rule)
    assert rule["EventBusName"] == {"Ref": default_synth.logical_id(default_synth.stack.promotion.bus)}
    assert rule["EventPattern"] == {"source": ["mlserve.registry"], "detail-type": ["ModelDeploymentFailed"]}
    [target] = rule["Targets"]
    assert target["Arn"] == {"Ref": default_synth.logical_id(monitoring.topic)}
    assert "DeploymentFailed" in monitoring.alarms
    assert default_synth.of_type("AWS::CloudWatch::Dashboard")


def test_alarm_topic_has_no_subscription_by_default(default_synth: Synth) -> None:
    assert not default_synth.of_type("AWS::SNS::Subscription")
    outputs = default_synth.template.to_json()["Outputs"]
    assert outputs["AlarmTopicArn"]["Value"] == {"Ref": default_synth.logical_id(default_synth.stack.monitoring.topic)}
    assert "DashboardName" in outputs


def test_alarm_email_subscribes_to_the_topic() -> None:
    result = synth(alarm_email="ops@example.com")
    [subscription] = [s["Properties"] for s in result.of_type("AWS::SNS::Subscription").values()]
    assert subscription["Protocol"] == "email" and subscription["Endpoint"] == "ops@example.com"
    assert subscription["TopicArn"] == {"Ref": result.logical_id(result.stack.monitoring.topic)}


def test_prod_retains_the_alarm_key_and_dead_letters(prod_synth: Synth) -> None:
    monitoring = prod_synth.stack.monitoring
    for construct in (monitoring.key, monitoring.dead_letters):
        assert prod_synth.resources[prod_synth.logical_id(construct)]["DeletionPolicy"] == "Retain"
