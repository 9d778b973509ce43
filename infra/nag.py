"""cdk-nag wiring and acknowledgements.

Every acknowledgement is attached to the construct that owns the finding (never to the
stack or the app) and says why the rule does not apply there.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, Stack, Validations
from cdk_nag import AwsSolutionsChecks, NagPack, ServerlessChecks
from constructs import IConstruct


def nag_packs(scope: IConstruct) -> list[NagPack]:
    return [AwsSolutionsChecks(scope), ServerlessChecks(scope)]


def register_nag(app: IConstruct) -> None:
    """cdk-nag 3.x runs as a policy-validation plugin: any finding fails `cdk synth`."""
    Validations.of(app).add_plugins(*nag_packs(app))


def acknowledge(construct: IConstruct, pack: str, rule: str, reason: str) -> None:
    """``pack`` is the rule pack's name (``AwsSolutions``, ``Serverless``) and ``rule`` the
    finding id as cdk-nag prints it (e.g. ``AwsSolutions-IAM5[Resource::*]``)."""
    Validations.of(construct).acknowledge(Acknowledgment(id=f"{pack}::{rule}", reason=reason))


def logical_id_ref(construct: IConstruct) -> str:
    """How cdk-nag spells a resource in a finding: ``<LogicalId>``-style token names."""
    stack = Stack.of(construct)
    default_child = construct.node.default_child
    if default_child is None:
        raise ValueError(f"{construct.node.path} has no CloudFormation resource")
    return str(stack.resolve(stack.get_logical_id(default_child)))  # type: ignore[arg-type]
