"""Lambda entry point of the scheduled drift job (EventBridge Scheduler): all logic lives
in ``mlserve.monitoring.job``; numpy/scipy only, no Evidently or MLflow."""

from __future__ import annotations

from typing import Any

from mlserve.monitoring.job import DriftJobSettings, run_drift_job
from mlserve.observability import lambda_entry


def _handle(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    outcome = run_drift_job(DriftJobSettings.from_env())
    report = outcome.report
    return {
        "status": report.get("status"),
        "version": report.get("version"),
        "report": outcome.json_key,
        "html": outcome.html_key,
        "dataset_drift": report.get("dataset_drift", False),
        "drifted_features": report.get("drifted_features", []),
        "share_drifted": report.get("share_drifted", 0.0),
        "current_rows": report.get("current_rows"),
    }


handler = lambda_entry(_handle)
