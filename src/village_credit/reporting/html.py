"""Self-contained HTML reports plus the matching JSON of every figure.

Why: the validation, fairness and monitoring reports go to people who may have
no network and no Python (a village panel, a third-party calibrator, a
regulator). One HTML file with charts embedded (base64 PNG, or inline SVG drawn from the
report's numbers: the validation report's) opens anywhere;
the JSON next to it carries every number so a machine can check the report.

Stable API (shared by ``validation`` and ``fairness``; keep it small):

* ``HtmlReport(title, subtitle=None)``: build a report in order.

  - ``.add_section(title, text=None)``: start a new ``<h2>`` section.
  - ``.add_text(text)``: a paragraph (escaped).
  - ``.add_table(df, caption=None, float_format=None, index=False, yuan=())``: a
    DataFrame as an HTML table in a horizontally scrollable box. Cells whose value is a
    traffic-light word (``green``/``amber``/``red``, also ``pass``/``fail``) get a
    coloured style. Numbers: fixed decimals (``0.780``; 4 below 0.01), thousands
    separators from 1,000 on, never scientific notation (:func:`format_number`);
    columns named in ``yuan`` are whole yuan with separators.
  - ``.add_verdict(word, text)``: a coloured banner with the report's one verdict.
  - ``.add_key_values(mapping, caption=None)``: a two-column table (e.g. the
    reproducibility block).
  - ``.add_figure(fig, caption=None, dpi=100)``: embeds a matplotlib figure as
    ``data:image/png;base64,...`` and closes it.
  - ``.add_svg(svg, caption=None)``: embeds a chart drawn as inline SVG
    (:mod:`village_credit.reporting.svg`: no matplotlib, a few ms a chart).
  - ``.render() -> str`` and ``.write(path) -> Path``.

* ``figure_to_data_uri(fig, dpi=100) -> str``: PNG data URI of a figure.
* ``traffic_light_class(value) -> str | None``: CSS class for a light word.
* ``to_jsonable(obj)``: numpy / pandas / dataclass / Path safe conversion
  (NaN and inf become ``None`` so the JSON is strict).
* ``ReportJSONEncoder``: ``json.JSONEncoder`` using ``to_jsonable``.
* ``write_json(obj, path) -> Path``: strict, sorted-key, UTF-8 JSON.
* ``write_report(report, data, out_dir, stem="report") -> (html_path, json_path)``.

Figures use the Agg backend: call ``new_figure(...)`` (a thin wrapper around
``matplotlib.figure.Figure``) so no GUI backend or global pyplot state is touched.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import html
import io
import json
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

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

_LIGHTS: dict[str, str] = {
    "green": "tl-green",
    "pass": "tl-green",
    "amber": "tl-amber",
    "warn": "tl-amber",
    "red": "tl-red",
    "fail": "tl-red",
}

_CSS = """
body{font-family:-apple-system,"Segoe UI","Noto Sans SC","Microsoft YaHei",sans-serif;
margin:2em auto;max-width:1100px;color:#222;line-height:1.4}
h1{border-bottom:2px solid #444;padding-bottom:.2em}
h2{margin-top:1.8em;border-bottom:1px solid #bbb}
table{border-collapse:collapse;margin:.8em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f0f0f0}
td.txt{text-align:left}
figcaption.table-caption{font-size:1em;color:#222;text-align:left;font-weight:bold;padding:.3em 0}
.tl-green{background:#c8ecc8;color:#135e13;font-weight:bold;text-align:center}
.tl-amber{background:#ffe4a8;color:#7a5200;font-weight:bold;text-align:center}
.tl-red{background:#f6c1c1;color:#8a1010;font-weight:bold;text-align:center}
.table-wrap{overflow-x:auto;max-width:100%}
.table-wrap table{margin-top:0}
figure.table{margin:.8em 0}
.verdict{padding:.7em 1em;border-radius:4px;margin:1em 0;font-size:1.1em}
.verdict b{font-size:1.2em;margin-right:.6em}
.verdict.tl-green,.verdict.tl-red,.verdict.tl-amber{text-align:left}
figure{margin:1em 0}
figcaption{font-size:.85em;color:#555}
img,svg.chart{max-width:100%}
svg.chart{display:block;height:auto}
.subtitle{color:#555}
"""


def new_figure(width: float = 6.0, height: float = 4.0) -> Figure:
    """A matplotlib Figure bound to the Agg canvas (no pyplot, no GUI).

    Examples
    --------
    >>> from village_credit.reporting import HtmlReport, new_figure
    >>> fig = new_figure(4, 3)
    >>> ax = fig.add_subplot()
    >>> _ = ax.plot([0, 1], [0, 1])
    >>> page = HtmlReport("ROC").add_figure(fig, caption="diagonal").render()
    >>> page.count("data:image/png;base64,")
    1
    """
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def figure_to_data_uri(fig: Any, dpi: int = 100) -> str:
    """Render a figure to a PNG ``data:`` URI so the HTML needs no side files."""
    buf = io.BytesIO()
    if getattr(fig, "canvas", None) is None or not hasattr(fig.canvas, "print_figure"):
        FigureCanvasAgg(fig)
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    # free pyplot-managed figures too (they exist only if pyplot was imported); plain
    # Figures are just garbage
    plt = sys.modules.get("matplotlib.pyplot")
    try:
        if plt is not None:
            plt.close(fig)
    except Exception:  # noqa: BLE001 - closing is best effort
        pass
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def traffic_light_class(value: Any) -> str | None:
    """CSS class for a traffic-light word, else None."""
    if isinstance(value, str):
        return _LIGHTS.get(value.strip().lower())
    return None


def to_jsonable(obj: Any) -> Any:
    """Convert numpy/pandas/containers to plain JSON types; NaN/inf -> None.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from village_credit.reporting import to_jsonable
    >>> to_jsonable({"auc": np.float64(0.78), "n": np.int64(300), "ece": float("nan"),
    ...              "dates": pd.Index([pd.Timestamp("2025-06-30")])})
    {'auc': 0.78, 'n': 300, 'ece': None, 'dates': ['2025-06-30T00:00:00']}
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, pd.DataFrame):
        return [
            {str(k): to_jsonable(v) for k, v in row.items()}
            for row in obj.reset_index(drop=obj.index.name is None).to_dict(orient="records")
        ]
    if isinstance(obj, pd.Series):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, pd.Index):
        return [to_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = sorted(obj, key=str) if isinstance(obj, (set, frozenset)) else obj
        return [to_jsonable(v) for v in items]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if isinstance(obj, (pd.Timestamp, _dt.datetime, _dt.date)):
        return None if pd.isna(obj) else obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    if obj is pd.NaT or obj is pd.NA:
        return None
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    return str(obj)


class ReportJSONEncoder(json.JSONEncoder):
    """JSON encoder that accepts numpy and pandas objects."""

    def default(self, o: Any) -> Any:  # noqa: D102 - json API
        return to_jsonable(o)


def write_json(obj: Any, path: str | Path) -> Path:
    """Write strict JSON (no NaN), sorted keys, UTF-8, so reports diff cleanly.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from village_credit.reporting import write_json
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = write_json({"gini": np.float64(0.5), "psi": float("inf")}, Path(tmp) / "m.json")
    ...     print(path.read_text(encoding="utf-8"))
    {
      "gini": 0.5,
      "psi": null
    }
    <BLANKLINE>
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(to_jsonable(obj), indent=2, sort_keys=True, ensure_ascii=False,
                      allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def format_number(value: Any) -> str:
    """A number as people read it: ``0.780``, ``0.0008``, ``53,800``; never ``5.38e+04``."""
    v = float(value)
    if not math.isfinite(v):
        return ""
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if v == int(v):
        return f"{int(v)}"
    return f"{v:.4f}" if abs(v) < 0.01 else f"{v:.3f}"


def _fmt_cell(value: Any, float_format: str | None, yuan: bool = False) -> tuple[str, str]:
    """Return (escaped text, css class) for one table cell."""
    light = traffic_light_class(value)
    if light is not None:
        return html.escape(str(value)), light
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "", ""
    if isinstance(value, (bool, np.bool_)):
        return ("yes" if value else "no"), "txt"
    if yuan and isinstance(value, (int, float, np.integer, np.floating)):
        return f"{float(value):,.0f}", ""
    if isinstance(value, (float, np.floating)):
        text = format_number(value) if float_format is None else float_format.format(float(value))
        return html.escape(text), ""
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}" if abs(int(value)) >= 10000 else str(int(value)), ""
    return html.escape(str(value)), "txt"


class HtmlReport:
    """An ordered list of blocks rendered to one self-contained HTML page.

    Examples
    --------
    >>> import pandas as pd
    >>> from village_credit.reporting import HtmlReport
    >>> report = (HtmlReport("Validation", subtitle="model v3")
    ...           .add_verdict("pass", " all gates met")
    ...           .add_section("Discrimination")
    ...           .add_table(pd.DataFrame({"metric": ["AUC"], "value": [0.78], "light": ["green"]})))
    >>> page = report.render()
    >>> page.startswith("<!DOCTYPE html>"), '<td class="tl-green">green</td>' in page
    (True, True)
    """

    def __init__(self, title: str, subtitle: str | None = None) -> None:
        self.title = title
        self.subtitle = subtitle
        self._blocks: list[str] = []

    def add_section(self, title: str, text: str | None = None) -> HtmlReport:
        """Start a section with an ``<h2>`` heading and optional intro text."""
        self._blocks.append(f"<h2>{html.escape(title)}</h2>")
        if text:
            self.add_text(text)
        return self

    def add_text(self, text: str) -> HtmlReport:
        """Add an escaped paragraph."""
        self._blocks.append(f"<p>{html.escape(text)}</p>")
        return self

    def add_table(self, df: pd.DataFrame, caption: str | None = None,
                  float_format: str | None = None, index: bool = False,
                  yuan: tuple[str, ...] | list[str] = ()) -> HtmlReport:
        """Add a DataFrame as a (scrollable) table; traffic-light words are coloured."""
        frame = df.reset_index() if index else df
        is_yuan = [c in set(yuan) for c in frame.columns]
        # the caption sits outside the scroll box, so a table wider than the page keeps its
        # caption wrapped and readable at the page's width (a <caption> spans the table)
        parts = ([f'<figure class="table"><figcaption class="table-caption">{html.escape(caption)}</figcaption>']
                 if caption else [])
        parts.append('<div class="table-wrap"><table>')
        parts.append("<thead><tr>" + "".join(
            f"<th>{html.escape(str(c))}</th>" for c in frame.columns) + "</tr></thead><tbody>")
        for row in frame.itertuples(index=False, name=None):
            cells = []
            for value, yu in zip(row, is_yuan, strict=True):
                text, cls = _fmt_cell(value, float_format, yu)
                cells.append(f'<td class="{cls}">{text}</td>' if cls else f"<td>{text}</td>")
            parts.append("<tr>" + "".join(cells) + "</tr>")
        parts.append("</tbody></table></div>" + ("</figure>" if caption else ""))
        self._blocks.append("".join(parts))
        return self

    def add_verdict(self, word: str, text: str = "") -> HtmlReport:
        """A banner with the one verdict (``pass``/``fail``/other words in amber)."""
        cls = traffic_light_class(word) or "tl-amber"
        self._blocks.append(f'<div class="verdict {cls}"><b>{html.escape(word.upper())}</b>'
                            f"{html.escape(text)}</div>")
        return self

    def add_key_values(self, mapping: Mapping[str, Any], caption: str | None = None) -> HtmlReport:
        """Add a two-column key/value table (nested values shown as JSON)."""
        rows = []
        for key, value in mapping.items():
            shown = (json.dumps(to_jsonable(value), ensure_ascii=False, sort_keys=True)
                     if isinstance(value, (Mapping, list, tuple)) else value)
            rows.append({"key": str(key), "value": shown})
        return self.add_table(pd.DataFrame(rows, columns=["key", "value"]), caption=caption)

    def add_figure(self, fig: Any, caption: str | None = None, dpi: int = 100) -> HtmlReport:
        """Embed a matplotlib figure as a base64 PNG (the figure is closed)."""
        uri = figure_to_data_uri(fig, dpi=dpi)
        alt = html.escape(caption or "figure")
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self._blocks.append(f'<figure><img alt="{alt}" src="{uri}"/>{cap}</figure>')
        return self

    def add_svg(self, svg: str, caption: str | None = None) -> HtmlReport:
        """Embed an ``<svg>`` chart (from :class:`village_credit.reporting.svg.SvgChart`) inline."""
        if not svg.lstrip().startswith("<svg"):
            raise ValueError(f"add_svg: expected an <svg> element, got {svg[:40]!r}")
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        self._blocks.append(f"<figure>{svg}{cap}</figure>")
        return self

    def render(self) -> str:
        """The whole page as a string."""
        sub = f'<p class="subtitle">{html.escape(self.subtitle)}</p>' if self.subtitle else ""
        body = "\n".join(self._blocks)
        return (
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/>"
            f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head>"
            f"<body><h1>{html.escape(self.title)}</h1>{sub}\n{body}\n</body></html>\n"
        )

    def write(self, path: str | Path) -> Path:
        """Write the page as UTF-8 and return its path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.render(), encoding="utf-8")
        return path


def write_report(report: HtmlReport, data: Any, out_dir: str | Path,
                 stem: str = "report") -> tuple[Path, Path]:
    """Write ``<stem>.html`` and ``<stem>.json`` into ``out_dir``.

    Examples
    --------
    >>> import tempfile
    >>> from village_credit.reporting import HtmlReport, write_report
    >>> report = HtmlReport("Fairness").add_text("Approval rates by group.")
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     html_path, json_path = write_report(report, {"approval_gap": 0.03}, tmp, stem="fairness")
    ...     print(html_path.name, json_path.name)
    fairness.html fairness.json
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    html_path = report.write(out / f"{stem}.html")
    json_path = write_json(data, out / f"{stem}.json")
    return html_path, json_path
