"""A boto3 client made on first use, shared by the classes that take an optional client."""

from __future__ import annotations

from typing import Any, Generic, TypeVar, overload

ClientT = TypeVar("ClientT")


class LazyClient(Generic[ClientT]):
    """Class attribute `client = LazyClient[S3Client]("s3")`: reads the instance's `_client` (or `attribute`)
    (the client the caller passed, or None) and creates the boto3 client there on first use,
    so that importing or constructing never costs one."""

    def __init__(self, service: str, attribute: str = "_client") -> None:
        self.service = service
        self.attribute = attribute

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> LazyClient[ClientT]: ...

    @overload
    def __get__(self, instance: object, owner: type[Any]) -> ClientT: ...

    def __get__(self, instance: object | None, owner: type[Any]) -> LazyClient[ClientT] | ClientT:
        if instance is None:
            return self
        client: ClientT | None = getattr(instance, self.attribute, None)
        if client is None:
            import boto3

            client = boto3.client(self.service)  # type: ignore[call-overload]
            setattr(instance, self.attribute, client)
        return client
