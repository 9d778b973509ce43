"""High 2 (infra): who may put events on the promotion bus, and who may force. The bus had
no resource policy: any principal of the account with events:PutEvents could deploy. The
synthesized policy is evaluated here for concrete callers (moto does not enforce
EventBridge resource policies, so the evaluation is done on the template itself)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.conftest import Synth, render, synth

PROMOTER = "arn:aws:iam::123456789012:role/release-manager"
FORCER = "arn:aws:iam::123456789012:role/ml-lead"
STRANGER = "arn:aws:iam::123456789012:role/some-app"


@pytest.fixture(scope="module")
def trusted() -> Synth:
    return synth(promoters=[PROMOTER], force_promoters=[FORCER], artifact_locations=["s3://ml-artifacts/models/"])


def bus_policy(result: Synth) -> dict[str, Any]:
    [bus] = result.of_type("AWS::Events::EventBus").values()
    return dict(bus["Properties"]["Policy"])


def principal_arns(result: Synth) -> dict[str, str]:
    """Readable role ARNs: <LogicalId.Arn> for the stack's roles."""
    return {
        "webhook": f"<{result.logical_id(result.stack.promotion.webhook_role)}.Arn>",
        "redeploy": f"<{result.logical_id(result.stack.promotion.redeploy_role)}.Arn>",
    }


def denied(policy: dict[str, Any], principal: str, detail_type: str) -> bool:
    """Evaluate the policy's Deny statements (ArnNotEquals / StringEquals only, as emitted)."""
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Deny" and statement["Action"] == "events:PutEvents"
        matches = True
        for operator, conditions in statement["Condition"].items():
            for key, expected in conditions.items():
                values = [render(v) for v in (expected if isinstance(expected, list) else [expected])]
                actual = principal if key == "aws:PrincipalArn" else detail_type
                if operator == "ArnNotEquals":
                    matches &= actual not in values
                elif operator == "StringEquals":
                    matches &= actual in values
                else:
                    raise AssertionError(f"unexpected operator {operator}")
        if matches:
            return True
    return False


def test_only_webhook_redeploy_and_promoters_may_put_events(trusted: Synth) -> None:
    policy = bus_policy(trusted)
    roles = principal_arns(trusted)
    for principal in (roles["webhook"], roles["redeploy"], PROMOTER, FORCER):
        assert not denied(policy, principal, "ModelPromoted"), principal
    assert denied(policy, STRANGER, "ModelPromoted")
    assert denied(policy, STRANGER, "ModelDeployed")


def test_only_force_promoters_may_put_a_forced_promotion(trusted: Synth) -> None:
    policy = bus_policy(trusted)
    roles = principal_arns(trusted)
    assert not denied(policy, FORCER, "ModelPromotionForced")
    for principal in (roles["webhook"], roles["redeploy"], PROMOTER, STRANGER):
        assert denied(policy, principal, "ModelPromotionForced"), principal


def test_without_force_promoters_nobody_forces(default_synth: Synth) -> None:
    policy = bus_policy(default_synth)
    roles = principal_arns(default_synth)
    for principal in (roles["webhook"], roles["redeploy"]):
        assert not denied(policy, principal, "ModelPromoted")
        assert denied(policy, principal, "ModelPromotionForced")


def test_policy_names_the_bus_itself(trusted: Synth) -> None:
    [statement, *_] = bus_policy(trusted)["Statement"]
    assert render(statement["Resource"]).endswith(":event-bus/Mlserve-promotion")


def test_redeploy_gets_the_artifact_allow_list(trusted: Synth) -> None:
    fn = trusted.resources[trusted.logical_id(trusted.stack.promotion.redeploy_function)]
    locations = render(fn["Properties"]["Environment"]["Variables"]["MLSERVE_ARTIFACT_LOCATIONS"]).split(",")
    assert locations[-1] == "s3://ml-artifacts/models/"
    assert locations[0].startswith("s3://<") and len(locations) == 2  # the model bucket


def test_promoters_must_be_role_arns() -> None:
    from infra.config import ConfigError, ServingConfig

    with pytest.raises(ConfigError, match="'promoters'"):
        ServingConfig.from_mapping({"promoters": ["*"]})
    with pytest.raises(ConfigError, match="'force_promoters'"):
        ServingConfig.from_mapping({"force_promoters": "arn:aws:iam::1:role/x"})
    with pytest.raises(ConfigError, match="'artifact_locations'"):
        ServingConfig.from_mapping({"artifact_locations": ["http://x/"]})


def test_sagemaker_reads_are_scoped_to_the_package_group() -> None:
    from tests.infra.conftest import role_statements

    result = synth(sagemaker_model_package_group="demo-group")
    statements = role_statements(result, result.logical_id(result.stack.promotion.redeploy_role))
    [read] = [s for s in statements if "sagemaker:DescribeModelPackage" in s["Action"]]
    resources = [render(r) for r in read["Resource"]]
    assert all("demo-group" in r for r in resources)
