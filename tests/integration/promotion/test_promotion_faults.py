"""Fault suite: every refused promotion leaves live.json untouched, a failed manifest that
says why, and a ModelDeploymentFailed event. Registry lookups and artifact downloads are
injected (the real-server path is covered in test_promotion_flow.py)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlserve.promotion.events import ModelPromoted
from mlserve.promotion.redeploy import RedeployConfig, Redeployer, Resolved, TransientRedeployError
from mlserve.store import live_key
from tests.integration.promotion.conftest import BUS, MODEL, MODEL_BUCKET, Aws

Mutator = Callable[[Path], None]


def copy_model(src: Path, dest: Path, mutate: Mutator | None = None) -> Path:
    shutil.copytree(src, dest)
    if mutate is not None:
        mutate(dest)
    return dest


def redeployer(aws: Aws, dirs: dict[str, Path], store: Any = None, target: str | None = None) -> Redeployer:
    def resolve(promotion: ModelPromoted, dest: Path) -> Resolved:
        return Resolved(copy_model(dirs[promotion.version], dest), f"test:{promotion.version}", None)

    config = RedeployConfig(store_uri=f"s3://{MODEL_BUCKET}", bus=BUS)
    return Redeployer(
        config,
        store=store,
        events_client=aws.events,
        target_lookup=lambda p: target,
        resolver=resolve,
        s3_client=aws.s3,
    )


def live_version(aws: Aws) -> str:
    return str(json.loads(aws.s3.get_object(Bucket=MODEL_BUCKET, Key=live_key(MODEL))["Body"].read())["version"])


def failures(aws: Aws) -> list[dict[str, Any]]:
    return [
        e["detail"] for e in aws.drain(aws.outcomes_queue_url, wait=1) if e["detail-type"] == "ModelDeploymentFailed"
    ]


def manifests(aws: Aws) -> list[dict[str, Any]]:
    listing = aws.s3.list_objects_v2(Bucket=MODEL_BUCKET, Prefix=f"models/{MODEL}/deployments/")
    return [
        json.loads(aws.s3.get_object(Bucket=MODEL_BUCKET, Key=o["Key"])["Body"].read())
        for o in sorted(listing.get("Contents", []), key=lambda o: o["Key"])
    ]


@pytest.fixture
def live_v1(aws: Aws, demo_registry: Any, tmp_path: Path) -> dict[str, Path]:
    dirs = {"1": copy_model(demo_registry.classifier_dir, tmp_path / "v1")}
    outcome = redeployer(aws, dirs).redeploy(ModelPromoted(MODEL, "1", "cli"))
    assert outcome.status == "deployed"
    aws.drain(aws.outcomes_queue_url, wait=1)
    return dirs


def garbage_model_file(model_dir: Path) -> None:
    (model_dir / "model.skops").write_bytes(b"this is not a skops archive")


def drop_input_example(model_dir: Path) -> None:
    mlmodel = yaml.safe_load((model_dir / "MLmodel").read_text())
    mlmodel.pop("saved_input_example_info", None)
    (model_dir / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    for name in ("input_example.json", "serving_input_example.json"):
        (model_dir / name).unlink(missing_ok=True)


def rename_first_column(model_dir: Path) -> None:
    mlmodel = yaml.safe_load((model_dir / "MLmodel").read_text())
    inputs = json.loads(mlmodel["signature"]["inputs"])
    inputs[0]["name"] = "radius_mean"
    mlmodel["signature"]["inputs"] = json.dumps(inputs)
    (model_dir / "MLmodel").write_text(yaml.safe_dump(mlmodel))


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (garbage_model_file, "model_load_failed"),
        (drop_input_example, "missing_input_example"),
        (rename_first_column, "breaking_signature"),
    ],
    ids=["unloadable-file", "missing-input-example", "breaking-signature"],
)
def test_bad_versions_are_refused_and_live_stays(
    aws: Aws, live_v1: dict[str, Path], tmp_path: Path, mutate: Mutator, code: str
) -> None:
    live_v1["2"] = copy_model(live_v1["1"], tmp_path / "v2", mutate)
    outcome = redeployer(aws, live_v1).redeploy(ModelPromoted(MODEL, "2", "cli"))
    assert (outcome.status, outcome.code) == ("failed", code), outcome
    assert live_version(aws) == "1"
    last = manifests(aws)[-1]
    assert (last["version"], last["status"], last["code"]) == ("2", "failed", code)
    assert last["reason"]
    [failed] = failures(aws)
    assert (failed["version"], failed["code"]) == ("2", code)


def test_corrupt_artifact_fails_checksum_verification(aws: Aws, live_v1: dict[str, Path], tmp_path: Path) -> None:
    """Bytes that change between the copy and the read-back never load."""
    from mlserve.store import S3Store

    class BitRot(S3Store):
        def write_bytes(self, key: str, data: bytes, content_type: str | None = None) -> str:
            if key.endswith("versions/2/model.skops"):
                data = data[:-10] + b"0123456789"
            return super().write_bytes(key, data, content_type)

    live_v1["2"] = copy_model(live_v1["1"], tmp_path / "v2")
    (live_v1["2"] / "input_example.json").write_text((live_v1["2"] / "input_example.json").read_text() + "\n")
    store = BitRot(MODEL_BUCKET, client=aws.s3)
    outcome = redeployer(aws, live_v1, store=store).redeploy(ModelPromoted(MODEL, "2", "cli"))
    assert (outcome.status, outcome.code) == ("failed", "checksum_mismatch")
    assert "model.skops" in (outcome.reason or "")
    assert live_version(aws) == "1"
    assert failures(aws)[0]["code"] == "checksum_mismatch"


def test_s3_error_mid_copy_is_retried_and_live_stays(aws: Aws, live_v1: dict[str, Path], tmp_path: Path) -> None:
    from botocore.exceptions import ClientError

    from mlserve.store import S3Store

    class FlakyClient:
        """The S3 client, with PutObject of the model file failing like a 500 from S3."""

        fail = True

        def __init__(self, client: Any) -> None:
            self.client = client

        def put_object(self, **kwargs: Any) -> Any:
            if self.fail and "versions/2/" in kwargs["Key"] and kwargs["Key"].endswith("model.skops"):
                raise ClientError({"Error": {"Code": "InternalError", "Message": "injected"}}, "PutObject")
            return self.client.put_object(**kwargs)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.client, name)

    live_v1["2"] = copy_model(live_v1["1"], tmp_path / "v2")
    (live_v1["2"] / "MLmodel").write_text((live_v1["2"] / "MLmodel").read_text() + "\n")
    flaky_client = FlakyClient(aws.s3)
    store = S3Store(MODEL_BUCKET, client=flaky_client)  # type: ignore[arg-type]  # a duck-typed fault injector
    flaky = redeployer(aws, live_v1, store=store)
    with pytest.raises(TransientRedeployError, match="store_error"):
        flaky.redeploy(ModelPromoted(MODEL, "2", "cli"))
    assert live_version(aws) == "1"
    assert manifests(aws)[-1]["status"] == "failed"
    assert failures(aws)[0]["code"] == "store_error"
    # Lambda retries the same event; the half-copied version is completed, then goes live
    flaky_client.fail = False
    assert flaky.redeploy(ModelPromoted(MODEL, "2", "cli")).status == "deployed"
    assert live_version(aws) == "2"


def test_breaking_signature_goes_live_with_force(aws: Aws, live_v1: dict[str, Path], demo_registry: Any) -> None:
    live_v1["7"] = demo_registry.regressor_dir  # a completely different signature
    refused = redeployer(aws, live_v1).redeploy(ModelPromoted(MODEL, "7", "cli"))
    assert refused.code == "breaking_signature"
    forced = redeployer(aws, live_v1).redeploy(ModelPromoted(MODEL, "7", "cli", force=True))
    assert forced.status == "deployed"
    assert manifests(aws)[-1]["signature_check"]["forced"] is True
    assert live_version(aws) == "7"


def test_registry_force_tag_lets_a_breaking_signature_through(
    aws: Aws, live_v1: dict[str, Path], demo_registry: Any
) -> None:
    def resolve(promotion: ModelPromoted, dest: Path) -> Resolved:
        return Resolved(copy_model(demo_registry.regressor_dir, dest), "test:7", None, force=True)

    deployer = redeployer(aws, live_v1)
    deployer.resolver = resolve
    assert deployer.redeploy(ModelPromoted(MODEL, "7", "mlflow-alias")).status == "deployed"
    assert manifests(aws)[-1]["signature_check"]["forced"] is True


def test_superseded_while_staging_does_not_switch(aws: Aws, live_v1: dict[str, Path], tmp_path: Path) -> None:
    """The registry moved on between the first check and the switch."""
    live_v1["2"] = copy_model(live_v1["1"], tmp_path / "v2")
    (live_v1["2"] / "MLmodel").write_text((live_v1["2"] / "MLmodel").read_text() + "\n")
    answers = iter(["2", "3"])
    deployer = redeployer(aws, live_v1)
    deployer.target_lookup = lambda promotion: next(answers)
    outcome = deployer.redeploy(ModelPromoted(MODEL, "2", "mlflow-alias"))
    assert outcome.status == "superseded"
    assert live_version(aws) == "1"
    assert manifests(aws)[-1]["status"] == "superseded"
    assert failures(aws) == []


def test_rollback_restores_previous_successful_version(aws: Aws, live_v1: dict[str, Path], tmp_path: Path) -> None:
    from mlserve.promotion.status import rollback, status
    from mlserve.store import open_store

    live_v1["2"] = copy_model(live_v1["1"], tmp_path / "v2")
    (live_v1["2"] / "MLmodel").write_text((live_v1["2"] / "MLmodel").read_text() + "\n")
    live_v1["3"] = copy_model(live_v1["1"], tmp_path / "v3", garbage_model_file)
    deployer = redeployer(aws, live_v1)
    assert deployer.redeploy(ModelPromoted(MODEL, "2", "cli")).status == "deployed"
    assert deployer.redeploy(ModelPromoted(MODEL, "3", "cli")).status == "failed"
    store = open_store(f"s3://{MODEL_BUCKET}", s3_client=aws.s3)
    result = rollback(store, MODEL, requested_by="test")
    assert result.pointer["version"] == "1" and live_version(aws) == "1"
    report = status(store, MODEL)
    assert [(a["version"], a["status"]) for a in report["attempts"]] == [
        ("1", "succeeded"),
        ("3", "failed"),
        ("2", "succeeded"),
        ("1", "succeeded"),
    ]
    with pytest.raises(Exception, match="never deployed successfully"):
        rollback(store, MODEL, "3", requested_by="test")
