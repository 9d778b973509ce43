"""mlserve.aws_clients.LazyClient: the client a caller passes wins; otherwise one boto3 client
is made on first use and kept."""

from __future__ import annotations

from typing import Any

import pytest

from mlserve.aws_clients import LazyClient
from mlserve.promotion.webhook import DynamoLedger
from mlserve.store import S3Store


class Holder:
    client: LazyClient[Any] = LazyClient("s3")

    def __init__(self, client: Any = None) -> None:
        self._client = client


def test_a_passed_client_is_used_as_is() -> None:
    passed = object()
    assert Holder(passed).client is passed
    assert isinstance(Holder.__dict__["client"], LazyClient) and Holder.client.service == "s3"


def test_without_a_client_one_boto3_client_is_made_and_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    holder = Holder()
    first = holder.client
    assert first.meta.service_model.service_name == "s3"
    assert first.meta.region_name == "eu-west-1"
    assert holder.client is first and holder._client is first


def test_the_runtime_classes_make_the_service_they_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    assert S3Store("bucket").client.meta.service_model.service_name == "s3"
    assert DynamoLedger("table").client.meta.service_model.service_name == "dynamodb"
