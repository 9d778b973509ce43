"""Medium 6 (infra): the public webhook gets its own throttle so a flood of forged
deliveries cannot use up the stage's limit; an optional WAF (context waf, on in prod) puts
a per-IP rate rule in front of the API."""

from __future__ import annotations

import pytest

from infra.config import ConfigError, ServingConfig
from tests.infra.conftest import Synth, render, synth
from tests.infra.test_stack import only


def method_settings(result: Synth) -> dict[str, dict[str, object]]:
    _, stage = only(result.of_type("AWS::ApiGateway::Stage"))
    return {f"{s['ResourcePath']} {s['HttpMethod']}": s for s in stage["Properties"]["MethodSettings"]}


def test_webhook_route_has_its_own_smaller_throttle(default_synth: Synth) -> None:
    settings = method_settings(default_synth)
    webhook = settings["/~1registry~1events POST"]
    assert (webhook["ThrottlingRateLimit"], webhook["ThrottlingBurstLimit"]) == (5, 10)
    assert settings["/* *"]["ThrottlingRateLimit"] == 50  # the scoring clients' bucket is separate


def test_webhook_throttle_is_configurable() -> None:
    result = synth(webhook_throttle_rate_limit=2, webhook_throttle_burst_limit=3)
    webhook = method_settings(result)["/~1registry~1events POST"]
    assert (webhook["ThrottlingRateLimit"], webhook["ThrottlingBurstLimit"]) == (2, 3)


def test_no_waf_in_dev_by_default(default_synth: Synth) -> None:
    assert default_synth.of_type("AWS::WAFv2::WebACL") == {}


def test_waf_with_a_rate_rule_is_on_in_prod(prod_synth: Synth) -> None:
    _, acl = only(prod_synth.of_type("AWS::WAFv2::WebACL"))
    [rate] = [r for r in acl["Properties"]["Rules"] if "RateBasedStatement" in r["Statement"]]
    assert rate["Statement"]["RateBasedStatement"] == {
        "AggregateKeyType": "IP",
        "EvaluationWindowSec": 300,
        "Limit": 1000,
    }
    assert rate["Action"] == {"Block": {}}
    _, association = only(prod_synth.of_type("AWS::WAFv2::WebACLAssociation"))
    assert "/stages/<OnlineApiRestApiDeploymentStagev1" in render(association["Properties"]["ResourceArn"])


# prod must name its upload origins (issue 11, batch edge); these tests are about other keys.
PROD = {"environment": "prod", "upload_cors_origins": ["https://ml.example.com"]}


def test_waf_switch_and_rate() -> None:
    assert ServingConfig.from_mapping({"waf": True, "waf_rate_limit": 300}).waf_enabled
    assert not ServingConfig.from_mapping({**PROD, "waf": False}).waf_enabled
    with pytest.raises(ConfigError, match="'waf'"):
        ServingConfig.from_mapping({"waf": "sometimes"})
    with pytest.raises(ConfigError, match="'waf_rate_limit'"):
        ServingConfig.from_mapping({"waf_rate_limit": 5})


def test_http_registry_is_refused_in_prod_unless_allowed() -> None:
    with pytest.raises(ConfigError, match="allow_insecure_registry"):
        ServingConfig.from_mapping({**PROD, "mlflow_tracking_uri": "http://mlflow:5000"})
    allowed = ServingConfig.from_mapping(
        {**PROD, "mlflow_tracking_uri": "http://mlflow:5000", "allow_insecure_registry": True}
    )
    assert allowed.mlflow_tracking_uri == "http://mlflow:5000"
    assert ServingConfig.from_mapping({"mlflow_tracking_uri": "http://mlflow:5000"}).mlflow_tracking_uri  # dev: ok
