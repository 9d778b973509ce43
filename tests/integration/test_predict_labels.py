"""/predict through the real Lambda handler: the demo classifier (logged with class_labels)
answers numeric `predictions` as before and their display names in `labels`."""

from __future__ import annotations

import json
from typing import Any

from tests.apigw_events import rest_v1_event
from tests.integration.test_lambda_api import JSON, call, handler, rows

__all__ = ["handler"]  # the fixture, shared with test_lambda_api


def test_predict_adds_display_labels_beside_numeric_predictions(handler: Any, breast_cancer: Any) -> None:
    payload = {"instances": rows(breast_cancer, 25)}
    status, _, body = call(handler, rest_v1_event("POST", "/predict", json.dumps(payload), JSON))
    assert status == 200, body
    assert set(body["predictions"]) == {0, 1}  # the sample holds both classes
    assert body["labels"] == [{0: "malignant", 1: "benign"}[p] for p in body["predictions"]]
