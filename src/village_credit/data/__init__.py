"""Data layer: household schema, synthetic generator, Parquet/CSV I/O, validation.

Knows nothing of rules, models or MLflow (lower layers never import higher ones).
"""

from village_credit.data.generator import (
    GeneratorConfig,
    drift_townships,
    generate_households,
    generate_vintage,
    iter_household_tables,
    write_synthetic,
)
from village_credit.data.io import (
    arrow_schema,
    count_rows,
    history_long,
    iter_batches,
    read_table,
    write_parquet,
)
from village_credit.data.schema import (
    HISTORY_MONTHS,
    ID_COLUMNS,
    SCHEMA,
    TRUTH_COLUMNS,
    ColumnSpec,
    HouseholdSchema,
    history_columns,
    months_in,
)
from village_credit.data.validation import (
    ValidationResult,
    coerce_households,
    validate_households,
)

__all__ = [
    "HISTORY_MONTHS",
    "ID_COLUMNS",
    "SCHEMA",
    "TRUTH_COLUMNS",
    "ColumnSpec",
    "GeneratorConfig",
    "HouseholdSchema",
    "ValidationResult",
    "arrow_schema",
    "coerce_households",
    "count_rows",
    "drift_townships",
    "generate_households",
    "generate_vintage",
    "history_columns",
    "history_long",
    "iter_batches",
    "iter_household_tables",
    "months_in",
    "read_table",
    "validate_households",
    "write_parquet",
    "write_synthetic",
]
