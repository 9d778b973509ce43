"""The contract between the runtime and the stack: names both sides must spell the same.

Environment variables the stack sets and the functions read, the batch bucket's layout,
EventBridge sources and detail-types, and CloudWatch metric names. `infra/` imports this
module at synth (it has no dependencies), so a rename here changes both sides at once.
"""

from __future__ import annotations

from typing import Final


class Env:
    """Environment variable names (`Env.STORE` is ``MLSERVE_STORE``)."""

    ALLOW_PICKLE: Final = "MLSERVE_ALLOW_PICKLE"
    ARTIFACT_LOCATIONS: Final = "MLSERVE_ARTIFACT_LOCATIONS"
    AUTH: Final = "MLSERVE_AUTH"
    BATCH_BUCKET: Final = "MLSERVE_BATCH_BUCKET"
    BATCH_CHUNK_BYTES: Final = "MLSERVE_BATCH_CHUNK_BYTES"
    BATCH_DEADLINE_MARGIN_SECONDS: Final = "MLSERVE_BATCH_DEADLINE_MARGIN_SECONDS"
    BATCH_ESCAPE_FORMULAS: Final = "MLSERVE_BATCH_ESCAPE_FORMULAS"
    BATCH_MAX_BYTES: Final = "MLSERVE_BATCH_MAX_BYTES"
    BATCH_MAX_COLUMNS: Final = "MLSERVE_BATCH_MAX_COLUMNS"
    BATCH_MAX_DECOMPRESSION_RATIO: Final = "MLSERVE_BATCH_MAX_DECOMPRESSION_RATIO"
    BATCH_MAX_LISTED: Final = "MLSERVE_BATCH_MAX_LISTED"
    BATCH_MAX_RECORD_BYTES: Final = "MLSERVE_BATCH_MAX_RECORD_BYTES"
    BATCH_PART_BYTES: Final = "MLSERVE_BATCH_PART_BYTES"
    BATCH_PROBABILITIES: Final = "MLSERVE_BATCH_PROBABILITIES"
    BATCH_RATIO_GRACE_BYTES: Final = "MLSERVE_BATCH_RATIO_GRACE_BYTES"
    BATCH_STORE: Final = "MLSERVE_BATCH_STORE"
    CACHE_DIR: Final = "MLSERVE_CACHE_DIR"
    CAPTURE_COLUMNS: Final = "MLSERVE_CAPTURE_COLUMNS"
    CAPTURE_DIR: Final = "MLSERVE_CAPTURE_DIR"
    CAPTURE_FLUSH_SECONDS: Final = "MLSERVE_CAPTURE_FLUSH_SECONDS"
    CAPTURE_MAX_ROWS_PER_MINUTE: Final = "MLSERVE_CAPTURE_MAX_ROWS_PER_MINUTE"
    CAPTURE_SAMPLE_RATE: Final = "MLSERVE_CAPTURE_SAMPLE_RATE"
    CAPTURE_STREAM: Final = "MLSERVE_CAPTURE_STREAM"
    DRIFT_BATCH_PREFIXES: Final = "MLSERVE_DRIFT_BATCH_PREFIXES"
    DRIFT_CATEGORICAL_TEST: Final = "MLSERVE_DRIFT_CATEGORICAL_TEST"
    DRIFT_MAX_ROWS: Final = "MLSERVE_DRIFT_MAX_ROWS"
    DRIFT_NUMERIC_TEST: Final = "MLSERVE_DRIFT_NUMERIC_TEST"
    DRIFT_SHARE: Final = "MLSERVE_DRIFT_SHARE"
    DRIFT_THRESHOLDS: Final = "MLSERVE_DRIFT_THRESHOLDS"
    DRIFT_WINDOW_DAYS: Final = "MLSERVE_DRIFT_WINDOW_DAYS"
    EVENT_BUS: Final = "MLSERVE_EVENT_BUS"
    FANOUT_RANGE_BYTES: Final = "MLSERVE_FANOUT_RANGE_BYTES"
    FANOUT_STATE_MACHINE_ARN: Final = "MLSERVE_FANOUT_STATE_MACHINE_ARN"
    FANOUT_THRESHOLD_BYTES: Final = "MLSERVE_FANOUT_THRESHOLD_BYTES"
    MAX_BODY_BYTES: Final = "MLSERVE_MAX_BODY_BYTES"
    MAX_ROWS: Final = "MLSERVE_MAX_ROWS"
    MLFLOW_TOKEN_SECRET_ARN: Final = "MLSERVE_MLFLOW_TOKEN_SECRET_ARN"
    MLFLOW_TRACKING_URI: Final = "MLSERVE_MLFLOW_TRACKING_URI"
    MODEL_NAME: Final = "MLSERVE_MODEL_NAME"
    MODEL_NAMES: Final = "MLSERVE_MODEL_NAMES"
    MONITORING_STORE: Final = "MLSERVE_MONITORING_STORE"
    PROMOTION_STAGE: Final = "MLSERVE_PROMOTION_STAGE"
    REFRESH_SECONDS: Final = "MLSERVE_REFRESH_SECONDS"
    REGISTRY_ALIAS: Final = "MLSERVE_REGISTRY_ALIAS"
    RESULTS_PREFIX: Final = "MLSERVE_RESULTS_PREFIX"
    SAGEMAKER_MODEL_NAME: Final = "MLSERVE_SAGEMAKER_MODEL_NAME"
    SAGEMAKER_PACKAGE_GROUP: Final = "MLSERVE_SAGEMAKER_PACKAGE_GROUP"
    SCHEDULES: Final = "MLSERVE_SCHEDULES"
    SCHEDULE_MAX_FILES: Final = "MLSERVE_SCHEDULE_MAX_FILES"
    SCHEDULE_STOP_MARGIN_SECONDS: Final = "MLSERVE_SCHEDULE_STOP_MARGIN_SECONDS"
    SCORE_IN_THREADS: Final = "MLSERVE_SCORE_IN_THREADS"
    SMOKE_API_KEY_ID: Final = "MLSERVE_SMOKE_API_KEY_ID"
    SMOKE_API_URL: Final = "MLSERVE_SMOKE_API_URL"
    SMOKE_MODEL_NAME: Final = "MLSERVE_SMOKE_MODEL_NAME"
    SMOKE_REQUIRED: Final = "MLSERVE_SMOKE_REQUIRED"
    STORE: Final = "MLSERVE_STORE"
    STREAM_FAILURE_QUEUE_URL: Final = "MLSERVE_STREAM_FAILURE_QUEUE_URL"
    STREAM_OUTPUT: Final = "MLSERVE_STREAM_OUTPUT"
    STREAM_OUTPUT_NAME: Final = "MLSERVE_STREAM_OUTPUT_NAME"
    UPLOAD_MAX_BYTES: Final = "MLSERVE_UPLOAD_MAX_BYTES"
    UPLOAD_ORIGIN: Final = "MLSERVE_UPLOAD_ORIGIN"
    UPLOAD_POST_SECONDS: Final = "MLSERVE_UPLOAD_POST_SECONDS"
    UPLOAD_URL_SECONDS: Final = "MLSERVE_UPLOAD_URL_SECONDS"
    WEBHOOK_DELIVERIES_TABLE: Final = "MLSERVE_WEBHOOK_DELIVERIES_TABLE"
    WEBHOOK_SECRET_ID: Final = "MLSERVE_WEBHOOK_SECRET_ID"
    POWERTOOLS_METRICS_DISABLED: Final = "POWERTOOLS_METRICS_DISABLED"
    POWERTOOLS_METRICS_NAMESPACE: Final = "POWERTOOLS_METRICS_NAMESPACE"
    POWERTOOLS_SERVICE_NAME: Final = "POWERTOOLS_SERVICE_NAME"
    POWERTOOLS_TRACE_DISABLED: Final = "POWERTOOLS_TRACE_DISABLED"


# --- the batch bucket's layout (and the local store's `batch/` area) ---------------------

INCOMING_PREFIX: Final = "incoming/"  # inputs: incoming/<path>.csv[.gz]; uploads: incoming/<job id>/<file>
RESULTS_PREFIX: Final = "results/"  # default of MLSERVE_RESULTS_PREFIX
INPUT_SUFFIXES: Final = (".csv", ".csv.gz")
PREDICTIONS_SUFFIX: Final = ".predictions.csv"  # results/<path>.predictions.csv
REPORT_SUFFIX: Final = ".report.json"  # results/<path>.report.json
SUMMARY_SUFFIX: Final = ".summary.json"  # the job page's summary, cached beside the report
MARKERS_DIR: Final = ".markers/"  # results/.markers/<path>/<version>: idempotency per input version
JOB_CLAIMS_DIR: Final = ".jobs/"  # results/.jobs/<job id>: one scored object per upload job
UPLOAD_SLOTS_PREFIX: Final = "ui-jobs/"  # local mode only: one small JSON per upload slot handed out
SCHEDULE_RUNS_DIR: Final = "_runs"  # results/_runs/<schedule>/...: scheduled-run summaries

# --- EventBridge ----------------------------------------------------------------------

REGISTRY_EVENT_SOURCE: Final = "mlserve.registry"
MONITORING_EVENT_SOURCE: Final = "mlserve.monitoring"
DRIFT_SCHEDULE_SOURCE: Final = "mlserve.drift-schedule"
MODEL_PROMOTED: Final = "ModelPromoted"
# The same detail, but `force` (accept a breaking signature) is honoured. The bus policy lets
# only the principals in context `force_promoters` put this detail-type (docs/security.md):
# EventBridge events carry no reliable caller identity, so the detail-type is the proof.
MODEL_PROMOTION_FORCED: Final = "ModelPromotionForced"
MODEL_DEPLOYED: Final = "ModelDeployed"
MODEL_DEPLOYMENT_FAILED: Final = "ModelDeploymentFailed"
MODEL_DRIFT_DETECTED: Final = "ModelDriftDetected"
SAGEMAKER_SOURCE: Final = "aws.sagemaker"
SAGEMAKER_DETAIL_TYPE: Final = "SageMaker Model Package State Change"

# --- CloudWatch metrics (EMF) -----------------------------------------------------------

METRICS_NAMESPACE: Final = "mlserve"  # default of POWERTOOLS_METRICS_NAMESPACE
SERVICE_NAME: Final = "mlserve"  # default of POWERTOOLS_SERVICE_NAME
PREDICTIONS: Final = "Predictions"  # rows predicted by the online API
PREDICTION_REQUESTS: Final = "PredictionRequests"
VALIDATION_ERRORS: Final = "ValidationErrors"  # requests refused with a 4xx for their input
ROWS_SCORED: Final = "RowsScored"  # batch
ROWS_REJECTED: Final = "RowsRejected"  # batch
MODEL_LOAD_SECONDS: Final = "ModelLoadSeconds"
REDEPLOYS: Final = "Redeploys"  # dimension outcome=deployed|failed|superseded|already_live|error
REDEPLOY_SECONDS: Final = "RedeploySeconds"
WEBHOOK_DELIVERIES: Final = "WebhookDeliveries"  # dimension outcome=accepted|ignored|duplicate|rejected|error
COLD_START: Final = "ColdStart"  # emitted by Powertools (capture_cold_start_metric)
# Published by the drift job (PutMetricData, dimension model_name [, feature]).
DRIFTED_FEATURE_SHARE: Final = "DriftedFeatureShare"
FEATURE_DRIFTED: Final = "FeatureDrifted"
FEATURE_PSI: Final = "FeaturePSI"
