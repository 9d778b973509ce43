"""Native, non-pickle loading of MLflow's ``lightgbm``, ``xgboost`` and ``catboost`` flavors.

MLflow saves a LightGBM ``Booster`` as LightGBM's text model (``model.lgb``), any XGBoost
model with ``save_model`` (UBJSON/JSON/legacy binary) and any CatBoost model in CatBoost's
``cbm`` format. Those files hold trees and parameters, never code, so they are served
without ``allow_pickle``. A LightGBM *scikit-learn* model (``LGBMRegressor``) is saved by
MLflow with the sklearn serializer instead: its ``serialization_format`` (skops, or pickle
which stays refused unless allowed) decides, exactly as for the ``sklearn`` flavor.

The model classes instantiated here come from this module's own tables, never from the
artifact: an ``MLmodel`` naming any other class is refused.

None of lightgbm/xgboost/catboost is imported until a model of that flavor is loaded: the
zip packaging does not ship them (see docs/image.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlserve.errors import ModelLoadError

# MLmodel flavor name -> serialization_format mlserve gives the native file.
NATIVE_FORMATS = frozenset({"lightgbm", "xgboost", "catboost"})
FLAVOR_PREFERENCE = ("catboost", "xgboost", "lightgbm")

# Classes a native file may be loaded into; the artifact only picks among these.
XGBOOST_MODEL_CLASSES = frozenset(
    {
        "xgboost.core.Booster",
        "xgboost.sklearn.XGBRegressor",
        "xgboost.sklearn.XGBClassifier",
        "xgboost.sklearn.XGBRFRegressor",
        "xgboost.sklearn.XGBRFClassifier",
    }
)
XGBOOST_FILE_FORMATS = frozenset({"ubj", "json", "xgb", "deprecated"})
CATBOOST_MODEL_TYPES = frozenset({"CatBoost", "CatBoostRegressor", "CatBoostClassifier"})
CATBOOST_SAVE_FORMATS = frozenset({"cbm"})
LIGHTGBM_BOOSTER_CLASS = "lightgbm.basic.Booster"


def native_flavor_as_sklearn(flavors: dict[str, Any]) -> dict[str, Any] | None:
    """For an MLmodel without a ``sklearn`` flavor: the boosted flavor it has, described the
    way ``mlmodel.parse_mlmodel`` reads an sklearn flavor (``pickled_model`` and
    ``serialization_format``), or None when it has none of them."""
    for name in FLAVOR_PREFERENCE:
        conf = flavors.get(name)
        if not isinstance(conf, dict):
            continue
        data = conf.get("data")
        if not isinstance(data, str) or not data:
            raise ModelLoadError(f"{name} flavor does not name its model file ('data')")
        if name == "lightgbm" and conf.get("model_class", LIGHTGBM_BOOSTER_CLASS) != LIGHTGBM_BOOSTER_CLASS:
            # An LGBM scikit-learn model: MLflow serialized it like an sklearn model.
            return {"pickled_model": data, "serialization_format": conf.get("serialization_format", "cloudpickle")}
        return {"pickled_model": data, "serialization_format": name}
    return None


class BoosterRegressor:
    """A raw LightGBM or XGBoost ``Booster`` behind the ``predict(frame)`` mlserve calls."""

    def __init__(self, booster: Any, library: str) -> None:
        self.booster = booster
        self.library = library

    def predict(self, frame: Any) -> Any:
        if self.library == "xgboost":
            import xgboost

            return self.booster.predict(xgboost.DMatrix(frame, enable_categorical=True))
        return self.booster.predict(frame)


def load_native(path: Path, serialization_format: str, flavors: dict[str, Any]) -> Any:
    """Load ``path`` (already sha256-verified) as the native format of its flavor."""
    conf = flavors.get(serialization_format)
    if not isinstance(conf, dict):
        raise ModelLoadError(f"MLmodel has no {serialization_format} flavor")
    try:
        if serialization_format == "lightgbm":
            return _load_lightgbm(path)
        if serialization_format == "xgboost":
            return _load_xgboost(path, conf)
        if serialization_format == "catboost":
            return _load_catboost(path, conf)
    except ModelLoadError:
        raise
    except ImportError as exc:
        raise ModelLoadError(
            f"the {serialization_format} flavor needs the {exc.name} package, which this packaging "
            "does not include: deploy with context packaging=image (docs/image.md)"
        ) from exc
    except Exception as exc:
        raise ModelLoadError(f"{serialization_format} could not load {path.name}: {type(exc).__name__}: {exc}") from exc
    raise ModelLoadError(f"{serialization_format!r} is not a native boosted-model format")


def _loadable_name(conf: dict[str, Any], flavor: str, key: str, default: str, loadable: frozenset[str]) -> str:
    """The flavor's `key` (a model class name), refused unless it is one mlserve loads."""
    name = str(conf.get(key, default))
    if name not in loadable:
        raise ModelLoadError(
            f"{flavor} flavor names {key} {name!r}, which is not one mlserve loads: {', '.join(sorted(loadable))}"
        )
    return name


def _load_lightgbm(path: Path) -> Any:
    import lightgbm

    return BoosterRegressor(lightgbm.Booster(model_file=str(path)), "lightgbm")


def _load_xgboost(path: Path, conf: dict[str, Any]) -> Any:
    import xgboost

    model_class = _loadable_name(conf, "xgboost", "model_class", "xgboost.core.Booster", XGBOOST_MODEL_CLASSES)
    file_format = str(conf.get("model_format", "xgb"))
    if file_format not in XGBOOST_FILE_FORMATS:
        raise ModelLoadError(f"xgboost flavor has unknown model_format {file_format!r}")
    if model_class == "xgboost.core.Booster":
        booster = xgboost.Booster()
        booster.load_model(str(path))
        return BoosterRegressor(booster, "xgboost")
    class_name = model_class.rpartition(".")[2]
    model = getattr(xgboost, class_name)()  # only names from XGBOOST_MODEL_CLASSES reach here
    model.load_model(str(path))
    return model


def _load_catboost(path: Path, conf: dict[str, Any]) -> Any:
    import catboost

    model_type = _loadable_name(conf, "catboost", "model_type", "CatBoost", CATBOOST_MODEL_TYPES)
    save_format = str(conf.get("save_format", "cbm"))
    if save_format not in CATBOOST_SAVE_FORMATS:
        raise ModelLoadError(f"catboost flavor has save_format {save_format!r}; mlserve loads only cbm")
    model = getattr(catboost, model_type)()
    model.load_model(str(path), format=save_format)
    return model
