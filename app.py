#!/usr/bin/env python3
"""CDK entry point (`npx cdk synth|deploy`); settings come from cdk.json context and -c.

Which stacks it builds (Mlserve, Mlserve-<env>, MlserveDeployRole, MlservePipeline) is
decided by context: see infra/delivery.py."""

from __future__ import annotations

import sys

from aws_cdk import App

from infra.config import ConfigError
from infra.delivery import build_app


def main() -> None:
    app = App()
    try:
        build_app(app)
    except ConfigError as error:
        sys.exit(f"mlserve: {error}")
    app.synth()


if __name__ == "__main__":
    main()
