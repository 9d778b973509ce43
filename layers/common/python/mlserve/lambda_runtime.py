"""What every Lambda handler module repeats: a runtime built on first use and kept for the
container's life (so the model loads once, and importing the handler does no I/O), and the
invocation's deadline read from the Lambda context."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class LazyRuntime(Generic[T]):
    """``runtime()`` builds with `factory` once; ``reset()`` forgets it (tests, SnapStart)."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._built: T | None = None

    def __call__(self) -> T:
        if self._built is None:
            self._built = self._factory()
        return self._built

    @property
    def current(self) -> T | None:
        """The runtime if built, without building it."""
        return self._built

    def reset(self) -> None:
        """Forget the cached clients and model."""
        self._built = None


def lazy_runtime(factory: Callable[[], T]) -> LazyRuntime[T]:
    return LazyRuntime(factory)


def time_left_of(context: Any) -> Callable[[], float] | None:
    """Seconds left in this invocation, asked between chunks to stop cleanly before the
    timeout; None outside Lambda (no context)."""
    if context is None or not hasattr(context, "get_remaining_time_in_millis"):
        return None

    def time_left() -> float:
        return float(context.get_remaining_time_in_millis()) / 1000.0

    return time_left


def deadline_of(context: Any) -> float | None:
    """The invocation's deadline as a `time.time()` value; None outside Lambda."""
    time_left = time_left_of(context)
    return time.time() + time_left() if time_left is not None else None
