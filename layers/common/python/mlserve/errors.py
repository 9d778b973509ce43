"""Errors that carry enough structure to become a clear 4xx body or a failure report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ErrorDetail:
    """One problem in the input: where (`loc`) and what (`msg`)."""

    loc: list[str | int]
    msg: str

    def to_dict(self) -> dict[str, Any]:
        return {"loc": list(self.loc), "msg": self.msg}


@dataclass
class MlserveError(Exception):
    """Base class: `code` is a stable machine-readable string, `message` is for people."""

    message: str
    code: str = "error"
    details: list[ErrorDetail] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


@dataclass
class InputError(MlserveError):
    """The caller's input is wrong; maps to a 4xx with `status`."""

    code: str = "invalid_input"
    status: int = 422


@dataclass
class ModelUnavailableError(MlserveError):
    """No model can be served right now (nothing published, or the load failed)."""

    code: str = "model_unavailable"


@dataclass
class ModelLoadError(MlserveError):
    """A model artifact could not be trusted or deserialized."""

    code: str = "model_load_failed"


@dataclass
class ChecksumMismatchError(ModelLoadError):
    code: str = "checksum_mismatch"


@dataclass
class PickleNotAllowedError(ModelLoadError):
    code: str = "pickle_not_allowed"


@dataclass
class StoreError(MlserveError):
    """The model store could not be read or written."""

    code: str = "store_error"


@dataclass
class StagingError(MlserveError):
    """A model version could not be staged (copied, verified, loaded or smoke-tested)."""

    code: str = "staging_failed"
