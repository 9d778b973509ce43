"""`make demo`'s banner names the web page; class display names come from the model's
MLmodel metadata (logged by examples/train.py) into /predict's `labels`."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from examples.demo import curl_examples
from examples.train import breast_cancer_class_labels
from mlserve.labels import class_labels, label_fields
from mlserve.mlmodel import read_model_spec


def test_banner_names_the_web_page_first() -> None:
    banner = curl_examples("http://127.0.0.1:8000", {"a": 1.0})
    first = banner.splitlines()[0]
    assert first.startswith("Ready. The web page") and first.endswith("http://127.0.0.1:8000/")
    assert "curl -s http://127.0.0.1:8000/predict" in banner


def test_demo_classifier_is_logged_with_display_names(demo_registry: Any) -> None:
    assert breast_cancer_class_labels() == {"0": "malignant", "1": "benign"}
    spec = read_model_spec(demo_registry.classifier_dir)
    assert class_labels(spec) == {"0": "malignant", "1": "benign"}
    assert label_fields(spec, [0, 1, 1]) == {"labels": ["malignant", "benign", "benign"]}


def test_models_without_labels_or_with_bad_ones_add_nothing(demo_registry: Any) -> None:
    regressor = read_model_spec(demo_registry.regressor_dir)
    assert class_labels(regressor) is None and label_fields(regressor, [151.2]) == {}
    broken = replace(regressor, raw={**regressor.raw, "metadata": {"class_labels": ["not", "a", "mapping"]}})
    assert label_fields(broken, [1]) == {}
    partial = replace(regressor, raw={**regressor.raw, "metadata": {"class_labels": {1.0: "one"}}})
    assert label_fields(partial, [1, 2]) == {"labels": ["one", "2"]}
