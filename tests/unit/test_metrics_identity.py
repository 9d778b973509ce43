"""Metrics of two model identities pending at once (a 4xx before a model loaded, then a
prediction; a hot swap; two S3 records of one batch event) are emitted as two EMF blobs,
each under its own dimensions: no Powertools "Dimension ... has already been added" warning,
and no metric re-labelled with the other model's version."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass

import pytest

from mlserve import observability


@dataclass
class Identity:
    name: str
    version: str


@dataclass
class Model:
    identity: Identity


def test_each_identity_gets_its_own_blob_and_no_warning(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    observability.metrics.clear_metrics()
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the Powertools warning would raise here
        observability.record_validation_error(None, "invalid_input")
        observability.record_prediction(Model(Identity("demo-classifier", "1")), rows=3)
        observability.record_prediction(Model(Identity("demo-classifier", "2")), rows=5)
        observability.metrics.flush_metrics()
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    labelled = [
        (b["model_version"], b.get(observability.VALIDATION_ERRORS), b.get(observability.PREDICTIONS)) for b in blobs
    ]
    assert labelled == [("unknown", [1.0], None), ("1", None, [3.0]), ("2", None, [5.0])]
