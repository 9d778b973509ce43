"""`make demo`: train the demo model, publish `champion` into a local store, serve it.

Everything stays under .data/ (ignored by git): the MLflow registry (sqlite), its
artifacts and the model store that the API reads, exactly as the Lambda reads S3.
"""

from __future__ import annotations

import json
import os
import sys

from examples.train import CLASSIFIER, DATA_DIR, configure_mlflow, tracking_uri, train_classifier

HOST = os.environ.get("MLSERVE_DEMO_HOST", "127.0.0.1")
PORT = int(os.environ.get("MLSERVE_DEMO_PORT", "8000"))
STORE_URI = (DATA_DIR / "store").as_uri()


def curl_examples(base: str, row: dict[str, float], probabilities: bool = True) -> str:
    predict = json.dumps({"instances": [row], **({"probabilities": True} if probabilities else {})})
    columns = list(row)
    split = json.dumps({"dataframe_split": {"columns": columns, "data": [list(row.values())]}})
    return "\n".join(
        [
            f"Ready. The web page (a form built from the model's signature, CSV upload): {base}/",
            "",
            "Or try:",
            f"  curl -s {base}/predict -H 'content-type: application/json' -d '{predict}'",
            "",
            f"  curl -s {base}/invocations -H 'content-type: application/json' -d '{split}'",
            "",
            f"  curl -s {base}/health",
            f"  open {base}/docs   # the request schema is the model's signature",
            "",
        ]
    )


def main() -> int:
    from mlserve.mlmodel import read_input_example
    from mlserve.registry import publish_model_uri

    configure_mlflow()
    model_name = CLASSIFIER
    if os.environ.get("MLSERVE_DEMO_MODEL", "classifier") == "sales":  # make demo MODEL=sales
        from examples.train_sales import SALES, train_sales

        model_name = SALES
        registered = train_sales(alias="champion")
    else:
        registered = train_classifier(alias="champion")
    print(f"trained and registered {registered.name} v{registered.version} as @champion")
    resolved, result = publish_model_uri(f"models:/{model_name}@champion", STORE_URI, promoted_by="make demo")
    print(f"published {resolved.name} v{resolved.version} to {STORE_URI} (manifest {result.manifest_key})")
    print(f"registry: MLFLOW_TRACKING_URI={tracking_uri()}  (for `mlserve publish models:/...`)")
    example_row = read_input_example(resolved.local_dir, result.model.spec)[0]
    print(curl_examples(f"http://{HOST}:{PORT}", example_row, probabilities=model_name == CLASSIFIER), flush=True)

    os.environ["MLSERVE_STORE"] = STORE_URI
    os.environ["MLSERVE_MODEL_NAME"] = model_name
    os.environ.setdefault("MLSERVE_SCORE_IN_THREADS", "true")  # a server: score in worker threads
    import uvicorn

    from lambda_api.app import create_app

    uvicorn.run(create_app(), host=HOST, port=PORT, log_level="info")
    return 0


if __name__ == "__main__":
    sys.exit(main())
