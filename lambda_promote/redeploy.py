"""EventBridge (`ModelPromoted`, or a SageMaker approval) -> a new live model, or a refusal.

Thin: parses the event and calls `mlserve.promotion.redeploy`. Configuration: see
`RedeployConfig.from_env` (MLSERVE_STORE, MLSERVE_EVENT_BUS, MLSERVE_MLFLOW_TRACKING_URI,
MLSERVE_REGISTRY_ALIAS, MLSERVE_MODEL_NAME(S), MLSERVE_SAGEMAKER_PACKAGE_GROUP, ...).
Refusals return normally (the failure is recorded and emitted); transient errors raise so
that Lambda retries and finally dead-letters the event.

Powertools: JSON logs with the EventBridge event id as the correlation id and the promoted
model's name/version; the ``Redeploys`` EMF metric is recorded by ``mlserve.promotion.redeploy``.
"""

from __future__ import annotations

from typing import Any

from mlserve import snapstart
from mlserve.observability import EVENTBRIDGE_EVENT_ID, lambda_entry, logger
from mlserve.promotion.redeploy import RedeployConfig, Redeployer

_state: dict[str, Redeployer] = {}


def _redeployer() -> Redeployer:
    if "redeployer" not in _state:
        _state["redeployer"] = Redeployer(RedeployConfig.from_env())
    return _state["redeployer"]


def reset() -> None:
    _state.clear()


def _handle(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    outcome = _redeployer().handle_event(event).to_dict()
    logger.info("redeploy outcome", extra={"outcome": outcome})
    return outcome


handler = lambda_entry(_handle, correlation_id_path=EVENTBRIDGE_EVENT_ID)


# What verifying a staged model loads lazily (the deserializer and scikit-learn): imported
# before the snapshot so the redeploy's first event does not pay for it.
REDEPLOY_HOT_PATH = ("skops.io", "sklearn", "sklearn.pipeline", "sklearn.ensemble", "sklearn.linear_model", "pandas")


def before_snapshot() -> None:
    """SnapStart: import the verification path. The Redeployer itself (its clients hold
    credentials) is built after the restore, on the first event."""
    snapstart.import_hot_path(*REDEPLOY_HOT_PATH)
    snapstart.log_hook("before_snapshot", "redeploy hot path imported")


def after_restore() -> None:
    reset()  # any client built before the snapshot is dropped and made again on first use
    snapstart.forget_aws_session()
    snapstart.reseed_random()
    snapstart.log_hook("after_restore", "clients reset")


snapstart.register(before_snapshot=before_snapshot, after_restore=after_restore)
