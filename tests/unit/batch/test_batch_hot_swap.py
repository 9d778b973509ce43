"""A promotion that lands mid-file does not change the version scoring that file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from tests.conftest import publish


def test_one_version_per_file(
    local_store: Any, demo_registry: Any, breast_cancer: pd.DataFrame, tmp_path: Path
) -> None:
    from mlserve.batch.core import BatchOptions
    from mlserve.batch.job import score_local
    from mlserve.live import LiveModel

    publish(local_store, demo_registry.classifier_dir, version="1")
    live = LiveModel(local_store, "demo-classifier", refresh_seconds=0, cache_dir=tmp_path / "cache")
    promoted: list[str] = []

    def promote_mid_file(rows: int, consumed: int) -> None:
        if not promoted:
            publish(local_store, demo_registry.classifier_dir, version="2")
            promoted.append(live.get().identity.version)  # the live model has really moved on

    src = tmp_path / "in.csv"
    pd.concat([breast_cancer] * 4, ignore_index=True).to_csv(src, index=False)
    report = score_local(
        src, tmp_path / "out.csv", live, BatchOptions(chunk_bytes=64 * 1024, progress=promote_mid_file)
    )
    assert promoted == ["2"]
    assert report["model"]["version"] == "1"
    assert set(pd.read_csv(tmp_path / "out.csv")["model_version"].astype(str)) == {"1"}
