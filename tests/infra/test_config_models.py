"""The typed settings package (infra/config/): cdk.json is the one source of defaults, every
setting there is read by a model, and constructs get narrow inputs."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_

from infra.config import DRIFT_KEYS, SERVING_KEYS, ConfigError, DriftConfig, ServingConfig, base
from infra.functions import FunctionFactory
from infra.model_store import ModelStore, ModelStoreProps
from infra.online_api import ApiRoutes
from infra.promotion import Promotion, PromotionProps
from tests.infra.conftest import CDK_JSON_CONTEXT

# Read by infra/delivery.py, infra/environments.py, infra/deploy_role.py, infra/pipeline.py.
DELIVERY_KEYS = {
    "deploy_env",
    "environments",
    "deploy_role",
    "github_repository",
    "github_branch",
    "github_environments",
    "github_oidc_provider_arn",
    "github_pull_request_diff",
    "pipeline_connection_arn",
    "pipeline_repository",
    "pipeline_stages",
}


def with_cdk_json(monkeypatch: pytest.MonkeyPatch, **changes: Any) -> None:
    """cdk.json's context as if its file said ``changes`` (None: the key is absent)."""
    context = {**CDK_JSON_CONTEXT, **changes}
    context = {key: value for key, value in context.items() if value is not None}
    monkeypatch.setattr(base, "cdk_json_context", lambda: context)


def test_a_default_changed_in_cdk_json_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """No second copy in code: what cdk.json says is what an unset key becomes."""
    functions = {**CDK_JSON_CONTEXT["functions"], "api": {**CDK_JSON_CONTEXT["functions"]["api"], "memory_mb": 1536}}
    with_cdk_json(monkeypatch, max_rows=123, drift_share=0.25, functions=functions, stream_shards=4)
    config = ServingConfig.from_mapping({"stream": True})
    assert config.max_rows == 123
    assert config.api_function.memory_mb == 1536
    assert config.stream is not None and config.stream.shards == 4
    assert DriftConfig.from_context(lambda key: None).drift_share == 0.25


def test_a_partial_functions_entry_is_completed_from_cdk_json(monkeypatch: pytest.MonkeyPatch) -> None:
    """``-c functions='{"api": {...}}'`` replaces the whole key: the other keys of that entry
    and the other functions come from cdk.json's entry, not from code."""
    batch = {**CDK_JSON_CONTEXT["functions"]["batch"], "memory_mb": 4096}
    functions = {**CDK_JSON_CONTEXT["functions"], "batch": batch}
    with_cdk_json(monkeypatch, functions=functions)
    config = ServingConfig.from_mapping({"functions": '{"api": {"memory_mb": 1024}}'})
    assert config.api_function.memory_mb == 1024
    assert config.api_function.timeout_seconds == CDK_JSON_CONTEXT["functions"]["api"]["timeout_seconds"]
    assert config.batch_function.memory_mb == 4096


def test_a_setting_without_a_default_in_cdk_json_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    with_cdk_json(monkeypatch, max_rows=None)
    with pytest.raises(ConfigError, match=r"context 'max_rows' has no default in cdk\.json; add it there"):
        ServingConfig.from_mapping({})
    # Given on the command line, the key needs no default.
    assert ServingConfig.from_mapping({"max_rows": "7"}).max_rows == 7


def test_every_setting_in_cdk_json_is_read_by_a_model_and_vice_versa() -> None:
    settings = {key for key in CDK_JSON_CONTEXT if not key.startswith("@")}
    read = set(SERVING_KEYS) | set(DRIFT_KEYS) | DELIVERY_KEYS
    assert settings - read == set(), "keys in cdk.json that no model reads"
    assert read - settings == set(), "keys a model reads without a default in cdk.json"
    assert not set(SERVING_KEYS) & set(DRIFT_KEYS)


def test_a_nested_settings_error_names_its_own_key() -> None:
    """StreamSettings is validated inside ServingConfig; its error still names the key."""
    with pytest.raises(ConfigError, match=r"^context 'stream_shards' must be between 1 and 500, got '0'$"):
        ServingConfig.from_mapping({"stream": "true", "stream_shards": "0"})
    # ... and only while streaming is on.
    assert ServingConfig.from_mapping({"stream": "false", "stream_shards": "0"}).stream is None


class RecordingRoutes:
    """A PublicRoutes that records what Promotion asks for, then adds it to a real RestApi."""

    def __init__(self, api: apigw.RestApi) -> None:
        self.routes = ApiRoutes(api)
        self.calls: list[tuple[str, str]] = []

    def add_public_route(self, path: str, http_method: str, handler: lambda_.IFunction) -> apigw.Method:
        self.calls.append((path, http_method))
        return self.routes.add_public_route(path, http_method, handler)


def test_promotion_extends_the_api_only_through_one_public_route() -> None:
    app = App(context={key: value for key, value in CDK_JSON_CONTEXT.items() if key.startswith("@")})
    stack = Stack(app, "PromotionRoutes")
    config = ServingConfig.from_mapping({})
    model_store = ModelStore(stack, "ModelStore", props=ModelStoreProps.from_config(config))
    functions = FunctionFactory(config=config, layers=[], store_uri=model_store.store_uri)
    api = apigw.RestApi(stack, "Api")
    api.root.add_method("GET", apigw.MockIntegration())
    routes = RecordingRoutes(api)
    promotion = Promotion(
        stack,
        "Promotion",
        props=PromotionProps.from_config(config),
        functions=functions,
        model_store=model_store,
        api=routes,
    )
    assert routes.calls == [("/registry/events", "POST")]
    assert promotion.webhook_method.http_method == "POST"
    assert promotion.webhook_method.resource.path == "/registry/events"
