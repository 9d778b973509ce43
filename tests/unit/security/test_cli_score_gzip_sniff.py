"""Issue 11 (Low): `mlserve score` sniffs gzip from two bytes, not by reading the whole input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest


def test_score_never_reads_the_whole_input_to_sniff(
    batch_store: Any,
    breast_cancer: pd.DataFrame,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from mlserve.cli import main

    source = tmp_path / "in.csv.gz"
    source.write_bytes(gzip.compress(breast_cancer.head(30).to_csv(index=False).encode()))

    real = Path.read_bytes

    def whole_file(self: Path) -> bytes:
        if self.resolve() == source.resolve():
            raise AssertionError(f"read the whole of {self} into memory")
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", whole_file)
    code = main(["score", str(source), "--store", batch_store.uri, "--name", "demo-classifier", "--quiet"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["status"] == "succeeded" and summary["rows_scored"] == 30


def test_is_gzip_file_reads_two_bytes(tmp_path: Path) -> None:
    from mlserve.batch.reader import is_gzip_file

    plain, packed = tmp_path / "a.csv", tmp_path / "a.csv.gz"
    plain.write_bytes(b"a\n1\n")
    packed.write_bytes(gzip.compress(b"a\n1\n"))
    assert not is_gzip_file(plain) and is_gzip_file(packed)
