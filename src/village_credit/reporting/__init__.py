"""Reporting layer: self-contained HTML reports and strict JSON of their figures.

See :mod:`village_credit.reporting.html` for the (small, stable) API, and
:mod:`village_credit.reporting.displays` for every chart (scikit-learn-style
``*Display`` objects, imported from that module so that importing the package does
not import them); :mod:`village_credit.reporting.notebook` sets up a notebook.
Helpers used only here (``format_number``, ``traffic_light_class``,
``figure_to_data_uri``, ``ReportJSONEncoder``) are reached through ``reporting.html``.
"""

from village_credit.reporting.html import (
    HtmlReport,
    new_figure,
    to_jsonable,
    write_json,
    write_report,
)

__all__ = [
    "HtmlReport",
    "new_figure",
    "to_jsonable",
    "write_json",
    "write_report",
]
