"""Errors that carry enough structure to become a clear 4xx body or a failure report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass
class ErrorDetail:
    """One problem in the input: where (`loc`) and what (`msg`)."""

    loc: list[str | int]
    msg: str

    def to_dict(self) -> dict[str, Any]:
        return {"loc": list(self.loc), "msg": self.msg}


@dataclass
class MlserveError(Exception):
    """Base class: `code` is a stable machine-readable string, `message` is for people.
    A subclass names its default code as a class keyword: `class X(MlserveError, code="x")`."""

    message: str
    code: str = ""  # "" means the class's default code
    details: list[ErrorDetail] = field(default_factory=list)

    default_code: ClassVar[str] = "error"

    def __init_subclass__(cls, code: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if code:
            cls.default_code = code

    def __post_init__(self) -> None:
        self.code = self.code or self.default_code
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


@dataclass
class InputError(MlserveError, code="invalid_input"):
    """The caller's input is wrong; maps to a 4xx with `status`."""

    status: int = 422


class ModelUnavailableError(MlserveError, code="model_unavailable"):
    """No model can be served right now (nothing published, or the load failed)."""


class ModelLoadError(MlserveError, code="model_load_failed"):
    """A model artifact could not be trusted or deserialized."""


class ChecksumMismatchError(ModelLoadError, code="checksum_mismatch"):
    """An artifact's bytes are not the ones its checksum names."""


class PickleNotAllowedError(ModelLoadError, code="pickle_not_allowed"):
    """A pickle-based artifact, while pickle loading is off."""


class StoreError(MlserveError, code="store_error"):
    """The model store could not be read or written."""


class StagingError(MlserveError, code="staging_failed"):
    """A model version could not be staged (copied, verified, loaded or smoke-tested)."""
