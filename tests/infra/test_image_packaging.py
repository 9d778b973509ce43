"""Context ``packaging=image``: API, batch and redeploy become PackageType Image functions
from ONE image (different ImageConfig.Command), the webhook stays zip, the default synth has
no image, cdk-nag stays clean; the image's requirements are the serving set plus the
model's allow-listed, pinned libraries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.config import ConfigError, ServingConfig
from infra.image import IMAGE_HANDLERS, image_requirements, official_base_image
from tests.infra.conftest import CDK_JSON_CONTEXT, Synth, synth
from tests.infra.test_nag import validation_report

COMMANDS = {
    "OnlineApiFunction": "lambda_api.handler.handler",
    "BatchScoringFunction": "lambda_batch.handler.handler",
    "PromotionRedeploy": "lambda_promote.redeploy.handler",
}


@pytest.fixture(scope="module")
def image_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synth(outdir=str(tmp_path_factory.mktemp("cdk.out")), packaging="image")


def functions(result: Synth) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in result.of_type("AWS::Lambda::Function").items()}


def by_prefix(result: Synth, prefix: str) -> dict[str, Any]:
    [props] = [props for logical_id, props in functions(result).items() if logical_id.startswith(prefix)]
    return props


def test_api_batch_and_redeploy_are_image_functions_from_one_image(image_synth: Synth) -> None:
    uris = set()
    for prefix, command in COMMANDS.items():
        props = by_prefix(image_synth, prefix)
        assert props["PackageType"] == "Image"
        assert props["ImageConfig"] == {"Command": [command]}
        assert "Handler" not in props and "Runtime" not in props and "Layers" not in props
        uris.add(str(props["Code"]["ImageUri"]))
        # Same behaviour as zip: the environment, tracing and JSON logs are unchanged.
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert props["Environment"]["Variables"]["MLSERVE_MODEL_NAME"] == CDK_JSON_CONTEXT["model_name"]
    assert len(uris) == 1, uris
    webhook = by_prefix(image_synth, "PromotionWebhook")
    assert webhook.get("PackageType") is None and webhook["Handler"] == "lambda_promote.webhook.handler"
    assert set(COMMANDS.values()) == IMAGE_HANDLERS


def test_default_synth_has_no_image(default_synth: Synth) -> None:
    assert all("PackageType" not in props for props in functions(default_synth).values())


def test_image_synth_is_cdk_nag_clean(image_synth: Synth) -> None:
    report = validation_report(image_synth)
    for plugin in report["pluginReports"]:
        assert plugin["violations"] == [], (plugin["pluginName"], plugin["violations"])


def test_alarms_cover_the_image_functions_as_for_zip(image_synth: Synth, default_synth: Synth) -> None:
    assert len(image_synth.of_type("AWS::CloudWatch::Alarm")) == len(default_synth.of_type("AWS::CloudWatch::Alarm"))


def test_prebuilt_image_uri(tmp_path: Path) -> None:
    uri = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/mlserve:v1"
    result = synth(outdir=str(tmp_path), packaging="image", image_uri=uri)
    image_uri = by_prefix(result, "OnlineApiFunction")["Code"]["ImageUri"]
    assert "123456789012.dkr.ecr.eu-west-1" in str(result.stack.resolve(image_uri)) and ":v1" in str(image_uri)


def config(**context: Any) -> ServingConfig:
    return ServingConfig.from_mapping({**CDK_JSON_CONTEXT, **context})


def test_model_requirements_filtered_through_allow_list(tmp_path: Path) -> None:
    logged = tmp_path / "requirements.txt"
    logged.write_text("mlflow==3.17.2\ncatboost==1.2.10\nxgboost==3.2.0\nnumpy==2.4.6\npytest==9.2.0\n")
    result = image_requirements(config(packaging="image", image_extra_requirements=str(logged)))
    assert "catboost==1.2.10" in result.pins and "xgboost-cpu==3.2.0" in result.pins  # renamed: no NVIDIA wheel
    assert not any(pin.startswith(("mlflow", "pytest", "xgboost==")) for pin in result.pins)
    assert any(item.startswith("mlflow==") for item in result.dropped)
    assert "scikit-learn==1.9.1" in result.pins  # the serving set


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["lightgbm>=4"], "not pinned"),
        (["numpy==1.26.4"], "mlserve serves with numpy"),
        ("missing/requirements.txt", "not a file"),
    ],
)
def test_bad_image_requirements_name_the_key(extra: Any, message: str) -> None:
    with pytest.raises(ConfigError, match="image_extra_requirements") as error:
        image_requirements(config(packaging="image", image_extra_requirements=extra))
    assert message in str(error.value)


def test_packaging_and_image_keys_validated() -> None:
    with pytest.raises(ConfigError, match="'packaging'"):
        config(packaging="docker")
    with pytest.raises(ConfigError, match="'image_uri'"):
        config(image_uri="Not An Image!")
    assert official_base_image("python3.14", "arm64") == "public.ecr.aws/lambda/python:3.14-arm64"
