"""Data layer: household schema, synthetic generator, Parquet/CSV I/O, validation.

Knows nothing of rules, models or MLflow (lower layers never import higher ones).
``__all__`` holds what other layers, the notebooks and the docs use; the rest
(``io.arrow_schema``, ``schema.ColumnSpec``, ``validation.coerce_households``, ...)
is reached through its module.
"""

from village_credit.data.generator import (
    GeneratorConfig,
    drift_townships,
    generate_households,
    generate_vintage,
    write_synthetic,
)
from village_credit.data.io import (
    count_rows,
    history_long,
    iter_batches,
    read_table,
    write_parquet,
)
from village_credit.data.schema import (
    SCHEMA,
    TRUTH_COLUMNS,
    HouseholdSchema,
    history_columns,
    months_in,
)
from village_credit.data.validation import validate_households

__all__ = [
    "SCHEMA",
    "TRUTH_COLUMNS",
    "GeneratorConfig",
    "HouseholdSchema",
    "count_rows",
    "drift_townships",
    "generate_households",
    "generate_vintage",
    "history_columns",
    "history_long",
    "iter_batches",
    "months_in",
    "read_table",
    "validate_households",
    "write_parquet",
    "write_synthetic",
]
