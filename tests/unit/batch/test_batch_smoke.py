from pathlib import Path
from mlserve.batch.core import score_file, BatchOptions
from mlserve.batch.output import LocalFileSink
import pandas as pd, numpy as np, time

def test_smoke(classifier, breast_cancer, tmp_path):
    big = pd.concat([breast_cancer] * 200, ignore_index=True)
    src = tmp_path / "in.csv"
    big.to_csv(src, index=False)
    out = tmp_path / "out.csv"
    sink = LocalFileSink(out)
    t = time.perf_counter()
    r = score_file(src, sink, classifier, BatchOptions(chunk_bytes=1 << 20))
    sink.commit()
    dt = time.perf_counter() - t
    print(len(big), dt, len(big) / dt, r.rows_read, r.rows_scored, r.rows_rejected, r.rejected_by_reason, r.rejected_rows[:3])
    got = pd.read_csv(out)
    expected = classifier.estimator.predict(big)
    assert (got["prediction"].to_numpy() == expected).all()
    assert got.shape[1] == 32
