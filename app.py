#!/usr/bin/env python3
"""CDK entry point (`npx cdk synth|deploy`); settings come from cdk.json context and -c."""

from __future__ import annotations

import sys

from aws_cdk import App

from infra.application import build_stack
from infra.config import ConfigError


def main() -> None:
    app = App()
    try:
        build_stack(app)
    except ConfigError as error:
        sys.exit(f"mlserve: {error}")
    app.synth()


if __name__ == "__main__":
    main()
