"""The live pointer: which version serves, re-checked at most every refresh interval.

`live.json` is read at cold start; afterwards at most once per `refresh_seconds`, with a
conditional GET (ETag). A changed pointer loads the new version beside the old one and
swaps a single reference, so requests in flight finish on the model they started with.
A failed load keeps the old model and logs why.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlserve.errors import MlserveError, ModelUnavailableError
from mlserve.safe_paths import UnsafeNameError, check_model_name, check_version, contained_path
from mlserve.schema import DEFAULT_MAX_ROWS
from mlserve.scoring import LoadedModel, ModelIdentity, load_model_dir
from mlserve.store import ModelStore, is_cache_dir, live_key, version_prefix

if TYPE_CHECKING:
    from mlserve.config import Settings

logger = logging.getLogger(__name__)


def parse_pointer(data: bytes) -> dict[str, Any]:
    try:
        pointer = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MlserveError(f"live.json is not valid JSON: {exc}", code="bad_pointer") from None
    if not isinstance(pointer, dict):
        raise MlserveError("live.json is not a JSON object", code="bad_pointer")
    for key in ("name", "version", "checksums"):
        if not pointer.get(key):
            raise MlserveError(f"live.json has no {key!r}", code="bad_pointer")
    # name and version become store keys and cache paths: refuse anything but plain names
    try:
        pointer["name"] = check_model_name(pointer["name"])
        pointer["version"] = check_version(pointer["version"])
    except UnsafeNameError as exc:
        raise MlserveError(f"live.json refused: {exc}", code="bad_pointer") from None
    if not isinstance(pointer["checksums"], dict):
        raise MlserveError("live.json 'checksums' is not an object", code="bad_pointer")
    return pointer


def read_pointer_and_etag(store: ModelStore, name: str) -> tuple[dict[str, Any] | None, str | None]:
    """The pointer and the ETag to make a conditional write of the next one against."""
    try:
        fetched = store.read_if_changed(live_key(name), None)
    except KeyError:
        return None, None
    assert fetched.data is not None
    return parse_pointer(fetched.data), fetched.etag


def read_pointer(store: ModelStore, name: str) -> dict[str, Any] | None:
    try:
        return parse_pointer(store.read_bytes(live_key(name)))
    except KeyError:
        return None


def load_version(
    store: ModelStore,
    pointer: dict[str, Any],
    cache_dir: Path,
    *,
    allow_pickle: bool,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> LoadedModel:
    """Fetch the version a pointer names and load it, verifying the pointer's checksums."""
    name, version = check_model_name(pointer["name"]), check_version(pointer["version"])
    local = store.download_prefix(version_prefix(name, version), version_cache_dir(cache_dir, name, version))
    identity = ModelIdentity(name, version, pointer.get("run_id"))
    return load_model_dir(
        local, identity, pointer["checksums"], allow_pickle=allow_pickle, max_rows=max_rows, pointer=pointer
    )


def version_cache_dir(cache_dir: Path, name: str, version: str) -> Path:
    """cache_dir/<name>/<version>, checked to stay inside cache_dir."""
    return contained_path(cache_dir, f"{check_model_name(name)}/{check_version(version)}", what="cache path")


def evict_cached_versions(cache_dir: Path, name: str, keep: set[str]) -> list[str]:
    """Delete cached versions of `name` other than `keep`; return the versions removed.

    Only directories the cache created (they hold CACHE_MARKER, are no symlinks and sit
    inside cache_dir/<name>/) are removed; anything else there is left alone. Half-finished
    downloads and renamed-aside copies (dot names) are left to the process that owns them.
    """
    try:
        model_dir = contained_path(cache_dir, check_model_name(name), what="cache path")
    except MlserveError:
        return []
    if not model_dir.is_dir():
        return []
    removed = []
    for entry in sorted(model_dir.iterdir()):
        if entry.name.startswith(".") or entry.name in keep or not is_cache_dir(entry):
            continue
        if not entry.resolve().is_relative_to(model_dir):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry.name)
    return removed


class LiveModel:
    """Holds the serving model; `get()` is cheap inside the refresh window."""

    def __init__(
        self,
        store: ModelStore,
        name: str,
        *,
        refresh_seconds: float = 15.0,
        allow_pickle: bool = False,
        max_rows: int = DEFAULT_MAX_ROWS,
        cache_dir: Path,
        clock: Callable[[], float] = time.monotonic,
        on_swap: Callable[[LoadedModel | None, LoadedModel], None] | None = None,
    ) -> None:
        self.store = store
        self.name = name
        self.refresh_seconds = refresh_seconds
        self.allow_pickle = allow_pickle
        self.max_rows = max_rows
        self.cache_dir = cache_dir
        self._clock = clock
        self._on_swap = on_swap
        self._current: LoadedModel | None = None
        self._etag: str | None = None
        self._checked_at: float | None = None
        self._lock = threading.Lock()
        self.last_error: str | None = None

    @property
    def current(self) -> LoadedModel | None:
        return self._current

    @property
    def degraded_reason(self) -> str | None:
        """Why the newest pointer is not what serves (a failed load or pointer read), while an
        older model keeps serving; None when healthy or when nothing serves at all."""
        return self.last_error if self._current is not None else None

    def _evict(self, model: LoadedModel) -> None:
        # Versions that are neither live nor being loaded (loads run under self._lock, so
        # the only one in flight is the one that just became live).
        try:
            removed = evict_cached_versions(self.cache_dir, self.name, {model.identity.version})
        except OSError as exc:
            logger.warning("could not evict old cached versions: %s", exc)
            return
        if removed:
            logger.info("evicted cached versions %s of %s", ", ".join(removed), self.name)

    def get(self) -> LoadedModel:
        """The model to serve this request with; refreshes the pointer when due."""
        checked_at = self._checked_at
        if checked_at is None or self._clock() - checked_at >= self.refresh_seconds:
            self.refresh()
        elif self._current is None:
            # Another thread may be doing the cold-start load right now (it set _checked_at
            # first): wait for it instead of answering "no model" meanwhile.
            with self._lock:
                pass
        model = self._current
        if model is None:
            reason = self.last_error or "no model has been published"
            raise ModelUnavailableError(f"model {self.name!r} is not available: {reason}")
        return model

    def force_next_check(self) -> None:
        """Re-read the pointer on the next ``get()`` whatever the refresh window says (after
        a SnapStart restore: the snapshot's last check may predate a promotion). The ETag
        is kept, so an unchanged pointer costs one conditional GET and no reload."""
        self._checked_at = None

    def refresh(self, force: bool = False) -> None:
        # One refresher at a time; others keep serving the current model meanwhile.
        if not self._lock.acquire(blocking=self._current is None):
            return
        try:
            if not force and self._checked_at is not None and self._clock() - self._checked_at < self.refresh_seconds:
                return
            self._refresh_locked()
        finally:
            self._lock.release()

    def _refresh_locked(self) -> None:
        self._checked_at = self._clock()
        try:
            fetched = self.store.read_if_changed(live_key(self.name), self._etag)
        except KeyError:
            self.last_error = f"no live pointer at {live_key(self.name)} in {self.store.uri}"
            return
        except Exception as exc:
            self.last_error = f"could not read the live pointer: {exc}"
            logger.error("live pointer check failed, keeping current model: %s", exc)
            return
        if fetched.data is None:
            return
        try:
            pointer = parse_pointer(fetched.data)
            if pointer["name"] != self.name:
                raise MlserveError(f"live.json of {self.name!r} names model {pointer['name']!r}", code="bad_pointer")
            current = self._current
            if (
                current is not None
                and current.identity.version == pointer["version"]
                and current.pointer.get("checksums") == pointer["checksums"]
            ):
                self._etag = fetched.etag
                current.pointer = pointer
                return
            model = load_version(
                self.store, pointer, self.cache_dir, allow_pickle=self.allow_pickle, max_rows=self.max_rows
            )
        except Exception as exc:
            # Keep serving what we have; the ETag is not advanced so the next window retries.
            self.last_error = f"{type(exc).__name__}: {exc}"
            logger.error(
                "loading the new live model failed, keeping version %s: %s",
                self._current.identity.version if self._current else None,
                self.last_error,
            )
            return
        previous, self._current = self._current, model
        self._etag = fetched.etag
        self.last_error = None
        self._evict(model)
        logger.info(
            "serving model %s version %s (was %s), loaded in %.3fs",
            model.identity.name,
            model.identity.version,
            previous.identity.version if previous else None,
            model.load_seconds,
        )
        if self._on_swap is not None:
            self._on_swap(previous, model)


_OBSERVED = object()  # build_live_model's default: report swaps to mlserve.observability


def build_live_model(settings: Settings, *, s3_client: Any = None, on_swap: Any = _OBSERVED) -> LiveModel:
    """The one way the API, the batch functions and the CLI make their `LiveModel` from
    `Settings`. Swaps are logged and timed (ModelLoadSeconds) unless `on_swap` says otherwise
    (None: nothing, e.g. the CLI's one-shot scoring)."""
    from mlserve.store import open_store

    if on_swap is _OBSERVED:
        from mlserve.observability import on_model_swap

        on_swap = on_model_swap
    return LiveModel(
        open_store(settings.store_uri, s3_client=s3_client),
        settings.model_name,
        refresh_seconds=settings.refresh_seconds,
        allow_pickle=settings.allow_pickle,
        max_rows=settings.max_rows,
        cache_dir=settings.cache_dir,
        on_swap=on_swap,
    )
