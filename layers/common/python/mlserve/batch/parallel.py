"""`mlserve score --workers N`: the fan-out's range splitting on one machine, in processes.

The same plan (``mlserve.batch.ranges``), range scorer (``fanout.score_range_into``) and
report merge (``fanout.merge_reports``) as the Step Functions fan-out; the parts are local
temp files concatenated in range order, so the output is byte-identical to one worker.
One model version for the whole file: the parent reads the live pointer once and every
worker loads exactly that version. gzip input is not splittable: it is scored by one worker.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from mlserve.batch.core import BatchOptions
from mlserve.batch.fanout import merge_reports, score_range_into
from mlserve.batch.job import build_report
from mlserve.batch.output import LocalFileSink
from mlserve.batch.ranges import ByteRange, plan_ranges
from mlserve.contract import PREDICTIONS_SUFFIX, REPORT_SUFFIX
from mlserve.errors import InputError, MlserveError, ModelUnavailableError
from mlserve.live import load_version, read_pointer
from mlserve.store import open_store

# Below this much data per worker, extra processes cost more (start-up, model load) than they save.
MIN_LOCAL_RANGE_BYTES = 1024 * 1024


class _FileRange:
    """`.read(n)` over file[start:end]."""

    def __init__(self, handle: Any, start: int, end: int) -> None:
        handle.seek(start)
        self._handle = handle
        self._left = end - start

    def read(self, n: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        n = self._left if n is None or n < 0 else min(n, self._left)
        data = self._handle.read(n)
        self._left -= len(data)
        return bytes(data)


def _score_local_range(
    input_path: str,
    part_path: str,
    header_end: int,
    header_lines: int,
    item: dict[str, int],
    store_uri: str,
    pointer: dict[str, Any],
    cache_dir: str,
    allow_pickle: bool,
    options: BatchOptions,
) -> dict[str, Any]:
    from mlserve.batch.fanout import HeaderThenRange

    model = load_version(open_store(store_uri), pointer, Path(cache_dir), allow_pickle=allow_pickle)
    byte_range = ByteRange.from_dict(item)
    with open(input_path, "rb") as handle:
        header = handle.read(header_end)
        source = HeaderThenRange(header, _FileRange(handle, byte_range.start, byte_range.end))
        return score_range_into(source, LocalFileSink(Path(part_path)), model, options, byte_range, header_lines)


def score_local_parallel(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    *,
    store_uri: str,
    model_name: str,
    options: BatchOptions,
    workers: int,
    allow_pickle: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Score a local plain CSV with `workers` processes; writes the predictions (only when
    every range succeeded) and the report beside them, like `score_local`."""
    input_path, output_path = Path(input_path), Path(output_path)
    cache = Path(cache_dir) if cache_dir else Path(tempfile.gettempdir()) / "mlserve"
    size = input_path.stat().st_size
    source_info = {"path": str(input_path), "size": size, "workers": workers}
    started = time.time()
    pointer = read_pointer(open_store(store_uri), model_name)
    if pointer is None:
        raise ModelUnavailableError(f"model {model_name!r} has no live version in {store_uri}")
    with open(input_path, "rb") as handle:
        plan = plan_ranges(handle, max(-(-size // workers), MIN_LOCAL_RANGE_BYTES))
    worker_options = dataclasses.replace(options, progress=None)  # callables do not cross processes
    output_path.parent.mkdir(parents=True, exist_ok=True)
    parts_dir = Path(tempfile.mkdtemp(dir=output_path.parent, prefix=f".{output_path.name}.parts."))
    try:
        part_paths = [parts_dir / f"{r.index:05d}.csv" for r in plan.ranges]
        context = multiprocessing.get_context("spawn")  # no fork of a process holding threads/locks
        with ProcessPoolExecutor(max_workers=max(1, min(workers, len(plan.ranges))), mp_context=context) as pool:
            futures = [
                pool.submit(
                    _score_local_range,
                    str(input_path),
                    str(path),
                    plan.header_end,
                    plan.header_lines,
                    r.to_dict(),
                    store_uri,
                    pointer,
                    str(cache),
                    allow_pickle,
                    worker_options,
                )
                for r, path in zip(plan.ranges, part_paths, strict=True)
            ]
            reports = []
            for future in futures:
                reports.append(future.result())
                if options.progress is not None:
                    done = sum(int(r["rows_read"]) for r in reports)
                    options.progress(done, sum(int(r["bytes_read"]) for r in reports))
        bad = [r for r in reports if r["status"] != "succeeded"]
        total, _ = merge_reports(reports, options.max_listed)
        model_identity = {"name": pointer["name"], "version": str(pointer["version"]), "run_id": pointer.get("run_id")}
        error: MlserveError | None = None
        if bad:
            first = bad[0].get("error") or {}
            status = "rejected" if all(r["status"] == "rejected" for r in bad) else "failed"
            error = MlserveError(str(first.get("message")), code=str(first.get("code")))
            if status == "failed":
                error = MlserveError(
                    f"range {bad[0]['index']} failed: {first.get('code')}: {first.get('message')}",
                    code=str(first.get("code")),
                )
        elif total.rows_read == 0:
            status, error = "rejected", InputError("the file has a header but no data rows", code="no_rows")
        else:
            status = "succeeded"
            sink = LocalFileSink(output_path)
            try:
                for path in part_paths:
                    with open(path, "rb") as part:
                        while block := part.read(8 * 1024 * 1024):
                            sink.write(block)
                sink.commit()
            except BaseException:
                sink.abort()
                raise
    finally:
        shutil.rmtree(parts_dir, ignore_errors=True)
    report = build_report(
        status=status,
        source=source_info,
        started=started,
        ended=time.time(),
        model=None,
        result=total if status == "succeeded" else None,
        error=error,
        predictions=str(output_path) if status == "succeeded" else None,
    )
    report["model"] = model_identity
    if status == "failed" and bad:
        report["failed_ranges"] = [{"index": r["index"], "status": r["status"], "error": r.get("error")} for r in bad]
    if status == "succeeded":
        report["workers"] = {"ranges": len(plan.ranges), "processes": min(workers, len(plan.ranges))}
    stem = output_path.name.removesuffix(PREDICTIONS_SUFFIX).removesuffix(".csv")
    report_path = output_path.with_name(stem + REPORT_SUFFIX)
    report_path.write_text(json.dumps(report, indent=1))
    report["report"] = str(report_path)
    return report
