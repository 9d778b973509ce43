"""What a batch Lambda container keeps between invocations: settings, clients, live model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlserve.batch.core import BatchOptions
from mlserve.batch.job import inputs_from_event, process_s3_object
from mlserve.config import Settings
from mlserve.live import LiveModel
from mlserve.observability import on_model_swap
from mlserve.store import open_store


@dataclass
class BatchRuntime:
    settings: Settings
    live: LiveModel
    s3: Any
    options: BatchOptions

    @classmethod
    def from_env(cls, s3_client: Any = None) -> BatchRuntime:
        import boto3

        settings = Settings.from_env()
        client = s3_client or boto3.client("s3")
        live = LiveModel(
            open_store(settings.store_uri, s3_client=client),
            settings.model_name,
            refresh_seconds=settings.refresh_seconds,
            allow_pickle=settings.allow_pickle,
            max_rows=settings.max_rows,
            cache_dir=settings.cache_dir,
            on_swap=on_model_swap,  # logs carry model_name/model_version; ModelLoadSeconds
        )
        return cls(settings, live, client, BatchOptions.from_env())

    def handle_event(self, event: dict[str, Any], deadline: float | None = None) -> dict[str, Any]:
        results = [
            process_s3_object(
                self.s3,
                item,
                self.live,
                results_prefix=self.settings.results_prefix,
                options=self.options,
                deadline=deadline,
            )
            for item in inputs_from_event(event)
        ]
        return {
            "results": [
                {k: r.get(k) for k in ("status", "key", "rows_scored", "rows_rejected")}
                | {"key": r.get("key") or (r.get("input") or {}).get("key")}
                for r in results
            ]
        }
