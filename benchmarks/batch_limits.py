"""The security review's hostile batch inputs, scored with the default limits (issue 11).

    python -m benchmarks.batch_limits

Each input is scored by `mlserve score`'s code path (`score_local`, default BatchOptions from
the environment, i.e. the batch Lambda's defaults) in a fresh subprocess; printed per input:
the report's status and error code, how far it read, wall seconds, and the subprocess's peak
RSS. Inputs (written once into a temp dir; zlib level 9 for the bomb, 1 otherwise):
  - gzip bomb: ~2-9 MB of gzip expanding to 2 GiB of one valid demo row repeated (review: a
    2 MB gzip expanding to 2 GiB took a minute);
  - long line: ~1 MB of gzip holding the header and ONE 1 GiB line (review: 3.4 GB RSS, killed);
  - wide header: 100,000 columns (review: quadratic `list.count`).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

from benchmarks.common import demo_store, write_results

SCRIPT = """
import json, resource, sys, time
from pathlib import Path
from mlserve.batch.core import BatchOptions
from mlserve.batch.job import score_local
from mlserve.live import LiveModel
from mlserve.store import open_store
store, cache, src, out = sys.argv[1:5]
live = LiveModel(open_store(store), "demo-classifier", cache_dir=Path(cache))
live.get()
started = time.perf_counter()
report = score_local(src, out, live, BatchOptions.from_env())
seconds = time.perf_counter() - started
print(json.dumps({"status": report["status"], "error": (report.get("error") or {}).get("code"),
                  "progress": report.get("progress"), "seconds": round(seconds, 2),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
"""


def gzip_stream(path: Path, head: bytes, block: bytes, repeats: int, tail: bytes = b"", level: int = 1) -> None:
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
    with open(path, "wb") as handle:
        handle.write(compressor.compress(head))
        for _ in range(repeats):
            handle.write(compressor.compress(block))
        handle.write(compressor.compress(tail))
        handle.write(compressor.flush())


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="mlserve-limits-"))
    store_uri, _, features = demo_store(workdir)
    text = features.head(200).to_csv(index=False)
    header, rows = text.split("\n", 1)
    inputs: dict[str, Path] = {}

    bomb = workdir / "bomb.csv.gz"
    one_row = (rows.split("\n", 1)[0] + "\n").encode()  # one valid row, repeated: ~1000x gzip
    block = one_row * ((1024 * 1024) // len(one_row))
    gzip_stream(bomb, (header + "\n").encode(), block, (2 * 1024**3) // len(block), level=9)
    inputs["gzip bomb (2 GiB of rows)"] = bomb

    line = workdir / "line.csv.gz"
    gzip_stream(line, (header + "\n").encode(), b"7" * (1024 * 1024), 1024, b"\n")
    inputs["one 1 GiB line"] = line

    wide = workdir / "wide.csv"
    extra = [f"x{i}" for i in range(100_000 - len(features.columns))]
    first_row = rows.split("\n", 1)[0]
    wide.write_text(",".join([*features.columns, *extra]) + "\n" + first_row + ",0" * len(extra) + "\n")
    inputs["100k-column header"] = wide

    results = {}
    for name, path in inputs.items():
        proc = subprocess.run(
            [sys.executable, "-c", SCRIPT, store_uri, str(workdir / "cache"), str(path), str(workdir / "out.csv")],
            capture_output=True,
            text=True,
            check=True,
        )
        figures = json.loads(proc.stdout.strip().splitlines()[-1])
        figures["input_bytes"] = path.stat().st_size
        results[name] = figures
        print(f"{name:28s} {json.dumps(figures)}")
    write_results("batch_limits", {"results": results})


if __name__ == "__main__":
    main()
