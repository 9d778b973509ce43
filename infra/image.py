"""Container-image packaging (context ``packaging=image``): the API, batch and redeploy
functions run from ONE image (different ``cmd``), for models whose libraries exceed the
zip budget (LightGBM, XGBoost, CatBoost). The webhook stays zip.

The image is ``layers/image/Dockerfile``: ``FROM ${BASE_IMAGE}`` (default: the official
Lambda Python base for ``python_runtime`` and ``architecture``), then COPY only. Its build
context is staged here, Docker-free, like the zip layers: the Python dependencies are
installed on the host with ``pip --target --platform --only-binary=:all: --no-deps`` from
one fully pinned list, so ``cdk deploy`` needs Docker, podman or finch only to assemble the
layers and push them (no RUN step, no network inside the build).

Dependencies = the serving set (``layers/deps/requirements.txt``) + the model's own
requirements (context ``image_extra_requirements``: pins, or the ``requirements.txt`` MLflow
logged beside ``MLmodel``), filtered through ``ALLOWED_EXTRA_PACKAGES``.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Annotations, Stack
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.config import ConfigError, ServingConfig

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO_ROOT / "layers" / "image" / "Dockerfile"
SERVING_REQUIREMENTS = REPO_ROOT / "layers" / "deps" / "requirements.txt"
DEFAULT_IMAGE_CACHE = REPO_ROOT / ".cache" / "image"
# The runtime code the image carries: the shared package and the three image handlers.
APP_PACKAGES = (
    REPO_ROOT / "layers" / "common" / "python" / "mlserve",
    REPO_ROOT / "lambda_api",
    REPO_ROOT / "lambda_batch",
    REPO_ROOT / "lambda_promote",
)
# Functions that run from the image; every other handler (the webhook) stays zip.
IMAGE_HANDLERS = frozenset(
    {"lambda_api.handler.handler", "lambda_batch.handler.handler", "lambda_promote.redeploy.handler"}
)
# Packages a model's requirements may add to the image: model libraries whose loaders
# mlserve reviews (mlserve/boosted.py, trusted_types.py) plus the serving set's own names.
# Anything else a requirements.txt lists (mlflow, pytest, the training project) is dropped
# with a synth warning: the image runs inference code only.
ALLOWED_EXTRA_PACKAGES = frozenset({"lightgbm", "xgboost-cpu", "catboost"})
# Same library, smaller wheel: `xgboost` pulls a ~300 MB NVIDIA NCCL wheel on Linux.
RENAMED_PACKAGES = {"xgboost": "xgboost-cpu"}
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([A-Za-z0-9.+!_-]+)$")


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class ImageRequirements:
    pins: tuple[str, ...]  # "name==version", sorted, what the image installs
    dropped: tuple[str, ...]  # model requirements left out, with the reason


def read_pins(lines: list[str], source: str) -> dict[str, str]:
    pins: dict[str, str] = {}
    for raw in lines:
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if not line:
            continue
        match = _PIN.match(line)
        if match is None:
            raise ConfigError(
                f"context 'image_extra_requirements': {line!r} in {source} is not pinned as name==version"
            )
        pins[normalized(match.group(1))] = match.group(2)
    return pins


def image_requirements(config: ServingConfig, root: Path = REPO_ROOT) -> ImageRequirements:
    serving = read_pins(SERVING_REQUIREMENTS.read_text().splitlines(), str(SERVING_REQUIREMENTS))
    extra_source = config.image_extra_requirements
    if isinstance(extra_source, str):
        path = (root / extra_source).resolve()
        if not path.is_file():
            raise ConfigError(f"context 'image_extra_requirements' names {extra_source!r}, which is not a file")
        extra = read_pins(path.read_text().splitlines(), extra_source)
    else:
        extra = read_pins(list(extra_source), "the context list")
    pins = dict(serving)
    dropped: list[str] = []
    for name, version in sorted(extra.items()):
        name = RENAMED_PACKAGES.get(name, name)
        if name in serving:
            if version != serving[name]:
                raise ConfigError(
                    f"context 'image_extra_requirements': the model needs {name}=={version} but mlserve serves "
                    f"with {name}=={serving[name]} (layers/deps/requirements.txt); retrain with that version"
                )
            continue
        if name not in ALLOWED_EXTRA_PACKAGES:
            dropped.append(f"{name}=={version} (not on the image allow-list in infra/image.py)")
            continue
        pins[name] = version
    return ImageRequirements(tuple(f"{n}=={v}" for n, v in sorted(pins.items())), tuple(dropped))


def official_base_image(python_runtime: str, architecture: str) -> str:
    """AWS's Lambda base image for the runtime, e.g. public.ecr.aws/lambda/python:3.14-arm64."""
    version = python_runtime.removeprefix("python")
    return f"public.ecr.aws/lambda/python:{version}-{architecture}"


def base_image(config: ServingConfig) -> str:
    return config.image_base or official_base_image(config.python_runtime, config.architecture)


def pip_platform_tags(architecture: str) -> list[str]:
    machine = {"arm64": "aarch64", "x86_64": "x86_64"}[architecture]
    return [f"manylinux_2_28_{machine}", f"manylinux2014_{machine}", f"manylinux_2_17_{machine}"]


def install_site(pins: tuple[str, ...], target: Path, *, architecture: str, python_version: str) -> None:
    """The image's site-packages, for the target platform, without Docker."""
    requirements = target.parent / f"{target.name}.requirements.txt"
    requirements.write_text("\n".join(pins) + "\n")
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--only-binary=:all:"]
    command += ["--target", str(target), "--python-version", python_version, "--implementation", "cp"]
    for tag in pip_platform_tags(architecture):
        command += ["--platform", tag]
    command += ["-r", str(requirements)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        shutil.rmtree(target, ignore_errors=True)
        raise RuntimeError(f"pip could not build the image's site-packages:\n{result.stderr[-3000:]}")
    for cache in target.rglob("__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)


def cached_site(pins: tuple[str, ...], *, architecture: str, python_version: str, cache_root: Path) -> Path:
    key = hashlib.sha256("\n".join([*pins, architecture, python_version]).encode()).hexdigest()[:16]
    site = cache_root / f"site-{python_version}-{architecture}-{key}"
    if not site.is_dir():
        cache_root.mkdir(parents=True, exist_ok=True)
        partial = cache_root / f"{site.name}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        install_site(pins, partial, architecture=architecture, python_version=python_version)
        partial.rename(site)
    return site


def _ignore_bytecode(_directory: str, names: list[str]) -> set[str]:
    return {name for name in names if name == "__pycache__" or name.endswith(".pyc")}


def stage_context(
    config: ServingConfig,
    *,
    install: bool = True,
    cache_root: Path = DEFAULT_IMAGE_CACHE,
    root: Path = REPO_ROOT,
) -> Path:
    """The image's build context: Dockerfile, requirements.txt (what is installed), python/
    (site-packages for the target platform; empty when ``install`` is false, as in a synth
    without bundling) and app/ (mlserve + handlers). Rebuilt on every call, site cached."""
    requirements = image_requirements(config, root)
    context = cache_root / f"context-{config.architecture}"
    shutil.rmtree(context, ignore_errors=True)
    (context / "python").mkdir(parents=True)
    shutil.copy2(DOCKERFILE, context / "Dockerfile")
    (context / "requirements.txt").write_text("\n".join(requirements.pins) + "\n")
    if install:
        site = cached_site(
            requirements.pins,
            architecture=config.architecture,
            python_version=config.layer_python_version,
            cache_root=cache_root,
        )
        shutil.rmtree(context / "python")
        shutil.copytree(site, context / "python", symlinks=True)
    for package in APP_PACKAGES:
        shutil.copytree(package, context / "app" / package.name, ignore=_ignore_bytecode)
    return context


def uses_image(config: ServingConfig, handler: str) -> bool:
    return config.packaging == "image" and handler in IMAGE_HANDLERS


_ECR_URI = re.compile(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/([a-z0-9._/-]+):([A-Za-z0-9._-]+)$")


# Stack address -> its staged context: staged once per synth, shared by the three functions.
_STAGED_CONTEXTS: dict[str, str] = {}


def image_code(scope: Construct, config: ServingConfig, handler: str) -> lambda_.Code:
    """The function's image: the already-built ``image_uri`` (an ECR URI), or the asset built
    from the staged context (one asset for every function: same directory, same hash)."""
    if config.image_uri:
        match = _ECR_URI.match(config.image_uri)
        if match is None:
            raise ConfigError(
                "context 'image_uri' must be an ECR image URI like "
                f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/mlserve:tag, got {config.image_uri!r}"
            )
        account, region, repository_name, tag = match.groups()
        stack = Stack.of(scope)
        repository_id = "MlserveImageRepository"
        repository = stack.node.try_find_child(repository_id) or ecr.Repository.from_repository_attributes(
            stack,
            repository_id,
            repository_arn=f"arn:aws:ecr:{region}:{account}:repository/{repository_name}",
            repository_name=repository_name,
        )
        return lambda_.Code.from_ecr_image(repository, tag_or_digest=tag, cmd=[handler])  # type: ignore[arg-type]
    stack = Stack.of(scope)
    context = _STAGED_CONTEXTS.get(stack.node.addr)
    if context is None:
        context = str(stage_context(config, install=stack.bundling_required))
        _STAGED_CONTEXTS[stack.node.addr] = context
        dropped = image_requirements(config).dropped
        if dropped:
            Annotations.of(stack).add_warning_v2(
                "mlserve:image-requirements-dropped",
                "image_extra_requirements: left out of the image: " + "; ".join(dropped),
            )
    return lambda_.Code.from_asset_image(
        str(context),
        cmd=[handler],
        build_args={"BASE_IMAGE": base_image(config)},
        platform=ecr_assets.Platform.LINUX_ARM64 if config.architecture == "arm64" else ecr_assets.Platform.LINUX_AMD64,
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m infra.image stage -c key=value …``: stage the build context with
    cdk.json's context plus overrides and print its path (layers/image/build.sh uses it)."""
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m infra.image")
    parser.add_argument("command", choices=["stage", "requirements"])
    parser.add_argument("-c", "--context", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    for item in args.context:
        key, _, value = item.partition("=")
        context[key] = value
    config = ServingConfig.from_mapping(context)
    if args.command == "requirements":
        requirements = image_requirements(config)
        print("\n".join(requirements.pins))
        for dropped in requirements.dropped:
            print(f"# left out: {dropped}", file=sys.stderr)
        return 0
    print(stage_context(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
