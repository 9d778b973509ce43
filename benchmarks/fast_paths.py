"""The measured effect of the hot-path optimizations: the same warm handler, same process,
same requests, with each fast path switched off in turn (interleaved rounds).

- `all off`: the per-column frame (one numpy array per column, then a dict -> DataFrame)
  and pydantic validation of every row, as before the optimizations;
- `2-D frame`: rows -> one 2-D float64 array -> DataFrame with a cached column Index;
- `all on`: plus the all-double validation fast path (orjson + type check), which builds
  the matrix while validating.

    python -m benchmarks.fast_paths [--calls 300] [--rounds 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from benchmarks.common import demo_store, write_results

VARIANTS = ("all off", "2-D frame", "all on")


@contextmanager
def variant(app: Any, name: str) -> Iterator[None]:
    from mlserve import scoring

    model = app.state.runtime.model()
    schema = model.schema
    original_matrix = scoring.rows_to_matrix
    if name in ("all off", "2-D frame"):
        model.schema = dataclasses.replace(schema, fast_rows=None)
    if name == "all off":
        scoring.rows_to_matrix = lambda rows, plan: None
    try:
        yield
    finally:
        model.schema = schema
        scoring.rows_to_matrix = original_matrix


def measure(store_uri: str, features: Any, rows: list[int], calls: int, rounds: int) -> dict[str, Any]:
    os.environ.update(MLSERVE_STORE=store_uri, MLSERVE_MODEL_NAME="demo-classifier", MLSERVE_MAX_ROWS="100000")
    from mangum import Mangum

    from lambda_api.app import create_app
    from lambda_api.handler import StagePrefix
    from tests.apigw_events import FakeLambdaContext, rest_v1_event

    app = create_app()
    handler = Mangum(StagePrefix(app), lifespan="off")
    context: Any = FakeLambdaContext()
    result: dict[str, Any] = {"calls_per_round": calls, "rounds": rounds, "by_rows": {}}
    for n in rows:
        body = json.dumps({"instances": features.head(n).to_dict(orient="records")})
        event = rest_v1_event("POST", "/predict", body, {"Content-Type": "application/json"})
        expected = handler(event, context)
        assert expected["statusCode"] == 200
        p50s: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for _ in range(rounds):
            for name in VARIANTS:
                with variant(app, name):
                    assert handler(event, context)["body"] == expected["body"]  # identical answers
                    samples = []
                    for _ in range(calls):
                        started = time.perf_counter()
                        handler(event, context)
                        samples.append((time.perf_counter() - started) * 1000)
                p50s[name].append(statistics.median(samples))
        result["by_rows"][str(n)] = {
            name: {"min": min(v), "median": statistics.median(v), "max": max(v)} for name, v in p50s.items()
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rows", default="1,100,1000")
    args = parser.parse_args()
    store_uri, _, features = demo_store()
    result = measure(store_uri, features, [int(r) for r in args.rows.split(",")], args.calls, args.rounds)
    for n, by_variant in result["by_rows"].items():
        cells = ", ".join(f"{name} {v['median']:.3f} ms" for name, v in by_variant.items())
        print(f"{n} rows, handler p50 (median of rounds): {cells}")
    print(write_results("fast-paths", result))


if __name__ == "__main__":
    main()
