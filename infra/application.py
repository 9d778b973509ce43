"""Builds the CDK app: config from context, the stack, and the cdk-nag validation plugins."""

from __future__ import annotations

from aws_cdk import App, Environment

from infra.config import ServingConfig
from infra.nag import register_nag
from infra.stack import MlserveStack

STACK_ID = "Mlserve"


def build_stack(app: App) -> MlserveStack:
    config = ServingConfig.from_context(app.node.try_get_context)
    # Environment-agnostic on purpose: no account/region lookups at synth time.
    stack = MlserveStack(
        app,
        STACK_ID,
        config=config,
        description=f"mlserve: serverless serving of MLflow model {config.model_name}",
        env=Environment(),
    )
    register_nag(app)
    return stack
