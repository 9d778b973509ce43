"""Peak memory does not grow with the file: a file 10x the bound scores within the bound."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd

BOUND_MB = 16
# Measured in a fresh interpreter so pytest's own allocations do not blur ru_maxrss.
SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    from pathlib import Path
    from mlserve.batch.core import BatchOptions
    from mlserve.batch.job import score_local
    from mlserve.live import LiveModel
    from mlserve.store import open_store

    store_uri, name, cache, warm, big, out = sys.argv[1:7]
    live = LiveModel(open_store(store_uri), name, cache_dir=Path(cache))
    options = BatchOptions(chunk_bytes=4 * 1024 * 1024)
    score_local(warm, out, live, options)  # warm-up: imports, model, chunk-sized buffers
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    report = score_local(big, out, live, options)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"before_kb": before, "after_kb": after, "rows": report["rows_scored"],
                      "status": report["status"]}))
    """
)


def write_repeated(path: Path, header: str, block: str, target_bytes: int) -> None:
    with open(path, "w") as handle:
        handle.write(header)
        written = 0
        while written < target_bytes:
            handle.write(block)
            written += len(block)


def test_peak_rss_is_flat(batch_store: Any, breast_cancer: pd.DataFrame, tmp_path: Path) -> None:
    text = breast_cancer.to_csv(index=False)
    header, block = text[: text.index("\n") + 1], text[text.index("\n") + 1 :]
    warm, big = tmp_path / "warm.csv", tmp_path / "big.csv"
    write_repeated(warm, header, block, 24 * 1024 * 1024)
    write_repeated(big, header, block, 10 * BOUND_MB * 1024 * 1024)
    assert big.stat().st_size >= 10 * BOUND_MB * 1024 * 1024

    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            SCRIPT,
            batch_store.uri,
            "demo-classifier",
            str(tmp_path / "cache"),
            str(warm),
            str(big),
            str(tmp_path / "out.csv"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["status"] == "succeeded" and result["rows"] > 500_000
    growth_mb = (result["after_kb"] - result["before_kb"]) / 1024
    print(f"peak RSS {result['before_kb'] >> 10} MB -> {result['after_kb'] >> 10} MB for {result['rows']} rows")
    assert growth_mb < BOUND_MB, f"peak RSS grew by {growth_mb:.1f} MB scoring a {big.stat().st_size >> 20} MB file"
