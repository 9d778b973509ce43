""" "Which version does the registry name now?" - one question, asked before a redeploy so a
stale promotion (the alias moved on since the event) is superseded, not deployed.

The Lambda asks over MLflow REST (`mlflow_rest.MlflowRest`); the CLI against a file/sqlite
registry asks the mlflow client (`MlflowClientLookup`, never imported in Lambda code).
"""

from __future__ import annotations

from typing import Any, Protocol

from mlserve.promotion.events import ModelPromoted


class VersionLookup(Protocol):
    def version_by_alias(self, name: str, alias: str) -> str | None:
        """The version `alias` points at, None when the alias is not set."""
        ...

    def latest_in_stage(self, name: str, stage: str) -> str | None:
        """The newest version in `stage` (workspace-registry stages), None when empty."""
        ...


def current_target(lookup: VersionLookup, promotion: ModelPromoted, *, alias: str, stage: str) -> str | None:
    """The version the registry names now for this promotion's source: "" when it names
    none, None when the source has no registry pointer to compare with (e.g. SageMaker)."""
    if promotion.source == "mlflow-stage":
        return lookup.latest_in_stage(promotion.model_name, promotion.stage or stage) or ""
    if promotion.source in ("mlflow-alias", "cli"):
        return lookup.version_by_alias(promotion.model_name, promotion.alias or alias) or ""
    return None


class MlflowClientLookup:
    """`VersionLookup` with the mlflow client (local tools only)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def version_by_alias(self, name: str, alias: str) -> str | None:
        return str(self.client.get_model_version_by_alias(name, alias).version)

    def latest_in_stage(self, name: str, stage: str) -> str | None:
        latest = self.client.get_latest_versions(name, stages=[stage])
        return str(max(int(v.version) for v in latest)) if latest else None
