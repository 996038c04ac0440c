"""Batch scoring for the credit center: one machine (chunked, resumable) or Spark."""

from village_credit.scoring.batch import (ModelRef, ScoreSummary, ScoringError, load_scoring_model,
                                          read_decisions, read_quarantine, resolve_model, score_file)

__all__ = ["ModelRef", "ScoreSummary", "ScoringError", "load_scoring_model", "read_decisions",
           "read_quarantine", "resolve_model", "score_file", "score_file_spark"]


def score_file_spark(*args, **kwargs):  # noqa: ANN002, ANN003 - thin lazy re-export
    """Score on Spark (imports pyspark only when used); see scoring.spark."""
    from village_credit.scoring.spark import score_file_spark as _impl

    return _impl(*args, **kwargs)
