"""`mlserve score --workers N`: the fan-out's range splitting on one machine, in processes.

The same plan (``mlserve.batch.ranges``), range scorer (``fanout.score_range_into``) and
report merge (``fanout.merge_reports``) as the Step Functions fan-out, so the output is
byte-identical to one worker. One model version for the whole file: the parent reads the live
pointer once and every process loads exactly that version. gzip input is not splittable: it
is scored by one worker.

Where the time goes with N workers, and why it is arranged this way: a spawned process costs
an interpreter start, the pandas/scikit-learn imports and a model load (~2-3 s of CPU), so
the parent process is one of the N - it scores range 0 straight into the output's temp file
while N - 1 spawned processes score the other ranges into part files - and the spawned
processes start (and load the model) while the parent is still planning. The other parts are
then appended in range order inside the kernel (``LocalFileSink.append_file``), not copied
through Python.
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
from mlserve.batch.fanout import HeaderThenRange, merge_reports, merged_report, score_range_into
from mlserve.batch.output import LocalFileSink, Sink
from mlserve.batch.overlap import WriteBehind
from mlserve.batch.ranges import ByteRange, plan_ranges
from mlserve.contract import PREDICTIONS_SUFFIX, REPORT_SUFFIX
from mlserve.errors import InputError, MlserveError, ModelUnavailableError
from mlserve.live import load_version, read_pointer
from mlserve.scoring import LoadedModel
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


# Models loaded in this (worker) process, by (store, name, version): the warm-up task and
# the range task of a worker share one load.
_LOADED: dict[tuple[str, str, str], LoadedModel] = {}


def _load_pinned(store_uri: str, pointer: dict[str, Any], cache_dir: str, allow_pickle: bool) -> LoadedModel:
    key = (store_uri, str(pointer["name"]), str(pointer["version"]))
    if key not in _LOADED:
        _LOADED[key] = load_version(open_store(store_uri), pointer, Path(cache_dir), allow_pickle=allow_pickle)
    return _LOADED[key]


def _warm_up(store_uri: str, pointer: dict[str, Any], cache_dir: str, allow_pickle: bool) -> None:
    """Start a worker (interpreter, imports, model) while the parent still plans the ranges."""
    _load_pinned(store_uri, pointer, cache_dir, allow_pickle)


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
    model = _load_pinned(store_uri, pointer, cache_dir, allow_pickle)
    part = WriteBehind(LocalFileSink(Path(part_path)))
    return _score_range_with(input_path, part, header_end, header_lines, item, model, options)


def _score_range_with(
    input_path: str,
    sink: Sink,
    header_end: int,
    header_lines: int,
    item: dict[str, int],
    model: LoadedModel,
    options: BatchOptions,
) -> dict[str, Any]:
    byte_range = ByteRange.from_dict(item)
    with open(input_path, "rb") as handle:
        header = handle.read(header_end)
        source = HeaderThenRange(header, _FileRange(handle, byte_range.start, byte_range.end))
        return score_range_into(source, sink, model, options, byte_range, header_lines)


class _OutputHead:
    """The output's own sink, lent to range 0 (scored in the parent): writes go straight into
    the output's temp file; committing or aborting stays with the parent, which appends the
    other ranges' parts first (or aborts if any range failed)."""

    def __init__(self, sink: Sink) -> None:
        self._sink = sink

    def write(self, data: bytes) -> None:
        self._sink.write(data)

    def commit(self) -> None:
        pass

    def abort(self) -> None:
        pass


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
    processes = max(1, workers - 1)  # the parent scores range 0 itself
    worker_options = dataclasses.replace(options, progress=None)  # callables do not cross processes
    output_path.parent.mkdir(parents=True, exist_ok=True)
    parts_dir = Path(tempfile.mkdtemp(dir=output_path.parent, prefix=f".{output_path.name}.parts."))
    context = multiprocessing.get_context("spawn")  # no fork of a process holding threads/locks
    sink = LocalFileSink(output_path)
    committed = False
    try:
        with ProcessPoolExecutor(max_workers=processes, mp_context=context) as pool:
            if size > 2 * MIN_LOCAL_RANGE_BYTES:  # else one range: nothing for a worker to do
                for _ in range(processes):
                    pool.submit(_warm_up, store_uri, pointer, str(cache), allow_pickle)
            with open(input_path, "rb") as handle:
                plan = plan_ranges(handle, max(-(-size // workers), MIN_LOCAL_RANGE_BYTES))
            part_paths = [parts_dir / f"{r.index:05d}.csv" for r in plan.ranges]
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
                for r, path in zip(plan.ranges[1:], part_paths[1:], strict=True)
            ]
            model = _load_pinned(store_uri, pointer, str(cache), allow_pickle)
            head = WriteBehind(_OutputHead(sink))
            reports = [
                _score_range_with(
                    str(input_path),
                    head,
                    plan.header_end,
                    plan.header_lines,
                    plan.ranges[0].to_dict(),
                    model,
                    worker_options,
                )
            ]
            head.drain(raise_errors=False)  # range 0's bytes are in the sink (or its report says why not)
            if options.progress is not None:
                options.progress(int(reports[0]["rows_read"]), int(reports[0]["bytes_read"]))
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
            for path in part_paths[1:]:
                sink.append_file(path)
            sink.commit()
            committed = True
    finally:
        if not committed:
            sink.abort()
        shutil.rmtree(parts_dir, ignore_errors=True)
    report = merged_report(status, source_info, started, total, error, str(output_path))
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
