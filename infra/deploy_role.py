"""The GitHub Actions deploy role as code (``-c deploy_role=github``): stack ``MlserveDeployRole``.

GitHub's OIDC provider (created here, or an existing one named by ``github_oidc_provider_arn``:
an account holds one provider per URL) and two roles that GitHub Actions assume with
``aws-actions/configure-aws-credentials`` — no long-lived keys anywhere:

- ``DeployRole``: trusted only for ``repo:<owner>/<repo>:ref:refs/heads/<branch>`` and
  ``repo:<owner>/<repo>:environment:<env>`` tokens whose audience is ``sts.amazonaws.com``;
  it may do exactly one thing: assume this account's CDK bootstrap roles (deploy,
  file-publishing, image-publishing, lookup). What a deploy can change is decided by the
  bootstrap's CloudFormation execution policy, not here.
- ``PullRequestDiffRole`` (``github_pull_request_diff``, default on): trusted only for the
  repository's ``pull_request`` tokens, may assume only the read-only lookup role, which is
  all ``cdk diff --no-change-set`` needs. Code in a pull request can read, never deploy.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aws_cdk import Aws, CfnOutput, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.config import ConfigError
from infra.config.base import cdk_default

STACK_ID = "MlserveDeployRole"
GITHUB_OIDC_URL = "https://token.actions.githubusercontent.com"
GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
STS_AUDIENCE = "sts.amazonaws.com"
# CDK's default bootstrap qualifier; a custom one is CDK's own context key.
DEFAULT_QUALIFIER = "hnb659fds"
QUALIFIER_KEY = "@aws-cdk/core:bootstrapQualifier"
BOOTSTRAP_ROLES = ("deploy-role", "file-publishing-role", "image-publishing-role", "lookup-role")

_REPOSITORY = re.compile(r"^[A-Za-z0-9-]{1,39}/[A-Za-z0-9._-]{1,100}$")
_BRANCH = re.compile(r"^[A-Za-z0-9._/-]{1,200}$")
_ENVIRONMENT = re.compile(r"^[A-Za-z0-9._ -]{1,255}$")
_QUALIFIER = re.compile(r"^[A-Za-z0-9_-]{1,10}$")
_OIDC_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:oidc-provider/token\.actions\.githubusercontent\.com$")
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$")


@dataclass(frozen=True)
class DeployRoleConfig:
    repository: str
    branch: str
    environments: tuple[str, ...]
    oidc_provider_arn: str | None
    pull_request_diff: bool
    qualifier: str
    # Regions whose bootstrap roles the deploy role may assume (those named by the
    # environments), plus the stack's own region when an environment names none.
    regions: tuple[str, ...]
    include_stack_region: bool

    @property
    def deploy_subjects(self) -> list[str]:
        """The ``sub`` claims GitHub puts in tokens of the main branch and of jobs that name
        an environment (an environment job's token carries the environment, not the ref)."""
        return [f"repo:{self.repository}:ref:refs/heads/{self.branch}"] + [
            f"repo:{self.repository}:environment:{name}" for name in self.environments
        ]

    @property
    def pull_request_subject(self) -> str:
        return f"repo:{self.repository}:pull_request"

    @classmethod
    def from_context(
        cls, get_context: Callable[[str], Any], regions: Sequence[str | None] = (None,)
    ) -> DeployRoleConfig:
        def value(key: str) -> Any:
            found = get_context(key)
            return cdk_default(key) if found is None else found

        repository = value("github_repository")
        if not isinstance(repository, str) or not _REPOSITORY.match(repository.strip()):
            raise ConfigError(
                f"context 'github_repository' must be OWNER/REPO (the repository whose workflows may "
                f"assume the deploy role), got {repository!r}"
            )
        branch = value("github_branch")
        if not isinstance(branch, str) or not _BRANCH.match(branch) or "*" in branch:
            raise ConfigError(f"context 'github_branch' must be one branch name (no wildcards), got {branch!r}")
        environments = value("github_environments")
        if isinstance(environments, str):
            environments = [part.strip() for part in environments.split(",") if part.strip()]
        if not isinstance(environments, list | tuple) or not all(
            isinstance(name, str) and _ENVIRONMENT.match(name) and "*" not in name for name in environments
        ):
            raise ConfigError(
                f"context 'github_environments' must be a list of GitHub environment names, got {environments!r}"
            )
        provider_arn = value("github_oidc_provider_arn")
        if not isinstance(provider_arn, str) or (provider_arn and not _OIDC_ARN.match(provider_arn)):
            raise ConfigError(
                "context 'github_oidc_provider_arn' must be empty (create the provider) or the ARN of the "
                f"account's {GITHUB_OIDC_HOST} provider, got {provider_arn!r}"
            )
        diff = value("github_pull_request_diff")
        if isinstance(diff, str) and diff.lower() in {"true", "false"}:
            diff = diff.lower() == "true"
        if not isinstance(diff, bool):
            raise ConfigError(f"context 'github_pull_request_diff' must be true or false, got {diff!r}")
        qualifier = get_context(QUALIFIER_KEY) or DEFAULT_QUALIFIER
        if not isinstance(qualifier, str) or not _QUALIFIER.match(qualifier):
            raise ConfigError(f"context {QUALIFIER_KEY!r} must be a CDK bootstrap qualifier, got {qualifier!r}")
        for region in regions:
            if region is not None and not _REGION.match(region):
                raise ConfigError(f"deploy role: {region!r} is not an AWS region")
        return cls(
            repository=repository.strip(),
            branch=branch,
            environments=tuple(dict.fromkeys(environments)),
            oidc_provider_arn=provider_arn or None,
            pull_request_diff=diff,
            qualifier=qualifier,
            regions=tuple(dict.fromkeys(region for region in regions if region is not None)),
            include_stack_region=not regions or None in regions,
        )


class DeployRoleStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: DeployRoleConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        if config.oidc_provider_arn:
            provider_arn = config.oidc_provider_arn
        else:
            # The native AWS::IAM::OIDCProvider (no custom-resource Lambda); IAM trusts GitHub's
            # certificate chain itself, so no thumbprint is pinned.
            provider = iam.OidcProviderNative(
                self, "GithubOidcProvider", url=GITHUB_OIDC_URL, client_ids=[STS_AUDIENCE]
            )
            provider_arn = provider.oidc_provider_arn
        self.provider_arn = provider_arn

        self.deploy_role = iam.Role(
            self,
            "DeployRole",
            description=f"GitHub Actions deploys of {config.repository} ({config.branch} and its environments)",
            assumed_by=self._github_principal(provider_arn, config.deploy_subjects),
        )
        self.deploy_role.add_to_policy(
            iam.PolicyStatement(
                sid="AssumeCdkBootstrapRoles",
                actions=["sts:AssumeRole", "sts:TagSession"],
                resources=self._bootstrap_role_arns(BOOTSTRAP_ROLES),
            )
        )
        CfnOutput(
            self,
            "DeployRoleArn",
            value=self.deploy_role.role_arn,
            description="GitHub environment variable AWS_ROLE_ARN of the dev and prod environments",
        )

        self.diff_role: iam.Role | None = None
        if config.pull_request_diff:
            self.diff_role = iam.Role(
                self,
                "PullRequestDiffRole",
                description=f"cdk diff from pull requests of {config.repository}: read-only lookups",
                assumed_by=self._github_principal(provider_arn, [config.pull_request_subject]),
            )
            self.diff_role.add_to_policy(
                iam.PolicyStatement(
                    sid="AssumeCdkLookupRole",
                    actions=["sts:AssumeRole", "sts:TagSession"],
                    resources=self._bootstrap_role_arns(("lookup-role",)),
                )
            )
            CfnOutput(
                self,
                "PullRequestDiffRoleArn",
                value=self.diff_role.role_arn,
                description="repository variables AWS_DIFF_ROLE_ARN_DEV / _PROD (cdk diff on pull requests)",
            )
        CfnOutput(self, "GithubOidcProviderArn", value=provider_arn, description="GitHub's OIDC provider in IAM")

    @staticmethod
    def _github_principal(provider_arn: str, subjects: list[str]) -> iam.IPrincipal:
        return iam.WebIdentityPrincipal(
            provider_arn,
            conditions={
                "StringEquals": {
                    f"{GITHUB_OIDC_HOST}:aud": STS_AUDIENCE,
                    f"{GITHUB_OIDC_HOST}:sub": subjects,
                }
            },
        )

    def _bootstrap_role_arns(self, kinds: Sequence[str]) -> list[str]:
        regions = [*self.config.regions, *([Aws.REGION] if self.config.include_stack_region else [])]
        return [
            f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:role/cdk-{self.config.qualifier}-{kind}-{Aws.ACCOUNT_ID}-{region}"
            for region in regions
            for kind in kinds
        ]
