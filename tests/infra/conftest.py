"""Helpers for CDK infra tests: synthesize the real stack with cdk.json's context.

Bundling is skipped (``aws:cdk:bundling-stacks: []``) so a synth takes seconds; the one
test that really builds the layers lives in test_layer_size.py.
"""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

from aws_cdk import App
from aws_cdk.assertions import Template

from infra.application import build_stack
from infra.stack import MlserveStack

REPO_ROOT = Path(__file__).resolve().parents[2]
CDK_JSON_CONTEXT: dict[str, Any] = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]


@dataclass
class Synth:
    app: App
    stack: MlserveStack
    template: Template

    @property
    def resources(self) -> dict[str, Any]:
        return self.template.to_json()["Resources"]

    def of_type(self, resource_type: str) -> dict[str, Any]:
        return {k: v for k, v in self.resources.items() if v["Type"] == resource_type}

    def logical_id(self, construct: Any) -> str:
        return str(self.stack.resolve(self.stack.get_logical_id(construct.node.default_child)))


def synth(*, bundle: bool = False, outdir: str | None = None, **context: Any) -> Synth:
    """The stack exactly as `cdk synth` builds it, with context overrides like `-c`."""
    full_context: dict[str, Any] = {**CDK_JSON_CONTEXT, **context}
    if not bundle:
        full_context["aws:cdk:bundling-stacks"] = []
    full_context.setdefault("aws:cdk:enable-asset-metadata", True)
    app = App(context=full_context, outdir=outdir)
    stack = build_stack(app)
    return Synth(app=app, stack=stack, template=Template.from_stack(stack))


@pytest.fixture(scope="session")
def default_synth() -> Synth:
    return synth()


@pytest.fixture(scope="session")
def iam_synth() -> Synth:
    return synth(auth="iam")


@pytest.fixture(scope="session")
def prod_synth() -> Synth:
    return synth(environment="prod", log_retention_days=365, upload_cors_origins=["https://app.example.com"])


def api_methods(result: Synth) -> dict[tuple[str, str], dict[str, Any]]:
    """(HTTP method, resource path) -> the method's properties, e.g. ("GET", "/ui/config")."""
    resources = result.of_type("AWS::ApiGateway::Resource")

    def path(resource_ref: Any) -> str:
        if isinstance(resource_ref, dict) and "Fn::GetAtt" in resource_ref:
            return ""  # the RestApi's root resource
        props = resources[resource_ref["Ref"]]["Properties"]
        return f"{path(props['ParentId'])}/{props['PathPart']}"

    return {
        (props["HttpMethod"], path(props["ResourceId"]) or "/"): props
        for props in (method["Properties"] for method in result.of_type("AWS::ApiGateway::Method").values())
    }


# --- a tiny IAM evaluator over synthesized statements (Allow only; no Deny is emitted) ---


def render(value: Any) -> str:
    """CloudFormation intrinsic -> readable string: GetAtt X.Arn -> <X.Arn>, Ref X -> <X>."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return separator.join(render(part) for part in parts)
        if "Fn::GetAtt" in value:
            return "<{}.{}>".format(*value["Fn::GetAtt"])
        if "Ref" in value:
            return f"<{value['Ref']}>"
    raise AssertionError(f"cannot render {value!r}")


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_statements(synth_result: Synth, role_logical_id: str) -> list[dict[str, Any]]:
    """Every statement of every inline/managed policy CloudFormation attaches to the role."""
    statements: list[dict[str, Any]] = []
    for resource in synth_result.of_type("AWS::IAM::Policy").values():
        roles = [render(role) for role in resource["Properties"].get("Roles", [])]
        if f"<{role_logical_id}>" in roles:
            statements += resource["Properties"]["PolicyDocument"]["Statement"]
    role = synth_result.resources[role_logical_id]["Properties"]
    for policy in role.get("Policies", []):
        statements += policy["PolicyDocument"]["Statement"]
    return statements


def allowed(
    statements: list[dict[str, Any]], action: str, resource: str, context: dict[str, str] | None = None
) -> bool:
    context = context or {}
    for statement in statements:
        if statement["Effect"] != "Allow":
            continue
        if not any(fnmatch.fnmatchcase(action, pattern) for pattern in as_list(statement["Action"])):
            continue
        if not any(fnmatch.fnmatchcase(resource, render(pattern)) for pattern in as_list(statement["Resource"])):
            continue
        if _conditions_hold(statement.get("Condition", {}), context):
            return True
    return False


def _conditions_hold(conditions: dict[str, dict[str, Any]], context: dict[str, str]) -> bool:
    for operator, checks in conditions.items():
        for key, expected in checks.items():
            if key not in context:
                return False
            patterns = [render(value) for value in as_list(expected)]
            if operator == "StringLike":
                if not any(fnmatch.fnmatchcase(context[key], pattern) for pattern in patterns):
                    return False
            elif operator == "StringEquals":
                if context[key] not in patterns:
                    return False
            else:
                raise AssertionError(f"evaluator does not know condition operator {operator}")
    return True


@pytest.fixture
def tmp_outdir(tmp_path: Path) -> Iterator[str]:
    yield str(tmp_path / "cdk.out")
