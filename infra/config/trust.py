"""Promotion trust (docs/security.md): who may promote, where artifacts may come from, the
registry token's secret, and the API edge (webhook throttle, WAF)."""

from __future__ import annotations

import re
from typing import Any, Literal

from infra.config.base import ConfigError
from infra.config.checks import boolean, optional_matching, string_list

_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/[\w+=,.@/-]{1,512}$")
_SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[\w/+=.@-]{1,512}$")
_ARTIFACT_LOCATION = re.compile(r"^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/|https://[^\s/]+/)\S*$")


def role_arns(key: str, raw: Any) -> tuple[str, ...]:
    arns = string_list(key, raw)
    for arn in arns:
        if not _ROLE_ARN.match(arn):
            raise ConfigError(f"context {key!r}: {arn!r} is not an IAM role ARN (arn:aws:iam::123456789012:role/name)")
    return arns


def artifact_locations(key: str, raw: Any) -> tuple[str, ...]:
    locations = string_list(key, raw)
    for location in locations:
        if not _ARTIFACT_LOCATION.match(location) or "/../" in location + "/":
            raise ConfigError(
                f"context {key!r}: {location!r} must be an s3://bucket/prefix/ or https://host/path/ prefix"
            )
    return locations


def optional_secret_arn(key: str, raw: Any) -> str | None:
    return optional_matching(key, raw, _SECRET_ARN, "a Secrets Manager secret ARN or empty")


def waf_switch(key: str, raw: Any) -> Literal["auto"] | bool:
    """``auto`` (on in prod), true or false."""
    if isinstance(raw, str) and raw.strip().lower() == "auto":
        return "auto"
    try:
        return boolean(key, raw)
    except ConfigError:
        raise ConfigError(f"context {key!r} must be auto (on in prod), true or false, got {raw!r}") from None
