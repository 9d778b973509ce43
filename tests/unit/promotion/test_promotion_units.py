"""Pure pieces of mlserve.promotion: event mapping, signature compatibility, HMAC."""

from __future__ import annotations

from typing import Any

import pytest

from mlserve.mlmodel import ColumnSpec, ModelSpec
from mlserve.promotion.compat import signature_changes
from mlserve.promotion.events import EventError, ModelPromoted, promotion_from_eventbridge
from mlserve.promotion.webhook import sign, verify_signature


def spec(*columns: ColumnSpec, output: str = "tensor") -> ModelSpec:
    return ModelSpec(
        model_file="model.skops",
        serialization_format="skops",
        sklearn_version=None,
        inputs=columns,
        outputs=[{"type": output}],
        input_example=None,
        run_id=None,
        model_uuid=None,
        python_version=None,
    )


A, B = ColumnSpec("a", "double"), ColumnSpec("b", "long")


@pytest.mark.parametrize(
    ("new", "breaking", "compatible"),
    [
        (spec(A, B), 0, 0),
        (spec(A), 1, 0),  # removed
        (spec(A, ColumnSpec("b", "string")), 1, 0),  # retyped
        (spec(A, ColumnSpec("b", "double")), 0, 1),  # numeric widening
        (spec(A, B, ColumnSpec("c", "double")), 1, 0),  # new required
        (spec(A, B, ColumnSpec("c", "double", required=False)), 0, 1),  # new optional
        (spec(A, B, output="string"), 1, 0),
    ],
)
def test_signature_changes(new: ModelSpec, breaking: int, compatible: int) -> None:
    found = signature_changes(spec(A, B), new)
    assert (len(found[0]), len(found[1])) == (breaking, compatible), found


def test_signature_matches_mlflow() -> None:
    from mlflow.webhooks.delivery import _generate_hmac_signature

    assert sign("k", "d", "1", '{"x": 1}') == _generate_hmac_signature("k", "d", "1", '{"x": 1}')
    good = sign("k", "d", "1", "{}")
    assert verify_signature(["old", "k"], "d", "1", "{}", good)
    assert not verify_signature(["k"], "d", "2", "{}", good)
    assert not verify_signature(["k"], "d", "1", "{}", "v0," + good[3:])


def test_model_promoted_round_trip_and_validation() -> None:
    promotion = ModelPromoted("m", "3", "cli", force=True)
    event = {"source": "mlserve.registry", "detail-type": "ModelPromoted", "detail": promotion.to_detail()}
    parsed = promotion_from_eventbridge(event)
    assert parsed is not None and parsed.version == "3" and parsed.model_name == "m"
    assert not parsed.force  # a plain ModelPromoted never forces (docs/security.md)
    forced = promotion_from_eventbridge({**event, "detail-type": "ModelPromotionForced"})
    assert forced == promotion and forced.force
    with pytest.raises(EventError):
        ModelPromoted("m", "1", "carrier-pigeon")
    with pytest.raises(EventError):
        promotion_from_eventbridge({"source": "x", "detail-type": "Other", "detail": {}})
    with pytest.raises(EventError, match="missing"):
        ModelPromoted.from_detail({"model_name": "m"})


def test_sagemaker_mapping_filters_group_and_status() -> None:
    event: dict[str, Any] = {
        "source": "aws.sagemaker",
        "detail-type": "SageMaker Model Package State Change",
        "id": "e-1",
        "time": "2026-01-01T00:00:00Z",
        "detail": {
            "ModelPackageGroupName": "g",
            "ModelPackageVersion": 5,
            "ModelApprovalStatus": "Approved",
            "InferenceSpecification": {"Containers": [{"ModelDataUrl": "s3://b/m/model.tar.gz"}]},
            "CustomerMetadataProperties": {"mlflow_run_id": "r1", "mlserve_force": "true"},
        },
    }
    promotion = promotion_from_eventbridge(event, package_group="g", model_name="demo")
    assert promotion is not None
    # force comes from DescribeModelPackage at redeploy time, never from the event
    assert (promotion.model_name, promotion.version, promotion.run_id, promotion.force) == ("demo", "5", "r1", False)
    assert promotion_from_eventbridge(event, package_group="other") is None
    event["detail"]["ModelApprovalStatus"] = "Rejected"
    assert promotion_from_eventbridge(event, package_group="g") is None
