"""EventBridge (`ModelPromoted`, or a SageMaker approval) -> a new live model, or a refusal.

Thin: parses the event and calls `mlserve.promotion.redeploy`. Configuration: see
`RedeployConfig.from_env` (MLSERVE_STORE, MLSERVE_EVENT_BUS, MLSERVE_MLFLOW_TRACKING_URI,
MLSERVE_REGISTRY_ALIAS, MLSERVE_MODEL_NAME(S), MLSERVE_SAGEMAKER_PACKAGE_GROUP, ...).
Refusals return normally (the failure is recorded and emitted); transient errors raise so
that Lambda retries and finally dead-letters the event.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from mlserve.promotion.redeploy import RedeployConfig, Redeployer

logger = logging.getLogger()
logger.setLevel(os.environ.get("LOG_LEVEL", "INFO"))

_state: dict[str, Redeployer] = {}


def _redeployer() -> Redeployer:
    if "redeployer" not in _state:
        _state["redeployer"] = Redeployer(RedeployConfig.from_env())
    return _state["redeployer"]


def reset() -> None:
    _state.clear()


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    outcome = _redeployer().handle_event(event)
    logger.info("redeploy outcome: %s", outcome.to_dict())
    return outcome.to_dict()
