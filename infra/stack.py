"""The one deployable stack: model store, shared layers, online API (batch and promotion
constructs plug in the same way: ask ``self.functions`` for a function, grant, wire)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.bundling import DEFAULT_CACHE_ROOT, common_layer_code, deps_layer_code
from infra.config import ServingConfig
from infra.functions import FunctionFactory, lambda_architecture, lambda_runtime
from infra.model_store import ModelStore
from infra.online_api import OnlineApi


class MlserveStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: ServingConfig,
        layer_cache_root: Path = DEFAULT_CACHE_ROOT,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        runtime = lambda_runtime(config.python_runtime)
        architecture = lambda_architecture(config.architecture)

        self.model_store = ModelStore(self, "ModelStore", config=config)

        self.deps_layer = lambda_.LayerVersion(
            self,
            "DepsLayer",
            description=(
                "mlserve third-party deps (layers/deps/requirements.txt) for "
                f"{config.python_runtime}/{config.architecture}"
            ),
            code=deps_layer_code(
                architecture=config.architecture,
                python_version=config.python_version,
                cache_root=layer_cache_root,
            ),
            compatible_runtimes=[runtime],
            compatible_architectures=[architecture],
        )
        self.common_layer = lambda_.LayerVersion(
            self,
            "CommonLayer",
            description="mlserve shared runtime package (layers/common/python/mlserve)",
            code=common_layer_code(),
            compatible_runtimes=[runtime],
            compatible_architectures=[architecture],
        )
        self.functions = FunctionFactory(
            config=config,
            layers=[self.deps_layer, self.common_layer],
            store_uri=self.model_store.store_uri,
        )

        self.online_api = OnlineApi(
            self,
            "OnlineApi",
            config=config,
            functions=self.functions,
            model_store=self.model_store,
        )

        CfnOutput(self, "ApiUrl", value=self.online_api.url, description="Base URL of the API")
        if self.online_api.api_key is not None:
            CfnOutput(
                self,
                "ApiKeyId",
                value=self.online_api.api_key.key_id,
                description="aws apigateway get-api-key --api-key <id> --include-value",
            )
        CfnOutput(
            self,
            "ModelBucketName",
            value=self.model_store.bucket.bucket_name,
            description="mlserve publish ... --store s3://<this>",
        )
