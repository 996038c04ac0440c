"""Batch scoring for the credit center: one machine (chunked, resumable) or Spark.

``scoring.spark`` imports pyspark only when a session is started, and is itself imported
on first use of :func:`score_file_spark` (it imports MLflow's pyfunc, which
``village-credit score`` on the local engine never imports). Chunk planning, the pyfunc
scorer and the output guards are reached through their modules (``scoring.batch``,
``scoring.outputs``, ``scoring.guards``, ``scoring.spark``).
"""

from village_credit._lazy import lazy_exports
from village_credit.scoring.batch import NoRowsScored, ScoringError, score_file
from village_credit.scoring.outputs import read_decisions, read_quarantine

__all__ = ["NoRowsScored", "ScoringError", "read_decisions", "read_quarantine", "score_file",
           "score_file_spark"]

__getattr__, __dir__ = lazy_exports(__name__, {"score_file_spark": "spark"}, globals())
