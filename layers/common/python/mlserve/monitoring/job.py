"""The drift job: the live version's reference profile vs the last window of captured
requests (and of batch inputs, read in place), then the JSON + HTML report, CloudWatch
metrics and, on drift, a ``ModelDriftDetected`` event.

Also the ``mlserve drift --store`` path (no metrics or events unless configured)."""

from __future__ import annotations

import gzip
import json
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from mlserve.config import env_number
from mlserve.contract import (
    DRIFTED_FEATURE_SHARE,
    FEATURE_DRIFTED,
    FEATURE_PSI,
    INCOMING_PREFIX,
    METRICS_NAMESPACE,
    MODEL_DRIFT_DETECTED,
    MONITORING_EVENT_SOURCE,
    Env,
)
from mlserve.errors import MlserveError
from mlserve.live import read_pointer
from mlserve.monitoring.capture import capture_prefix
from mlserve.monitoring.drift import DriftPolicy, FeatureDrift, compare_with_profile, summarize
from mlserve.monitoring.profile import (
    PREDICTION_COLUMN,
    PROFILE_FILE,
    Columns,
    as_categorical,
    as_numeric,
    column_kind,
)
from mlserve.monitoring.report import render_html
from mlserve.store import ModelStore, open_store, version_prefix

logger = logging.getLogger(__name__)

EVENT_SOURCE = MONITORING_EVENT_SOURCE
# Rows are converted to numpy in blocks of this many, so peak memory stays near the arrays.
BLOCK_ROWS = 65536


def drift_prefix(model: str) -> str:
    return f"monitoring/{model}/drift/"


@dataclass(frozen=True)
class DriftJobSettings:
    store_uri: str
    model_name: str
    monitoring_uri: str
    batch_uri: str | None = None
    batch_prefixes: tuple[str, ...] = (INCOMING_PREFIX,)
    window_days: float = 1.0
    max_rows: int = 2_000_000
    policy: DriftPolicy = field(default_factory=DriftPolicy)
    event_bus: str | None = None
    publish_metrics: bool = False

    @classmethod
    def from_env(cls) -> DriftJobSettings:
        store = os.environ.get(Env.STORE, "").strip()
        name = os.environ.get(Env.MODEL_NAME, "").strip()
        if not store or not name:
            raise MlserveError("MLSERVE_STORE and MLSERVE_MODEL_NAME are required", code="bad_config")
        thresholds_raw = os.environ.get(Env.DRIFT_THRESHOLDS, "").strip()
        try:
            thresholds = json.loads(thresholds_raw) if thresholds_raw else {}
        except json.JSONDecodeError as exc:
            raise MlserveError(f"MLSERVE_DRIFT_THRESHOLDS is not JSON: {exc}", code="bad_config") from None
        policy = DriftPolicy(
            numeric_test=os.environ.get(Env.DRIFT_NUMERIC_TEST, "psi"),
            categorical_test=os.environ.get(Env.DRIFT_CATEGORICAL_TEST, "jensenshannon"),
            thresholds=thresholds,
            drift_share=env_number(Env.DRIFT_SHARE, 0.5),
        )
        prefixes = tuple(
            p.strip() for p in os.environ.get(Env.DRIFT_BATCH_PREFIXES, INCOMING_PREFIX).split(",") if p.strip()
        )
        return cls(
            store_uri=store,
            model_name=name,
            monitoring_uri=os.environ.get(Env.MONITORING_STORE, "").strip() or store,
            batch_uri=os.environ.get(Env.BATCH_STORE, "").strip() or None,
            batch_prefixes=prefixes,
            window_days=env_number(Env.DRIFT_WINDOW_DAYS, 1.0, minimum=0.001),
            max_rows=int(env_number(Env.DRIFT_MAX_ROWS, 2_000_000, minimum=1)),
            policy=policy,
            event_bus=os.environ.get(Env.EVENT_BUS, "").strip() or None,
            publish_metrics=True,
        )


# ------------------------------------------------------------------ listing and reading


def objects_since(store: ModelStore, prefix: str, since: datetime) -> Iterator[str]:
    """Keys under ``prefix`` written at or after ``since`` (S3 LastModified / file mtime)."""
    return store.keys_modified_since(prefix, since)


def _decompressed(data: bytes) -> bytes:
    # Firehose delivers GZIP objects; emulators (and uncompressed streams) plain JSON lines.
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


class ColumnBlocks:
    """Per-column values accumulated in Python lists and moved into numpy blocks every
    ``BLOCK_ROWS`` values, with the profile's kind deciding the dtype."""

    def __init__(self, kinds: Mapping[str, str], types: Mapping[str, str]) -> None:
        self.kinds, self.types = kinds, types
        self.pending: dict[str, list[Any]] = {}
        self.blocks: dict[str, list[np.ndarray]] = {}

    def extend(self, column: str, values: Any) -> None:
        if column not in self.kinds:
            return
        pending = self.pending.setdefault(column, [])
        pending.extend(values)
        if len(pending) >= BLOCK_ROWS:
            self._move(column)

    def _move(self, column: str) -> None:
        values = self.pending.pop(column, [])
        if not values:
            return
        if self.kinds[column] == "numeric":
            block = _fast_float(values) if self.types.get(column) != "datetime" else as_numeric(values, "datetime")
        else:
            block = as_categorical(values)
        self.blocks.setdefault(column, []).append(block)

    def columns(self) -> Columns:
        for column in list(self.pending):
            self._move(column)
        return {name: np.concatenate(blocks) for name, blocks in self.blocks.items()}


def _fast_float(values: list[Any]) -> np.ndarray:
    try:
        return np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        return as_numeric(np.array([np.nan if v is None else v for v in values], dtype=object))


@dataclass
class CurrentData:
    columns: Columns
    captured_rows: int = 0
    batch_rows: int = 0
    objects: int = 0
    truncated: bool = False


def read_captured(
    store: ModelStore,
    model: str,
    version: str,
    since: datetime,
    blocks: ColumnBlocks,
    max_rows: int,
) -> tuple[int, int, bool]:
    """Rows captured for ``version`` since ``since``: (rows, objects read, truncated)."""
    import orjson

    cutoff = since.timestamp()
    rows = objects = 0
    for key in objects_since(store, capture_prefix(model), since):
        # Dynamic partitioning puts the version in the key; skip other versions' objects.
        parts = key.split("/")
        if len(parts) > 3 and parts[3].startswith("dt=") and parts[2] != version:
            continue
        objects += 1
        for line in _decompressed(store.read_bytes(key)).splitlines():
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                logger.warning("drift: skipped a malformed capture line in %s", key)
                continue
            if record.get("version") != version or float(record.get("t", 0)) < cutoff:
                continue
            predictions = record.get("predictions") or []
            data = record.get("data") or []
            if data:
                for column, values in zip(record.get("columns") or [], zip(*data, strict=False), strict=False):
                    blocks.extend(column, values)
            blocks.extend(PREDICTION_COLUMN, predictions)
            rows += len(predictions)
            if rows >= max_rows:
                return rows, objects, True
    return rows, objects, False


def read_batch_inputs(
    store: ModelStore, prefixes: tuple[str, ...], since: datetime, blocks: ColumnBlocks, max_rows: int
) -> tuple[int, int, bool]:
    """Batch CSV inputs written since ``since``, read in place (never copied)."""
    rows = objects = 0
    for prefix in prefixes:
        for key in objects_since(store, prefix, since):
            if not key.endswith((".csv", ".csv.gz")):
                continue
            try:
                read, truncated = read_csv_bytes(_decompressed(store.read_bytes(key)), blocks, max_rows - rows)
            except (ValueError, OSError) as exc:
                logger.warning("drift: skipped batch input %s: %s", key, exc)
                continue
            objects += 1
            rows += read
            if truncated:
                return rows, objects, True
    return rows, objects, False


def read_csv_bytes(data: bytes, blocks: ColumnBlocks, max_rows: int) -> tuple[int, bool]:
    """The profile's columns of one CSV (header row); other columns are ignored."""
    import io

    import pandas as pd

    wanted = [name for name in blocks.kinds if name != PREDICTION_COLUMN]
    header = pd.read_csv(io.BytesIO(data), nrows=0).columns
    usecols = [name for name in wanted if name in header]
    if not usecols:
        return 0, False
    frame = pd.read_csv(
        io.BytesIO(data),
        usecols=usecols,
        dtype={n: str for n in usecols if blocks.kinds[n] != "numeric"},
        nrows=max_rows + 1,
    )
    truncated = len(frame) > max_rows
    frame = frame.iloc[:max_rows]
    for name in usecols:
        column = frame[name]
        numeric = blocks.kinds[name] == "numeric" and column.dtype.kind in "fiu"
        blocks.extend(
            name, column.to_numpy(dtype=np.float64) if numeric else column.where(column.notna(), None).tolist()
        )
    return len(frame), truncated


# ------------------------------------------------------------------ the job


@dataclass
class JobOutcome:
    report: dict[str, Any]
    json_key: str
    html_key: str | None


def run_drift_job(
    settings: DriftJobSettings,
    *,
    now: datetime | None = None,
    cloudwatch: Any = None,
    events: Any = None,
) -> JobOutcome:
    """Build the report, write it (JSON, HTML, latest.json), publish metrics and the event."""
    report, inputs = build_report(settings, now=now)
    outcome = _write(open_store(settings.monitoring_uri), settings, report, html=report["status"] in ("ok", "no_data"))
    if report["status"] != "ok":
        return outcome
    if settings.publish_metrics:
        publish_metrics(cloudwatch or _client("cloudwatch"), settings.model_name, inputs, report["share_drifted"])
    drifted_prediction = bool((report.get("prediction") or {}).get("drifted"))
    if settings.event_bus and (report["drifted_features"] or drifted_prediction):
        put_drift_event(events or _client("events"), settings.event_bus, report, outcome, settings.monitoring_uri)
    return outcome


def build_report(
    settings: DriftJobSettings, *, now: datetime | None = None, current_csv: bytes | None = None
) -> tuple[dict[str, Any], list[FeatureDrift]]:
    """The live version's profile against the window's captured rows and batch inputs
    (or, with ``current_csv``, against that file). Writes nothing."""
    now = now or datetime.now(UTC)
    since = now - timedelta(days=settings.window_days)
    store = open_store(settings.store_uri)
    base: dict[str, Any] = {
        "model": settings.model_name,
        "date": f"{now:%Y-%m-%d}",
        "generated_at": _iso(now),
        "window_start": _iso(since),
        "window_end": _iso(now),
        "window_days": settings.window_days,
        "features": {},
        "drifted_features": [],
        "share_drifted": 0.0,
        "dataset_drift": False,
    }
    pointer = read_pointer(store, settings.model_name)
    if pointer is None:
        return {**base, "status": "no_model", "message": f"no live version of {settings.model_name}"}, []
    version = str(pointer["version"])
    base["version"] = version
    try:
        profile = json.loads(store.read_bytes(version_prefix(settings.model_name, version) + PROFILE_FILE))
    except KeyError:
        message = f"version {version} has no reference profile: publish it with --reference data.csv"
        return {**base, "status": "no_reference", "message": message}, []

    specs = dict(profile["columns"])
    kinds = {name: spec["kind"] for name, spec in specs.items()}
    types = {name: spec["type"] for name, spec in specs.items()}
    if profile.get("prediction"):
        kinds[PREDICTION_COLUMN] = profile["prediction"]["kind"]
        types[PREDICTION_COLUMN] = profile["prediction"]["type"]
    blocks = ColumnBlocks(kinds, types)
    captured = captured_objects = batch_rows = batch_objects = 0
    truncated = False
    if current_csv is not None:
        batch_rows, truncated = read_csv_bytes(current_csv, blocks, settings.max_rows)
        batch_objects = 1
    else:
        captured, captured_objects, truncated = read_captured(
            open_store(settings.monitoring_uri), settings.model_name, version, since, blocks, settings.max_rows
        )
        if settings.batch_uri and not truncated:
            batch_rows, batch_objects, truncated = read_batch_inputs(
                open_store(settings.batch_uri), settings.batch_prefixes, since, blocks, settings.max_rows - captured
            )
    features = compare_with_profile(profile, blocks.columns(), settings.policy, include_prediction=True)
    inputs = [f for f in features if f.name != PREDICTION_COLUMN]
    prediction = next((f for f in features if f.name == PREDICTION_COLUMN), None)
    report = {
        **base,
        "status": "ok" if captured + batch_rows else "no_data",
        **summarize(inputs, settings.policy),
        "prediction": prediction.public() if prediction and prediction.result else None,
        "drift_share": settings.policy.drift_share,
        "policy": {
            "numeric_test": settings.policy.numeric_test,
            "categorical_test": settings.policy.categorical_test,
            "thresholds": {t: settings.policy.threshold(t) for t in ("ks", "psi", "chisquare", "jensenshannon")},
        },
        "reference": profile.get("source"),
        "reference_rows": profile.get("rows"),
        "current_rows": {"captured": captured, "batch": batch_rows, "objects": captured_objects + batch_objects},
        "truncated_at_max_rows": truncated,
        "details": {f.name: f.detail() for f in features},
    }
    if report["status"] == "no_data":
        report["message"] = "no captured requests or batch inputs in the window"
    return report, inputs


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _client(service: str) -> Any:
    import boto3

    return boto3.client(service)  # type: ignore[call-overload]


def _write(store: ModelStore, settings: DriftJobSettings, report: dict[str, Any], *, html: bool) -> JobOutcome:
    prefix = drift_prefix(settings.model_name)
    json_key = f"{prefix}{report['date']}.json"
    html_key = f"{prefix}{report['date']}.html" if html else None
    if html_key:
        report["html_key"] = html_key
        store.write_bytes(html_key, render_html(report).encode(), "text/html; charset=utf-8")
    body = json.dumps(report, indent=1, sort_keys=True, default=str).encode()
    store.write_bytes(json_key, body, "application/json")
    # The page reads one fixed key; the dated objects are the history.
    store.write_bytes(f"{prefix}latest.json", body, "application/json")
    return JobOutcome(report=report, json_key=json_key, html_key=html_key)


def publish_metrics(client: Any, model: str, features: list[FeatureDrift], share: float) -> None:
    data: list[dict[str, Any]] = [
        {
            "MetricName": DRIFTED_FEATURE_SHARE,
            "Dimensions": [{"Name": "Model", "Value": model}],
            "Value": share,
            "Unit": "None",
        }
    ]
    for feature in features:
        if feature.result is None:
            continue
        dims = [{"Name": "Model", "Value": model}, {"Name": "Feature", "Value": feature.name}]
        data.append(
            {
                "MetricName": FEATURE_DRIFTED,
                "Dimensions": dims,
                "Value": 1.0 if feature.result.drifted else 0.0,
                "Unit": "None",
            }
        )
        if np.isfinite(feature.result.psi):
            data.append(
                {"MetricName": FEATURE_PSI, "Dimensions": dims, "Value": float(feature.result.psi), "Unit": "None"}
            )
    for start in range(0, len(data), 500):  # PutMetricData takes up to 1,000 values per call
        client.put_metric_data(Namespace=METRICS_NAMESPACE, MetricData=data[start : start + 500])


def put_drift_event(client: Any, bus: str, report: dict[str, Any], outcome: JobOutcome, monitoring_uri: str) -> str:
    root = monitoring_uri.rstrip("/")
    detail = {
        "model_name": report["model"],
        "version": report.get("version"),
        "date": report["date"],
        "dataset_drift": report["dataset_drift"],
        "share_drifted": report["share_drifted"],
        "drifted_features": report["drifted_features"],
        "prediction_drifted": bool((report.get("prediction") or {}).get("drifted")),
        "report": f"{root}/{outcome.json_key}",
        "report_html": f"{root}/{outcome.html_key}" if outcome.html_key else None,
    }
    response = client.put_events(
        Entries=[
            {
                "Source": EVENT_SOURCE,
                "DetailType": MODEL_DRIFT_DETECTED,
                "Detail": json.dumps(detail),
                "EventBusName": bus,
            }
        ]
    )
    entry = response["Entries"][0]
    if response.get("FailedEntryCount"):
        raise MlserveError(f"EventBridge refused ModelDriftDetected: {entry.get('ErrorMessage')}", code="event_failed")
    return str(entry["EventId"])


def latest_report(monitoring: ModelStore, model: str) -> dict[str, Any] | None:
    try:
        return dict(json.loads(monitoring.read_bytes(drift_prefix(model) + "latest.json")))
    except KeyError:
        return None


def kinds_of(types: Mapping[str, str]) -> dict[str, str]:
    return {name: column_kind(kind) for name, kind in types.items()}
