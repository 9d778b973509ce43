"""CDK Pipelines delivery (``-c pipeline_connection_arn=arn:...``): stack ``MlservePipeline``.

The AWS-native alternative to ``.github/workflows/deploy.yml``, with the same gates: source
from a CodeConnections (formerly CodeStar Connections) connection → synth → self-mutate →
``dev`` → deployed smoke test (``tests/smoke``) → manual approval → ``prod`` → smoke test.
The environments come from the ``environments`` context (``infra/environments.py``); the
pipeline lives in the first one's account and region unless ``pipeline_account`` /
``pipeline_region`` say otherwise. Synth-tested only (tests/infra/test_pipeline.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_cdk import CfnOutput, Environment, Stack, Stage, pipelines
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_iam as iam
from cdk_nag import AwsSolutionsChecks
from constructs import Construct

from infra.config import ConfigError
from infra.config.base import cdk_default
from infra.environments import DeploymentTarget, resolve
from infra.nag import acknowledge
from infra.stack import MlserveStack
from mlserve.contract import Env

STACK_ID = "MlservePipeline"
SMOKE_COMMAND = "python -m pytest -q -p no:cacheprovider -rs tests/smoke/test_deployed_smoke.py"
# CodeBuild standard:7.0 runtime the synth and smoke steps use.
BUILD_PYTHON = "python3.12"

_CONNECTION_ARN = re.compile(
    r"^arn:aws[a-z-]*:(codestar-connections|codeconnections):[a-z0-9-]+:\d{12}:connection/[A-Za-z0-9-]+$"
)
_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$")


@dataclass(frozen=True)
class PipelineConfig:
    connection_arn: str
    repository: str
    branch: str
    account: str
    region: str
    targets: tuple[DeploymentTarget, ...]

    @classmethod
    def from_context(cls, get_context: Callable[[str], Any]) -> PipelineConfig:
        connection_arn = str(get_context("pipeline_connection_arn") or "")
        if not _CONNECTION_ARN.match(connection_arn):
            raise ConfigError(
                "context 'pipeline_connection_arn' must be a CodeConnections connection ARN "
                f"(arn:aws:codeconnections:<region>:<account>:connection/<id>), got {connection_arn!r}"
            )
        repository = str(get_context("pipeline_repository") or get_context("github_repository") or "")
        if not _REPOSITORY.match(repository):
            raise ConfigError(
                "context 'pipeline_repository' (or 'github_repository') must be OWNER/REPO as the "
                f"connection names it, got {repository!r}"
            )
        branch = str(get_context("pipeline_branch") or get_context("github_branch") or cdk_default("github_branch"))
        stages = get_context("pipeline_stages") or cdk_default("pipeline_stages")
        if isinstance(stages, str):
            stages = [part.strip() for part in stages.split(",") if part.strip()]
        if not isinstance(stages, list | tuple) or not stages:
            raise ConfigError(f"context 'pipeline_stages' must be a non-empty list of environments, got {stages!r}")
        targets = tuple(resolve(get_context, name) for name in stages)
        for target in targets:
            if target.account is None or target.region is None:
                raise ConfigError(
                    f"context 'environments.{target.name}' needs account and region for the pipeline "
                    "(CDK Pipelines deploys to named environments only)"
                )
        account = str(get_context("pipeline_account") or targets[0].account)
        region = str(get_context("pipeline_region") or targets[0].region)
        if not _ACCOUNT.match(account):
            raise ConfigError(f"context 'pipeline_account' must be a 12-digit AWS account id, got {account!r}")
        if not _REGION.match(region):
            raise ConfigError(f"context 'pipeline_region' must be an AWS region, got {region!r}")
        return cls(connection_arn, repository, branch, account, region, targets)


class MlserveStage(Stage):
    """One environment's ``Mlserve-<env>`` stack, as a pipeline stage."""

    def __init__(self, scope: Construct, construct_id: str, *, target: DeploymentTarget) -> None:
        super().__init__(scope, construct_id, env=Environment(account=target.account, region=target.region))
        self.stack = MlserveStack(
            self,
            "Mlserve",
            stack_name=target.stack_name,
            config=target.config,
            description=f"mlserve ({target.name}): serverless serving of MLflow model {target.config.model_name}",
        )
        outputs = {child.node.id: child for child in self.stack.node.children if isinstance(child, CfnOutput)}
        self.api_url: CfnOutput = outputs["ApiUrl"]
        self.api_key_id: CfnOutput | None = outputs.get("ApiKeyId")


class PipelineStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: PipelineConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        source = pipelines.CodePipelineSource.connection(
            config.repository, config.branch, connection_arn=config.connection_arn
        )
        # The synth step runs what a developer runs; the context (environments, connection)
        # comes from the committed cdk.json, so the pipeline synthesizes itself unchanged.
        synth = pipelines.ShellStep(
            "Synth",
            input=source,
            commands=[f"make venv node PYTHON={BUILD_PYTHON}", "npx cdk synth --quiet"],
        )
        self.pipeline = pipelines.CodePipeline(
            self,
            "Pipeline",
            synth=synth,
            self_mutation=True,
            cross_account_keys=True,  # KMS-encrypted artifacts, needed when prod is another account
            enable_key_rotation=True,
            code_build_defaults=pipelines.CodeBuildOptions(
                build_environment=codebuild.BuildEnvironment(
                    build_image=codebuild.LinuxBuildImage.STANDARD_7_0,
                    compute_type=codebuild.ComputeType.MEDIUM,
                ),
                # The CDK CLI wants Node 22+; the venv any Python 3.11+.
                partial_build_spec=codebuild.BuildSpec.from_object(
                    {
                        "phases": {
                            "install": {
                                "runtime-versions": {"nodejs": "22", "python": BUILD_PYTHON.removeprefix("python")}
                            }
                        }
                    }
                ),
            ),
        )
        self.stages: list[MlserveStage] = []
        for index, target in enumerate(config.targets):
            stage = MlserveStage(self, target.name.capitalize(), target=target)
            pre: list[pipelines.Step] = []
            if index > 0:
                pre.append(
                    pipelines.ManualApprovalStep(
                        f"Approve{target.name.capitalize()}",
                        comment=f"Smoke tests passed in {config.targets[index - 1].name}: deploy to {target.name}?",
                    )
                )
            self.pipeline.add_stage(stage, pre=pre, post=[self._smoke_step(source, stage, target)])
            self.stages.append(stage)
        self.pipeline.build_pipeline()
        self._acknowledge_pipeline_findings()

    def _smoke_step(
        self, source: pipelines.CodePipelineSource, stage: MlserveStage, target: DeploymentTarget
    ) -> pipelines.CodeBuildStep:
        outputs: dict[str, CfnOutput] = {Env.SMOKE_API_URL: stage.api_url}
        statements: list[iam.PolicyStatement] = []
        if stage.api_key_id is not None:
            outputs[Env.SMOKE_API_KEY_ID] = stage.api_key_id
            # The key's value is fetched at test time; its id is only known after the deploy.
            statements.append(
                iam.PolicyStatement(
                    actions=["apigateway:GET"],
                    resources=[f"arn:{self.partition}:apigateway:{target.region}::/apikeys/*"],
                )
            )
        return pipelines.CodeBuildStep(
            f"SmokeTest{target.name.capitalize()}",
            input=source,
            env={Env.SMOKE_REQUIRED: "1", Env.SMOKE_MODEL_NAME: target.config.model_name},
            env_from_cfn_outputs=outputs,
            install_commands=[f"make venv PYTHON={BUILD_PYTHON}"],
            commands=[f".venv/bin/{SMOKE_COMMAND}"],
            role_policy_statements=statements,
        )

    def _acknowledge_pipeline_findings(self) -> None:
        """CDK Pipelines' own resources (artifact bucket, CodeBuild projects, self-mutation and
        asset roles) carry wildcards we cannot narrow. Each finding on them is acknowledged on
        the construct that owns it, only when it matches one of the known patterns below, each
        with its reason; anything else still fails synth. The stages' stacks keep their own
        acknowledgements (infra/*.py)."""
        by_path = {construct.node.path: construct for construct in self.pipeline.node.find_all()}
        for violation in AwsSolutionsChecks().validate_scope(self.pipeline).violations:
            for resource in violation.violating_resources:
                path = resource.construct_path or ""
                reason = _pipeline_finding_reason(violation.rule_name, path)
                owner = by_path.get(path.removesuffix("/Resource"))
                if reason is not None and owner is not None:
                    acknowledge(owner, "AwsSolutions", violation.rule_name, reason)


# (rule pattern, construct path pattern, reason): `*` wildcard patterns over cdk-nag's rule name
# (which embeds the resource) and the violating construct path inside the pipeline.
_PIPELINE_FINDINGS: tuple[tuple[str, str, str], ...] = (
    (
        "AwsSolutions-S1",
        "*/Pipeline/Pipeline/ArtifactsBucket/Resource",
        "CDK Pipelines' artifact bucket only holds the pipeline's own transient stage artifacts, "
        "KMS-encrypted (cross_account_keys) and SSL-only; every access is by the pipeline roles.",
    ),
    (
        "AwsSolutions-IAM5[Action::s3:*",
        "*",
        "CDK's grantReadWrite on the pipeline's artifact bucket (s3:GetObject*, List*, Abort*, ...): "
        "the bucket is the pipeline's own and holds nothing else.",
    ),
    (
        "AwsSolutions-IAM5[Resource::<PipelineArtifactsBucket*.Arn>/*]",
        "*",
        "Objects of the pipeline's own artifact bucket: each stage reads its input and writes its "
        "output artifact there under keys CodePipeline generates per execution.",
    ),
    (
        "AwsSolutions-IAM5[Action::kms:*",
        "*",
        "CDK's grant on the pipeline's artifact KMS key (kms:GenerateDataKey*, kms:ReEncrypt*), "
        "limited to that one key's ARN.",
    ),
    (
        "AwsSolutions-IAM5[Resource::arn:*:logs:*:log-group:/aws/codebuild/*",
        "*",
        "A CodeBuild project's own log streams: CodeBuild names them per build inside the "
        "project's log group, so the stream part cannot be known in advance.",
    ),
    (
        "AwsSolutions-IAM5[Resource::arn:*:codebuild:*:report-group/*",
        "*",
        "A CodeBuild project's own test report groups, created per project by CodeBuild with "
        "generated suffixes; no other report group is named.",
    ),
    (
        "AwsSolutions-IAM5[Resource::*]",
        "*/Assets/FileRole/DefaultPolicy/Resource",
        "CDK Pipelines' asset role starts and watches the asset-publishing CodeBuild builds it "
        "creates; CodeBuild's StartBuild/BatchGetBuilds take project ARNs only known at deploy.",
    ),
    (
        "AwsSolutions-IAM5[Resource::*]",
        "*/UpdatePipeline/SelfMutation/Role/DefaultPolicy/Resource",
        "Self-mutation reads stack status (cloudformation:DescribeStacks) and lists the CDK asset "
        "bucket (s3:ListBucket), whose name is only known from the bootstrap at deploy time.",
    ),
    (
        "AwsSolutions-IAM5[Resource::arn:*:iam::*:role/*]",
        "*/UpdatePipeline/SelfMutation/Role/DefaultPolicy/Resource",
        "Self-mutation may assume only roles tagged aws-cdk:bootstrap-role (deploy, file- and "
        "image-publishing; IAM condition on the tag): the CDK bootstrap roles of the account.",
    ),
    (
        "AwsSolutions-IAM5[Resource::arn:*:apigateway:*::/apikeys/*]",
        "*/SmokeTest*/Role/DefaultPolicy/Resource",
        "The smoke test reads the stage's API key value (apigateway:GET, read-only); the key id is "
        "a stack output only known after that stage deployed, so it cannot be named here.",
    ),
)


def _pipeline_finding_reason(rule: str, construct_path: str) -> str | None:
    for rule_pattern, path_pattern, reason in _PIPELINE_FINDINGS:
        if _wildcard_match(rule_pattern, rule) and _wildcard_match(path_pattern, construct_path):
            return reason
    return None


def _wildcard_match(pattern: str, text: str) -> bool:
    """``*`` matches anything; every other character (cdk-nag's ``[``, ``]``) is literal."""
    return re.fullmatch(".*".join(re.escape(part) for part in pattern.split("*")), text) is not None
