"""Security tests reuse the batch fixtures (moto batch bucket, published demo classifier)."""

from tests.unit.batch.conftest import batch_env, batch_store, classifier  # noqa: F401
