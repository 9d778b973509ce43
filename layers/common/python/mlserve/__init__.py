"""mlserve: serve MLflow-registered scikit-learn models from Lambda."""

__version__ = "0.1.0"
