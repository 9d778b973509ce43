"""ServingConfig: defaults from cdk.json, -c overrides (strings), and clear errors."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from infra.config import DEFAULTS, ConfigError, FunctionSettings, ServingConfig
from tests.infra.conftest import CDK_JSON_CONTEXT


def config(**overrides: Any) -> ServingConfig:
    return ServingConfig.from_mapping({**CDK_JSON_CONTEXT, **overrides})


def test_cdk_json_and_builtin_defaults_agree() -> None:
    assert config() == ServingConfig.from_mapping({})
    for key in DEFAULTS:
        assert CDK_JSON_CONTEXT[key] == DEFAULTS[key], key


def test_defaults() -> None:
    cfg = config()
    assert cfg.model_name == "demo-classifier"
    assert cfg.registry_alias == "champion"
    assert cfg.architecture == "arm64"
    assert cfg.python_runtime == "python3.14"
    assert cfg.python_version == "3.14"
    assert cfg.auth == "api_key"
    assert cfg.environment == "dev" and not cfg.is_prod
    assert cfg.refresh_seconds == 15
    assert cfg.allow_pickle is False
    assert cfg.max_rows == 10000
    assert cfg.log_retention_days == 30
    assert cfg.api_function == FunctionSettings(memory_mb=2048, timeout_seconds=29)


def test_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        config().model_name = "other"  # type: ignore[misc]


def test_cli_overrides_arrive_as_strings() -> None:
    cfg = config(
        allow_pickle="true",
        refresh_seconds="30",
        architecture="x86_64",
        environment="prod",
        auth="iam",
        upload_cors_origins="https://app.example.com",
        throttle_rate_limit="12.5",
        functions='{"api": {"memory_mb": 1024}}',
    )
    assert cfg.allow_pickle is True
    assert cfg.refresh_seconds == 30
    assert cfg.architecture == "x86_64"
    assert cfg.is_prod
    assert cfg.auth == "iam"
    assert cfg.throttle_rate_limit == 12.5
    # A partial override keeps the other defaults of that function.
    assert cfg.api_function == FunctionSettings(memory_mb=1024, timeout_seconds=29)
    assert cfg.batch_function == FunctionSettings(memory_mb=3008, timeout_seconds=900)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"architecture": "foo"}, "context 'architecture' must be arm64 or x86_64, got 'foo'"),
        ({"auth": "cognito"}, "context 'auth' must be api_key, iam or none, got 'cognito'"),
        ({"environment": "staging"}, "context 'environment' must be dev or prod, got 'staging'"),
        ({"python_runtime": "python3.9"}, "context 'python_runtime' must look like python3.N"),
        ({"python_runtime": "nodejs22.x"}, "context 'python_runtime' must look like python3.N"),
        ({"model_name": "../etc"}, "context 'model_name' must start with a letter or digit"),
        ({"model_name": ""}, "context 'model_name' must be a non-empty string"),
        ({"registry_alias": " "}, "context 'registry_alias' must be a non-empty string"),
        ({"allow_pickle": "maybe"}, "context 'allow_pickle' must be true or false, got 'maybe'"),
        ({"refresh_seconds": "soon"}, "context 'refresh_seconds' must be an integer, got 'soon'"),
        ({"refresh_seconds": -1}, "context 'refresh_seconds' must be between 0 and 3600, got -1"),
        ({"max_rows": 0}, "context 'max_rows' must be between 1 and 10000000, got 0"),
        ({"max_body_bytes": 7 * 1024 * 1024}, "context 'max_body_bytes' must be between 1 and 6291456"),
        ({"throttle_rate_limit": "fast"}, "context 'throttle_rate_limit' must be a number, got 'fast'"),
        ({"throttle_burst_limit": True}, "context 'throttle_burst_limit' must be an integer, got True"),
        ({"quota_requests_per_day": 0}, "context 'quota_requests_per_day' must be between 1"),
        ({"log_retention_days": 31}, "context 'log_retention_days' must be one of [1, 3, 5, 7, 14, 30,"),
        ({"functions": {"api": {"memory_mb": 64}}}, "context 'functions.api.memory_mb' must be between 128"),
        ({"functions": {"batch": {"timeout_seconds": 901}}}, "'functions.batch.timeout_seconds' must be between 1"),
        ({"functions": {"api": {"timeout_seconds": 60}}}, "'functions.api.timeout_seconds' must be <= 29"),
        ({"functions": {"api": {"memroy_mb": 512}}}, "'functions.api' has unknown key(s) ['memroy_mb']"),
        ({"functions": {"train": {}}}, "context 'functions' has unknown function(s) ['train']"),
        ({"functions": "{not json"}, "context 'functions' is not valid JSON"),
        ({"functions": 5}, "context 'functions' must be an object, got 5"),
        ({"auth": "none", "environment": "prod"}, "context 'auth' none leaves the API open"),
    ],
)
def test_invalid_context_names_the_key(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        config(**overrides)
    assert message in str(error.value)


def test_auth_none_is_allowed_in_dev() -> None:
    assert config(auth="none").auth == "none"


def test_batch_defaults() -> None:
    cfg = config()
    assert cfg.batch_reserved_concurrency == 2
    assert cfg.batch_retry_attempts == 2
    assert cfg.batch_probabilities is False
    assert cfg.batch_function == FunctionSettings(memory_mb=3008, timeout_seconds=900)


def test_batch_overrides_from_the_command_line() -> None:
    cfg = config(batch_reserved_concurrency="10", batch_retry_attempts="0", batch_probabilities="true")
    assert cfg.batch_reserved_concurrency == 10
    assert cfg.batch_retry_attempts == 0
    assert cfg.batch_probabilities is True
    assert config(batch_reserved_concurrency="none").batch_reserved_concurrency is None
    assert config(batch_reserved_concurrency="None").batch_reserved_concurrency is None


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("batch_reserved_concurrency", 0, "batch_reserved_concurrency"),
        ("batch_reserved_concurrency", -1, "batch_reserved_concurrency"),
        ("batch_reserved_concurrency", 1001, "batch_reserved_concurrency"),
        ("batch_reserved_concurrency", True, "integer or none"),
        ("batch_reserved_concurrency", "lots", "batch_reserved_concurrency"),
        ("batch_retry_attempts", 3, "batch_retry_attempts"),
        ("batch_retry_attempts", -1, "batch_retry_attempts"),
        ("batch_probabilities", "yes", "batch_probabilities"),
        ("batch_probabilities", 1, "batch_probabilities"),
    ],
)
def test_batch_settings_are_validated(key: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config(**{key: value})


def test_promotion_page_and_monitoring_defaults() -> None:
    cfg = config()
    assert cfg.mlflow_tracking_uri is None  # "" in cdk.json: no registry (see docs/deploy.md)
    assert cfg.sagemaker_model_package_group is None
    assert cfg.upload_max_bytes == 50 * 1024 * 1024
    assert cfg.upload_cors_origins == ("*",)
    assert cfg.alarm_email is None
    assert cfg.promote_function == FunctionSettings(memory_mb=2048, timeout_seconds=300)
    assert cfg.webhook_function == FunctionSettings(memory_mb=256, timeout_seconds=10)


def test_promotion_page_and_monitoring_overrides_from_the_command_line() -> None:
    cfg = config(
        mlflow_tracking_uri=" https://mlflow.example.com/ ",
        sagemaker_model_package_group="mlserve-demo-group",
        upload_max_bytes="1048576",
        upload_cors_origins="https://ml.example.com,http://localhost:8000/",
        alarm_email="ops@example.com",
    )
    assert cfg.mlflow_tracking_uri == "https://mlflow.example.com/"
    assert cfg.sagemaker_model_package_group == "mlserve-demo-group"
    assert cfg.upload_max_bytes == 1048576
    assert cfg.upload_cors_origins == ("https://ml.example.com", "http://localhost:8000")
    assert cfg.alarm_email == "ops@example.com"
    assert config(upload_cors_origins='["https://a.example"]').upload_cors_origins == ("https://a.example",)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("mlflow_tracking_uri", "mlflow.example.com", "'mlflow_tracking_uri' must be an http"),
        ("mlflow_tracking_uri", 5, "'mlflow_tracking_uri' must be a string"),
        ("sagemaker_model_package_group", "bad group!", "'sagemaker_model_package_group'"),
        ("upload_max_bytes", 0, "'upload_max_bytes' must be between"),
        ("upload_cors_origins", [], "'upload_cors_origins' must be a non-empty list"),
        ("upload_cors_origins", ["https://a.example/path"], "is not '\\*' or an origin"),
        ("upload_cors_origins", ["*", "https://a.example"], "list it alone"),
        ("upload_cors_origins", "[oops", "not valid JSON"),
        ("alarm_email", "not-an-address", "'alarm_email' must be an e-mail"),
        ("functions", {"webhook": {"timeout_seconds": 30}}, "'functions.webhook.timeout_seconds' must be <= 29"),
    ],
)
def test_promotion_page_and_monitoring_settings_are_validated(key: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config(**{key: value})


def test_layer_python_version_defaults_to_the_runtime_and_can_be_overridden_for_emulators() -> None:
    assert ServingConfig.from_mapping({}).layer_python_version == "3.14"
    config = ServingConfig.from_mapping({"layer_python_version": "3.11"})
    assert config.layer_python_version == "3.11" and config.python_runtime == "python3.14"
    with pytest.raises(ConfigError, match="layer_python_version"):
        ServingConfig.from_mapping({"layer_python_version": "python3.11"})


def test_bundle_deps_is_layer_by_default_or_function_and_names_the_choices() -> None:
    assert ServingConfig.from_mapping({}).bundle_deps == "layer"
    assert ServingConfig.from_mapping({"bundle_deps": "function"}).bundle_deps == "function"
    for wrong in ("functions", "Layer", "", True):
        with pytest.raises(ConfigError, match=r"context 'bundle_deps' must be layer .* or function"):
            ServingConfig.from_mapping({"bundle_deps": wrong})
