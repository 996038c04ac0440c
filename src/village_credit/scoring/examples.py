"""Example inputs and one scored output for the ``>>>`` examples of ``scoring``.

Importable (so an example pastes into a notebook as written), not in ``__all__``. :func:`households_file` writes a few generated households with
bad rows; :func:`scored_example` is what ``score_file``'s own example produces (a
tiny champion from ``registry.examples`` scoring 20 households, row 3 without
``head_age``), made once per process in a temporary folder deleted at exit, so that
the examples of the functions that read an output only read it.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

from village_credit.data.generator import GeneratorConfig, generate_households
from village_credit.registry.examples import ExampleStore
from village_credit.scoring.batch import score_file


def households_file(folder: str | Path, n: int = 20, bad_rows: tuple[int, ...] = (3,)) -> Path:
    """``folder/households.parquet``: ``n`` generated households (seed 1); the
    ``bad_rows`` have no ``head_age`` (each is quarantined, never dropped)."""
    households = generate_households(GeneratorConfig(n_households=n, seed=1))
    households.loc[list(bad_rows), "head_age"] = None
    path = Path(folder) / "households.parquet"
    households.to_parquet(path)
    return path


@functools.cache
def scored_example() -> Path:
    """The output folder of scoring 20 households (row 3 bad) with a tiny champion."""
    tmp = tempfile.TemporaryDirectory(prefix="vc-scored-example-")
    scored_example.keep = tmp  # type: ignore[attr-defined]  # lives until the interpreter exits
    store = ExampleStore()
    try:
        store.champion("demo")
        output = Path(tmp.name) / "scores"
        score_file("models:/demo@champion", households_file(tmp.name), output, progress=False)
    finally:
        store.close()
    return output
