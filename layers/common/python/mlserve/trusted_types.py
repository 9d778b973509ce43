"""Types that skops may instantiate beyond its own defaults.

This list is kept in this repository and reviewed here; the list an artifact carries
(MLflow's `skops_trusted_types`) is never used, because an attacker who can write the
artifact can write that list too. Tree internals can read out of bounds when crafted,
so they are only ever loaded after the sha256 check against the staged checksums.
"""

TRUSTED_TYPES: tuple[str, ...] = (
    # Fitted tree structure used by every tree, forest and gradient-boosting model.
    "sklearn.tree._tree.Tree",
    # Histogram gradient boosting internals.
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn._loss.link.IdentityLink",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss.link.MultinomialLogit",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn._loss.loss.HalfMultinomialLoss",
    "sklearn._loss.loss.HalfSquaredError",
    "sklearn._loss.loss.HalfPoissonLoss",
    "sklearn._loss.loss.AbsoluteError",
    # dtype objects pickled inside pipelines (e.g. OneHotEncoder(dtype=np.float64)).
    "numpy.dtype",
    "numpy.float64",
    "numpy.int64",
    # Gradient-boosted regressors inside scikit-learn ensembles (VotingRegressor,
    # StackingRegressor, Pipeline). skops restores each through its __setstate__, which reads
    # the library's own native model (LightGBM text model, XGBoost UBJSON, CatBoost cbm
    # bytes), not pickle; the packages ship in the image packaging only (docs/image.md).
    "lightgbm.sklearn.LGBMRegressor",
    "lightgbm.basic.Booster",
    "xgboost.sklearn.XGBRegressor",
    "xgboost.core.Booster",
    "catboost.core.CatBoostRegressor",
    # Plain containers inside those estimators' state (XGBoost's evals, VotingRegressor.named_estimators_).
    "collections.OrderedDict",
    "sklearn.utils._bunch.Bunch",
    # mlserve's own feature steps (mlserve/features.py), reviewed in this repository.
    "mlserve.features.DateParts",
)
