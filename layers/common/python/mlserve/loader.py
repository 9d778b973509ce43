"""Deserialize a staged model, but only after its checksums match."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import Any

from mlserve.boosted import NATIVE_FORMATS, load_native
from mlserve.checksums import verify_checksums
from mlserve.errors import ModelLoadError, PickleNotAllowedError
from mlserve.mlmodel import ModelSpec, read_model_spec
from mlserve.safe_paths import contained_path
from mlserve.trusted_types import TRUSTED_TYPES

logger = logging.getLogger(__name__)

PICKLE_FORMATS = frozenset({"pickle", "cloudpickle"})


def _load_skops(path: Path) -> Any:
    import skops.io

    try:
        untrusted = skops.io.get_untrusted_types(file=path)
    except Exception as exc:
        raise ModelLoadError(f"{path.name} is not a readable skops file: {exc}") from exc
    refused = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if refused:
        raise ModelLoadError(
            f"{path.name} contains types outside mlserve's skops allow-list "
            f"(mlserve/trusted_types.py): {', '.join(refused)}"
        )
    try:
        return skops.io.load(path, trusted=list(untrusted))
    except Exception as exc:
        raise ModelLoadError(f"skops could not load {path.name}: {exc}") from exc


def _load_pickle(path: Path, serialization_format: str) -> Any:
    loads: Any = pickle.loads
    if serialization_format == "cloudpickle":
        try:
            import cloudpickle

            loads = cloudpickle.loads
        except ImportError:  # plain pickle reads cloudpickle output of importable classes
            loads = pickle.loads
    try:
        return loads(path.read_bytes())
    except Exception as exc:
        raise ModelLoadError(f"could not unpickle {path.name}: {type(exc).__name__}: {exc}") from exc


def load_estimator(
    model_dir: Path,
    expected_checksums: dict[str, str],
    allow_pickle: bool,
    spec: ModelSpec | None = None,
) -> tuple[Any, ModelSpec]:
    """Verify sha256 of every file, then parse MLmodel, then deserialize the estimator."""
    verify_checksums(model_dir, expected_checksums)
    spec = spec or read_model_spec(model_dir)
    if spec.serialization_format in PICKLE_FORMATS and not allow_pickle:
        raise PickleNotAllowedError(
            f"model is serialized with {spec.serialization_format}, which runs code when "
            "loaded; set MLSERVE_ALLOW_PICKLE=true (context allow_pickle) to allow it, or "
            "log the model with serialization_format='skops'"
        )
    # The file we deserialize must be one whose sha256 we just verified, inside model_dir.
    if spec.model_file not in expected_checksums:
        raise ModelLoadError(f"MLmodel's pickled_model {spec.model_file!r} is not among the verified checksums")
    path = contained_path(model_dir, spec.model_file, what="pickled_model")
    if not path.is_file():
        raise ModelLoadError(f"model file {spec.model_file} is missing from {model_dir}")
    _warn_on_version_skew(spec)
    if spec.serialization_format == "skops":
        estimator = _load_skops(path)
    elif spec.serialization_format in NATIVE_FORMATS:
        estimator = load_native(path, spec.serialization_format, spec.raw.get("flavors") or {})
    else:
        estimator = _load_pickle(path, spec.serialization_format)
    if not hasattr(estimator, "predict"):
        raise ModelLoadError(f"{spec.model_file} holds a {type(estimator).__name__}, which has no predict()")
    return estimator, spec


def _warn_on_version_skew(spec: ModelSpec) -> None:
    import sklearn

    if spec.sklearn_version and spec.sklearn_version != sklearn.__version__:
        logger.warning(
            "model was trained with scikit-learn %s but %s is serving it",
            spec.sklearn_version,
            sklearn.__version__,
        )
