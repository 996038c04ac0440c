"""Batch scoring for the credit center: one machine (chunked, resumable) or Spark.

``scoring.spark`` imports pyspark only when a session is started. Chunk planning,
the pyfunc scorer and the output guards are reached through their modules
(``scoring.batch``, ``scoring.outputs``, ``scoring.guards``, ``scoring.spark``).
"""

from village_credit.scoring.batch import NoRowsScored, ScoringError, score_file
from village_credit.scoring.outputs import read_decisions, read_quarantine
from village_credit.scoring.spark import score_file_spark

__all__ = ["NoRowsScored", "ScoringError", "read_decisions", "read_quarantine", "score_file",
           "score_file_spark"]
