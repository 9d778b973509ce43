"""Batch scoring of CSV files: streaming, vectorized validation, atomic output."""

from mlserve.batch.core import BatchOptions, ScoreResult, score_file, score_stream
from mlserve.batch.output import LocalFileSink, S3MultipartSink

__all__ = ["BatchOptions", "LocalFileSink", "S3MultipartSink", "ScoreResult", "score_file", "score_stream"]
