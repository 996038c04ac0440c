"""Reporting layer: self-contained HTML reports and strict JSON of their figures.

See :mod:`village_credit.reporting.html` for the (small, stable) API, and
:mod:`village_credit.reporting.displays` for every chart (scikit-learn-style
``*Display`` objects, imported from that module so that importing the package does
not import them).
"""

from village_credit.reporting.html import (
    HtmlReport,
    ReportJSONEncoder,
    figure_to_data_uri,
    format_number,
    new_figure,
    to_jsonable,
    traffic_light_class,
    write_json,
    write_report,
)

__all__ = [
    "HtmlReport",
    "ReportJSONEncoder",
    "figure_to_data_uri",
    "format_number",
    "new_figure",
    "to_jsonable",
    "traffic_light_class",
    "write_json",
    "write_report",
]
