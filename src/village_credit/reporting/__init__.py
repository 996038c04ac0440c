"""Reporting layer: self-contained HTML reports and strict JSON of their figures.

See :mod:`village_credit.reporting.html` for the (small, stable) API, and
:mod:`village_credit.reporting.displays` for every chart (scikit-learn-style
``*Display`` objects, imported from that module so that importing the package does
not import them); :mod:`village_credit.reporting.notebook` sets up a notebook.
Helpers used only here (``format_number``, ``traffic_light_class``,
``figure_to_data_uri``, ``ReportJSONEncoder``) are reached through ``reporting.html``.

Why lazy: ``reporting.progress`` (the scoring command's row bar) must not pull
matplotlib into every scoring process through this package's ``__init__``.
"""

from __future__ import annotations

from village_credit._lazy import lazy_exports

_EXPORTS: dict[str, str] = {name: "html" for name in
                            ("HtmlReport", "new_figure", "to_jsonable", "write_json", "write_report")}

__all__ = [
    "HtmlReport",
    "new_figure",
    "to_jsonable",
    "write_json",
    "write_report",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
