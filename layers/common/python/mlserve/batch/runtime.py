"""What a batch Lambda container keeps between invocations: settings, clients, live model."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlserve.batch.core import BatchOptions
from mlserve.batch.job import ClaimHeld, S3Input, inputs_from_event, process_s3_object
from mlserve.config import Settings
from mlserve.live import LiveModel, build_live_model

logger = logging.getLogger(__name__)


@dataclass
class BatchRuntime:
    settings: Settings
    live: LiveModel
    s3: Any
    options: BatchOptions
    # Hands files over the fan-out threshold to the Step Functions fan-out (None: off).
    fanout: Callable[[S3Input], dict[str, Any] | None] | None = None

    @classmethod
    def from_env(cls, s3_client: Any = None) -> BatchRuntime:
        import boto3

        settings = Settings.from_env()
        client = s3_client or boto3.client("s3")
        live = build_live_model(settings, s3_client=client)  # swaps: logs + ModelLoadSeconds
        from mlserve.batch.fanout import FanoutStarter

        return cls(settings, live, client, BatchOptions.from_env(), FanoutStarter.from_env(client))

    def handle_event(
        self,
        event: dict[str, Any],
        deadline: float | None = None,
        *,
        time_left: Callable[[], float] | None = None,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        results = [self._handle_one(item, deadline, time_left, request_id) for item in inputs_from_event(event)]
        return {
            "results": [
                {k: r.get(k) for k in ("status", "key", "rows_scored", "rows_rejected")}
                | {"key": r.get("key") or (r.get("input") or {}).get("key")}
                for r in results
            ]
        }

    def _handle_one(
        self,
        item: S3Input,
        deadline: float | None,
        time_left: Callable[[], float] | None,
        request_id: str | None,
    ) -> dict[str, Any]:
        try:
            return process_s3_object(
                self.s3,
                item,
                self.live,
                results_prefix=self.settings.results_prefix,
                options=self.options,
                deadline=deadline,
                time_left=time_left,
                request_id=request_id,
                fanout=self.fanout,
            )
        except ClaimHeld as exc:
            # A duplicate delivery while another invocation scores this version: that one
            # writes the report. Not an error (no retry, no Errors metric, no DLQ).
            logger.info("not scoring s3://%s/%s now: %s", item.bucket, item.key, exc)
            return {"status": "claim_held", "key": item.key}
