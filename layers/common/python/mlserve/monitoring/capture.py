"""Request capture: a sample of the rows the API scores, with their predictions, handed
to Kinesis Data Firehose (or, for local servers, to gzip files in a directory).

The request path only decides sampling and appends references to a bounded in-memory
buffer (microseconds); encoding and ``PutRecordBatch`` happen on a background thread.
Capture never blocks or fails a prediction: every capture error is logged and counted.

Lambda freezes the sandbox between invocations, so the flush thread only runs while an
invocation is in progress or right after it; rows still buffered when a sandbox is
retired are lost (capture is a sample; docs/monitoring.md). After a SnapStart restore
the thread and client are created lazily on the first captured request, never before
the snapshot.

What is captured (the personal-data rule): the prediction of every sampled row, and of
its inputs only the columns named in ``MLSERVE_CAPTURE_COLUMNS`` (context
``capture_columns``): empty = no input field at all, ``*`` = every signature column.
"""

from __future__ import annotations

import gzip
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlserve.config import env_number
from mlserve.contract import Env
from mlserve.errors import MlserveError

logger = logging.getLogger(__name__)

# PutRecordBatch limits: 500 records, 4 MiB per call, 1,000 KiB per record.
MAX_BATCH_RECORDS = 500
MAX_BATCH_BYTES = 4 * 1024 * 1024
MAX_RECORD_BYTES = 1000 * 1024
ALL_COLUMNS = "*"


@dataclass(frozen=True)
class CaptureSettings:
    stream: str | None  # Firehose delivery stream name
    directory: Path | None  # local servers: gzip JSON-lines files under <dir>/capture/...
    sample_rate: float = 1.0
    max_rows_per_minute: int = 6000
    columns: tuple[str, ...] = ()
    flush_seconds: float = 1.0
    max_buffered_rows: int = 20000

    @property
    def enabled(self) -> bool:
        return (self.stream is not None or self.directory is not None) and self.sample_rate > 0

    @classmethod
    def from_env(cls) -> CaptureSettings:
        stream = os.environ.get(Env.CAPTURE_STREAM, "").strip() or None
        directory = os.environ.get(Env.CAPTURE_DIR, "").strip()
        rate = env_number(Env.CAPTURE_SAMPLE_RATE, 1.0)
        if rate > 1:
            raise MlserveError(f"MLSERVE_CAPTURE_SAMPLE_RATE={rate} must be between 0 and 1", code="bad_config")
        columns = tuple(c.strip() for c in os.environ.get(Env.CAPTURE_COLUMNS, "").split(",") if c.strip())
        return cls(
            stream=stream,
            directory=Path(directory) if directory else None,
            sample_rate=rate,
            max_rows_per_minute=int(env_number(Env.CAPTURE_MAX_ROWS_PER_MINUTE, 6000)),
            columns=columns,
            flush_seconds=env_number(Env.CAPTURE_FLUSH_SECONDS, 1.0, minimum=0.01),
        )

    def captured_columns(self, signature_columns: Sequence[str]) -> list[str]:
        if ALL_COLUMNS in self.columns:
            return list(signature_columns)
        wanted = set(self.columns)
        return [name for name in signature_columns if name in wanted]


@dataclass
class Pending:
    """One sampled request, as references: encoded later, on the flush thread."""

    at: float
    model: str
    version: str
    columns: list[str]
    rows: Sequence[dict[str, Any]]
    predictions: Sequence[Any]


class Capturer:
    def __init__(
        self,
        settings: CaptureSettings,
        *,
        client_factory: Callable[[], Any] | None = None,
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self._client_factory = client_factory or _firehose_client
        self._client: Any = None
        self._clock = clock
        self._rng = rng
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._pending: list[Pending] = []
        self._pending_rows = 0
        self._minute = -1
        self._rows_this_minute = 0
        self._thread: threading.Thread | None = None
        self._pid = -1
        self.stats = {"captured_rows": 0, "dropped_rows": 0, "sent_records": 0, "failed_records": 0}

    # ------------------------------------------------------------------ request path
    def record(
        self,
        model: str,
        version: str,
        signature_columns: Sequence[str],
        rows: Sequence[dict[str, Any]],
        predictions: Sequence[Any],
    ) -> None:
        """Sample and buffer one request's rows. Never raises."""
        try:
            if self._rng() >= self.settings.sample_rate:
                return
            now = self._clock()
            count = len(rows)
            with self._lock:
                minute = int(now // 60)
                if minute != self._minute:
                    self._minute, self._rows_this_minute = minute, 0
                room = min(
                    self.settings.max_rows_per_minute - self._rows_this_minute,
                    self.settings.max_buffered_rows - self._pending_rows,
                )
                if room <= 0:
                    self.stats["dropped_rows"] += count
                    return
                if count > room:
                    self.stats["dropped_rows"] += count - room
                    rows, predictions, count = rows[:room], predictions[:room], room
                self._rows_this_minute += count
                self._pending_rows += count
                self.stats["captured_rows"] += count
                self._pending.append(
                    Pending(now, model, version, self.settings.captured_columns(signature_columns), rows, predictions)
                )
            self._ensure_thread()
        except Exception:  # capture must never fail a prediction
            logger.exception("request capture failed; the prediction is unaffected")

    def _ensure_thread(self) -> None:
        # A forked worker inherits no running thread: start one per process.
        if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                    self._pid = os.getpid()
                    self._thread = threading.Thread(target=self._run, name="mlserve-capture", daemon=True)
                    self._thread.start()

    # ------------------------------------------------------------------ flush thread
    def _run(self) -> None:
        while True:
            self._wake.wait(self.settings.flush_seconds)
            self._wake.clear()
            try:
                self.flush()
            except Exception:
                logger.exception("capture flush failed")

    def take(self) -> list[Pending]:
        with self._lock:
            pending, self._pending, self._pending_rows = self._pending, [], 0
        return pending

    def flush(self) -> int:
        """Encode and send everything buffered; returns records sent. Safe to call from
        any thread (tests and benchmarks call it directly)."""
        pending = self.take()
        if not pending:
            return 0
        records = encode_records(pending)
        if self.settings.directory is not None:
            write_local(self.settings.directory, pending[0].model, records, self._clock())
            self.stats["sent_records"] += len(records)
            return len(records)
        return self._put(records)

    def _put(self, records: list[bytes]) -> int:
        if self._client is None:
            self._client = self._client_factory()
        sent = 0
        for batch in batches(records):
            try:
                response = self._client.put_record_batch(
                    DeliveryStreamName=self.settings.stream, Records=[{"Data": data} for data in batch]
                )
            except Exception as exc:
                self.stats["failed_records"] += len(batch)
                logger.warning("capture: PutRecordBatch of %d records failed: %s", len(batch), exc)
                continue
            failed = int(response.get("FailedPutCount", 0))
            self.stats["failed_records"] += failed
            sent += len(batch) - failed
            if failed:
                logger.warning("capture: Firehose refused %d of %d records", failed, len(batch))
        self.stats["sent_records"] += sent
        return sent


def _firehose_client() -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "firehose", config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 3, "mode": "standard"})
    )


def encode_records(pending: Sequence[Pending]) -> list[bytes]:
    """One JSON line per sampled request (split when a record would pass Firehose's
    1,000 KiB limit): {"t", "model", "version", "columns", "data", "predictions"}."""
    import orjson

    records: list[bytes] = []
    for item in pending:
        data = [[row.get(name) for name in item.columns] for row in item.rows]
        predictions = list(item.predictions)
        step = len(data) or 1
        start = 0
        while start < max(len(predictions), 1):
            chunk = {
                "t": round(item.at, 3),
                "model": item.model,
                "version": item.version,
                "columns": item.columns,
                "data": data[start : start + step] if item.columns else [],
                "predictions": predictions[start : start + step],
            }
            line = orjson.dumps(chunk, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NAIVE_UTC) + b"\n"
            if len(line) > MAX_RECORD_BYTES and step > 1:
                step = max(1, step // 2)
                continue
            if len(line) <= MAX_RECORD_BYTES:
                records.append(line)
            start += step
    return records


def batches(records: list[bytes]) -> list[list[bytes]]:
    out: list[list[bytes]] = []
    current: list[bytes] = []
    size = 0
    for record in records:
        if current and (len(current) == MAX_BATCH_RECORDS or size + len(record) > MAX_BATCH_BYTES):
            out.append(current)
            current, size = [], 0
        current.append(record)
        size += len(record)
    if current:
        out.append(current)
    return out


def capture_prefix(model: str) -> str:
    return f"capture/{model}/"


def write_local(directory: Path, model: str, records: list[bytes], now: float) -> Path:
    """The local stand-in for Firehose: one gzip JSON-lines object per flush, under the
    same layout the deployed stream writes (capture/<model>/<version>/dt=YYYY-MM-DD/)."""
    import json

    version = json.loads(records[0])["version"]
    day = datetime.fromtimestamp(now, UTC)
    target = directory / capture_prefix(model) / version / f"dt={day:%Y-%m-%d}"
    target.mkdir(parents=True, exist_ok=True)
    path: Path = target / f"{day:%H%M%S}-{os.getpid()}-{random.getrandbits(32):08x}.jsonl.gz"
    path.write_bytes(gzip.compress(b"".join(records)))
    return path


_capturer: Capturer | None = None
_configured = False
_setup_lock = threading.Lock()


def capturer() -> Capturer | None:
    """The process's capturer, built from the environment on first use (None = off)."""
    global _capturer, _configured
    if not _configured:
        with _setup_lock:
            if not _configured:
                try:
                    settings = CaptureSettings.from_env()
                    _capturer = Capturer(settings) if settings.enabled else None
                except MlserveError as exc:
                    logger.error("request capture is off: %s", exc.message)
                    _capturer = None
                _configured = True
    return _capturer


def reset_capturer(value: Capturer | None = None) -> None:
    """Tests and benchmarks: replace (or forget) the process's capturer."""
    global _capturer, _configured
    _capturer, _configured = value, value is not None


def capture_prediction(model: Any, rows: Sequence[dict[str, Any]], predictions: Sequence[Any]) -> None:
    """The API's one-line hook (``model`` is a LoadedModel)."""
    recorder = capturer()
    if recorder is not None:
        identity = model.identity
        recorder.record(identity.name, identity.version, model.schema.column_names, rows, predictions)
