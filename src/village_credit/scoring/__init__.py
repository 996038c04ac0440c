"""Batch scoring for the credit center: one machine (chunked, resumable) or Spark."""

from village_credit.scoring.batch import (NoRowsScored, ModelRef, PyfuncScorer, ScoreSummary, ScoringError,
                                          load_scoring_model, read_decisions, read_model_metadata,
                                          read_quarantine, read_quarantine_rows, resolve_model, score_chunk,
                                          score_file)
from village_credit.scoring.spark import score_file_spark  # imports pyspark only when called

__all__ = ["ModelRef", "NoRowsScored", "PyfuncScorer", "ScoreSummary", "ScoringError", "load_scoring_model",
           "read_decisions", "read_model_metadata", "read_quarantine", "read_quarantine_rows",
           "resolve_model", "score_chunk", "score_file", "score_file_spark"]
