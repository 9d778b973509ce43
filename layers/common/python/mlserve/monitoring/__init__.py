"""Drift monitoring: reference profiles, request capture, drift statistics and reports.

numpy/scipy only (no Evidently, no MLflow): this package runs inside the API and the
drift job Lambda. Evidently is only the oracle of the tests.
"""
