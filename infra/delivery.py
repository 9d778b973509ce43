"""Everything `app.py` builds, chosen by context:

- no ``deploy_env``: the single ``Mlserve`` stack from the flat context (unchanged behaviour);
- ``-c deploy_env=dev`` (or ``dev,prod`` / ``all``): one ``Mlserve-<env>`` stack per named
  environment (``infra/environments.py``), placed in the entry's account and region;
- ``-c deploy_role=github``: also the ``MlserveDeployRole`` stack (``infra/deploy_role.py``);
- ``-c pipeline_connection_arn=arn:...``: also the ``MlservePipeline`` stack
  (``infra/pipeline.py``), the AWS-native alternative to the GitHub workflow.
"""

from __future__ import annotations

from aws_cdk import App, Environment, Stack

from infra.application import build_stack
from infra.config import ConfigError
from infra.deploy_role import STACK_ID as DEPLOY_ROLE_STACK_ID
from infra.deploy_role import DeployRoleConfig, DeployRoleStack
from infra.environments import DeploymentTarget, all_targets, selected_targets
from infra.nag import register_nag
from infra.pipeline import STACK_ID as PIPELINE_STACK_ID
from infra.pipeline import PipelineConfig, PipelineStack
from infra.stack import MlserveStack

DEPLOY_ROLE_KINDS = ("", "github")


def build_app(app: App) -> list[Stack]:
    get = app.node.try_get_context
    stacks: list[Stack] = []
    targets = selected_targets(get)
    if targets:
        stacks += [build_environment_stack(app, target) for target in targets]
        register_nag(app)
    else:
        stacks.append(build_stack(app))  # registers cdk-nag on the app itself

    deploy_role = get("deploy_role") or ""
    if deploy_role not in DEPLOY_ROLE_KINDS:
        raise ConfigError(f"context 'deploy_role' must be github or empty, got {deploy_role!r}")
    if deploy_role == "github":
        config = DeployRoleConfig.from_context(get, regions=[target.region for target in all_targets(get)] or [None])
        stacks.append(
            DeployRoleStack(
                app,
                DEPLOY_ROLE_STACK_ID,
                config=config,
                description=f"mlserve: GitHub OIDC deploy role for {config.repository}",
                env=Environment(),
            )
        )

    if get("pipeline_connection_arn"):
        pipeline_config = PipelineConfig.from_context(get)
        stacks.append(
            PipelineStack(
                app,
                PIPELINE_STACK_ID,
                config=pipeline_config,
                description="mlserve: CDK Pipelines delivery (dev, smoke test, approval, prod)",
                env=Environment(account=pipeline_config.account, region=pipeline_config.region),
            )
        )
    return stacks


def build_environment_stack(app: App, target: DeploymentTarget) -> MlserveStack:
    return MlserveStack(
        app,
        target.stack_name,
        config=target.config,
        description=f"mlserve ({target.name}): serverless serving of MLflow model {target.config.model_name}",
        # Only what the entry names: no account/region lookups at synth time.
        env=Environment(account=target.account, region=target.region),
    )
