"""CSV batches from the browser: upload targets, job status, previews and downloads.

Deployed (``MLSERVE_BATCH_BUCKET`` set and the model store on S3), ``POST /batch/uploads``
hands the browser a presigned S3 POST for ``incoming/<job id>/<filename>`` whose policy
enforces the size limit and the content type; the S3-triggered batch Lambda scores it into
``results/<job id>/<filename>.predictions.csv`` + ``.report.json``.

Locally (no batch bucket, or a ``file://`` store), the upload goes to a same-origin route of
the API (``POST /batch/local-uploads/<job id>``) that writes into the local store's batch area
(``<store>/batch/``, same layout as the bucket) and scores it with the same batch code.
"""

from mlserve.contract import INCOMING_PREFIX, PREDICTIONS_SUFFIX, REPORT_SUFFIX, SUMMARY_SUFFIX
from mlserve.contract import UPLOAD_SLOTS_PREFIX as JOBS_PREFIX
from mlserve.uploads.jobs import batch_area, cached_summary, download_url, job_status, read_head
from mlserve.uploads.local import (
    local_download_path,
    receive_local_upload,
    score_local_upload,
    score_local_upload_safely,
)
from mlserve.uploads.settings import (
    AUTH_MODES,
    DEFAULT_POST_SECONDS,
    DEFAULT_UPLOAD_MAX_BYTES,
    DEFAULT_URL_SECONDS,
    UploadSettings,
    auth_mode,
    regional_s3_endpoint,
    results_prefix,
    s3_client,
    s3_endpoint,
    upload_origin,
)
from mlserve.uploads.slots import (
    ACCEPTED_CONTENT_TYPES,
    CONTENT_TYPES,
    check_content_type,
    check_job_id,
    check_size,
    create_upload,
    new_job_id,
    parse_upload_request,
    presigned_post,
    safe_filename,
    too_large,
)
from mlserve.uploads.summaries import (
    HISTOGRAM_BINS,
    MAX_CLASSES_COUNTED,
    PREDICTION_COLUMNS,
    PREVIEW_MAX_BYTES,
    PREVIEW_ROWS,
    SUMMARY_MAX_BYTES,
    histogram,
    preview,
    summarize,
)

__all__ = [
    "ACCEPTED_CONTENT_TYPES",
    "AUTH_MODES",
    "CONTENT_TYPES",
    "DEFAULT_POST_SECONDS",
    "DEFAULT_UPLOAD_MAX_BYTES",
    "DEFAULT_URL_SECONDS",
    "HISTOGRAM_BINS",
    "INCOMING_PREFIX",
    "JOBS_PREFIX",
    "MAX_CLASSES_COUNTED",
    "PREDICTIONS_SUFFIX",
    "PREDICTION_COLUMNS",
    "PREVIEW_MAX_BYTES",
    "PREVIEW_ROWS",
    "REPORT_SUFFIX",
    "SUMMARY_MAX_BYTES",
    "SUMMARY_SUFFIX",
    "UploadSettings",
    "auth_mode",
    "batch_area",
    "cached_summary",
    "check_content_type",
    "check_job_id",
    "check_size",
    "create_upload",
    "download_url",
    "histogram",
    "job_status",
    "local_download_path",
    "new_job_id",
    "parse_upload_request",
    "presigned_post",
    "preview",
    "read_head",
    "receive_local_upload",
    "regional_s3_endpoint",
    "results_prefix",
    "s3_client",
    "s3_endpoint",
    "safe_filename",
    "score_local_upload",
    "score_local_upload_safely",
    "summarize",
    "too_large",
    "upload_origin",
]
