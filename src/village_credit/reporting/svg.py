"""Small charts as inline SVG, drawn straight from a report's numbers.

Why: the validation report's five matplotlib figures cost about 1 s of CPU per report
(tick and text layout, PNG encoding), several times the fit of a model on a small
table, and `train` writes that report on every run. These charts are lines, steps,
points and bars on two linear axes: a few dozen SVG elements each, exact (every mark
carries its value in ``data-*`` attributes and a hover ``<title>``), sharp at any zoom,
and searchable as text. matplotlib stays for the notebooks' displays
(:mod:`village_credit.reporting.displays`), which draw on axes a user hands them.

Stable API:

* ``SvgChart(width, height, x=(lo, hi), y=(lo, hi), title=..., xlabel=..., ylabel=...)``
  with ``.line``, ``.points``, ``.bars``, ``.ticks``, ``.legend``, ``.note`` and
  ``.render() -> str`` (an ``<svg>`` element that scales down to its container).
* ``nice_ticks(lo, hi, n=5)``: round tick positions (1, 2, 2.5, 5 x 10^k steps).
* ``percent_labels(values)``: ``"12.5%"``-style labels with as few decimals as the ticks need.

Marks carry ``class`` names (``line``, ``point``, ``bar``, ``tick``) and ``data-series``
so a test can count them against the table they were drawn from.

>>> chart = SvgChart(300, 200, x=(0, 1), y=(0, 1), title="ROC")
>>> chart.line([0, 0.5, 1], [0, 0.8, 1], series="model", label="model")
>>> svg = chart.render()
>>> svg.startswith("<svg") and svg.count('class="point"') == 0 and 'data-series="model"' in svg
True
"""

from __future__ import annotations

import hashlib
import html
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["PALETTE", "SvgChart", "nice_ticks", "percent_labels"]

#: matplotlib's default cycle, so charts read like the displays' figures
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
_FONT = "font-family:-apple-system,'Segoe UI','DejaVu Sans',Arial,sans-serif"


def _num(v: float) -> str:
    """A coordinate with two decimals, no trailing zeros (short, exact enough for a pixel)."""
    text = f"{v:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _text_width(text: str, size: float) -> float:
    """Rough width of a label in pixels (0.58 em a character): enough to place legends."""
    return 0.62 * size * len(text)


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick positions covering ``[lo, hi]`` with at most about ``n + 1`` ticks.

    >>> nice_ticks(0, 1)
    [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    >>> nice_ticks(0, 0.37)
    [0.0, 0.1, 0.2, 0.3]
    """
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [float(lo)] if math.isfinite(lo) else []
    raw = (hi - lo) / max(n, 1)
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * mag >= raw - 1e-12)
    first = math.ceil(lo / step - 1e-9) * step
    ticks, k = [], 0
    while first + k * step <= hi + 1e-9 * step:
        ticks.append(round(first + k * step, 12))
        k += 1
    return ticks


def percent_labels(values: Sequence[float]) -> list[str]:
    """Percent labels with one precision for all, as few decimals as make each exact.

    >>> percent_labels([0.0, 0.025, 0.05])
    ['0.0%', '2.5%', '5.0%']
    """
    pct = np.asarray(values, dtype=float) * 100.0
    dec = next((d for d in range(4) if np.allclose(np.round(pct, d), pct, rtol=0, atol=1e-9)), 3)
    return [f"{v:.{dec}f}%" for v in pct]


class SvgChart:
    """One plot area with linear x and y axes, marks added in order, rendered to SVG.

    ``x`` and ``y`` are the data ranges shown; ``margin`` (left, top, right, bottom, in
    px) leaves room for tick labels, axis titles and notes.
    """

    def __init__(self, width: int, height: int, *, x: tuple[float, float], y: tuple[float, float],
                 title: str = "", xlabel: str = "", ylabel: str = "",
                 margin: tuple[int, int, int, int] = (58, 30, 16, 46)) -> None:
        self.width, self.height = width, height
        self.x0, self.x1 = float(x[0]), float(x[1])
        self.y0, self.y1 = float(y[0]), float(y[1])
        self.left, self.top, self.right, self.bottom = margin
        self.title, self.xlabel, self.ylabel = title, xlabel, ylabel
        self._defs: list[str] = []
        self._marks: list[str] = []
        self._axes: list[str] = []
        self._legend: list[tuple[str, str, str]] = []
        self._legend_at: tuple[str, float, float] | None = None
        self._notes: list[str] = []

    # ------------------------------------------------------------------ scales
    @property
    def plot_box(self) -> tuple[float, float, float, float]:
        """(x, y, width, height) of the plot area in pixels."""
        return (self.left, self.top, self.width - self.left - self.right,
                self.height - self.top - self.bottom)

    def px(self, v: float) -> float:
        """Data x -> pixel x."""
        bx, _, bw, _ = self.plot_box
        span = (self.x1 - self.x0) or 1.0
        return bx + (float(v) - self.x0) / span * bw

    def py(self, v: float) -> float:
        """Data y -> pixel y (up is larger)."""
        _, by, _, bh = self.plot_box
        span = (self.y1 - self.y0) or 1.0
        return by + bh - (float(v) - self.y0) / span * bh

    # ------------------------------------------------------------------ marks
    def line(self, xs: Sequence[float], ys: Sequence[float], *, series: str, label: str | None = None,
             color: str = PALETTE[0], width: float = 1.6, dash: str | None = None,
             markers: bool = False, step: bool = False) -> None:
        """A polyline through the finite points (``step``: horizontal then vertical);
        ``markers`` adds one ``point`` circle per finite point."""
        pts = [(float(a), float(b)) for a, b in zip(xs, ys, strict=True)
               if math.isfinite(float(a)) and math.isfinite(float(b))]
        coords: list[str] = []
        for i, (a, b) in enumerate(pts):
            if step and i:
                coords.append(f"{_num(self.px(a))},{_num(self.py(pts[i - 1][1]))}")
            coords.append(f"{_num(self.px(a))},{_num(self.py(b))}")
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        self._marks.append(f'<polyline class="line" data-series="{_esc(series)}" data-n="{len(pts)}" '
                           f'fill="none" stroke="{color}" stroke-width="{width}"{dash_attr} '
                           f'points="{" ".join(coords)}"/>')
        if markers:
            self.points([a for a, _ in pts], [b for _, b in pts], series=series, color=color)
        if label:
            self._legend.append((label, color, "dash" if dash else "line"))

    def points(self, xs: Sequence[float], ys: Sequence[float], *, series: str, color: str = PALETTE[0],
               radius: float = 3.2, label: str | None = None, names: Sequence[str] | None = None,
               shape: str = "circle") -> None:
        """One mark per finite point, its values in ``data-x`` / ``data-y`` and a hover title;
        ``shape="dash"``: a short horizontal bar (a predicted level over a bar)."""
        for i, (a, b) in enumerate(zip(xs, ys, strict=True)):
            if not (math.isfinite(float(a)) and math.isfinite(float(b))):
                continue
            name = f"{names[i]}: " if names is not None else ""
            tip = f"<title>{_esc(name)}{float(b):.4g} at {float(a):.4g}</title>"
            data = f'class="point" data-series="{_esc(series)}" data-x="{float(a):.6g}" data-y="{float(b):.6g}"'
            if shape == "dash":
                cx, cy = self.px(a), self.py(b)
                self._marks.append(f'<line {data} x1="{_num(cx - 11)}" x2="{_num(cx + 11)}" y1="{_num(cy)}" '
                                   f'y2="{_num(cy)}" stroke="{color}" stroke-width="2.5">{tip}</line>')
            else:
                self._marks.append(f'<circle {data} cx="{_num(self.px(a))}" cy="{_num(self.py(b))}" '
                                   f'r="{radius}" fill="{color}">{tip}</circle>')
        if label:
            self._legend.append((label, color, shape if shape == "dash" else "point"))

    def bars(self, xs: Sequence[float], heights: Sequence[float], *, series: str, width: float,
             colors: Sequence[str] | str = PALETTE[0], hatched: Sequence[bool] | None = None,
             names: Sequence[str] | None = None, label: str | None = None) -> None:
        """Bars from 0 to each height, centred on ``xs``, ``width`` in data units; a hatched
        bar is an outline with diagonal lines (weak evidence), not a solid block."""
        cols = [colors] * len(xs) if isinstance(colors, str) else list(colors)
        for i, (a, h) in enumerate(zip(xs, heights, strict=True)):
            hv = float(h) if h is not None and math.isfinite(float(h)) else 0.0
            x0, x1 = self.px(float(a) - width / 2), self.px(float(a) + width / 2)
            top, base = self.py(max(hv, 0.0)), self.py(min(hv, 0.0))
            color = cols[i]
            if hatched is not None and hatched[i]:
                pid = f"@ID@-hatch{len(self._defs)}"
                self._defs.append(
                    f'<pattern id="{pid}" width="6" height="6" patternUnits="userSpaceOnUse" '
                    f'patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="6" stroke="{color}" '
                    'stroke-width="2"/></pattern>')
                fill = f'fill="url(#{pid})" stroke="{color}" stroke-width="1.2"'
            else:
                fill = f'fill="{color}"'
            name = f"{names[i]}: " if names is not None else ""
            self._marks.append(
                f'<rect class="bar" data-series="{_esc(series)}" data-x="{float(a):.6g}" data-y="{hv:.6g}" '
                f'x="{_num(x0)}" y="{_num(top)}" width="{_num(max(x1 - x0, 0.5))}" '
                f'height="{_num(max(base - top, 0.0))}" {fill}><title>{_esc(name)}{hv:.4g}</title></rect>')
        if label:
            self._legend.append((label, cols[0] if cols else PALETTE[0], "bar"))

    # ------------------------------------------------------------------ axes and text
    def ticks(self, axis: str, values: Sequence[float], labels: Sequence[str], *, rotate: bool = False,
              size: float = 10.0, grid: bool = False) -> None:
        """Tick marks and labels on ``"x"`` or ``"y"``; a label may hold ``\\n`` for two lines."""
        bx, by, bw, bh = self.plot_box
        for v, lab in zip(values, labels, strict=True):
            lines = str(lab).split("\n")
            if axis == "x":
                x = self.px(v)
                self._axes.append(f'<line class="tick" x1="{_num(x)}" x2="{_num(x)}" y1="{_num(by + bh)}" '
                                  f'y2="{_num(by + bh + 4)}" stroke="#333"/>')
                if rotate:
                    self._axes.append(f'<text x="{_num(x)}" y="{_num(by + bh + 8)}" font-size="{size}" '
                                      f'text-anchor="end" transform="rotate(-40 {_num(x)} {_num(by + bh + 8)})" '
                                      f'dominant-baseline="hanging">{_esc(lab)}</text>')
                else:
                    spans = "".join(f'<tspan x="{_num(x)}" dy="{0 if i == 0 else size + 2}">{_esc(t)}</tspan>'
                                    for i, t in enumerate(lines))
                    self._axes.append(f'<text y="{_num(by + bh + 6 + size)}" font-size="{size}" '
                                      f'text-anchor="middle">{spans}</text>')
            else:
                y = self.py(v)
                if grid:
                    self._axes.append(f'<line x1="{_num(bx)}" x2="{_num(bx + bw)}" y1="{_num(y)}" '
                                      f'y2="{_num(y)}" stroke="#e5e5e5"/>')
                self._axes.append(f'<line class="tick" x1="{_num(bx - 4)}" x2="{_num(bx)}" y1="{_num(y)}" '
                                  f'y2="{_num(y)}" stroke="#333"/>')
                self._axes.append(f'<text x="{_num(bx - 6)}" y="{_num(y + size * 0.35)}" font-size="{size}" '
                                  f'text-anchor="end">{_esc(lab)}</text>')

    def legend(self, where: str = "lower right") -> None:
        """Place the legend: ``"lower right"`` / ``"upper left"`` inside the plot area,
        ``"right"`` beside it (in the right margin), ``"below"`` under the x-axis title."""
        self._legend_at = (where, 0.0, 0.0)

    def note(self, text: str) -> None:
        """A line of small text under the chart (what hatching or a grey bar means)."""
        self._notes.append(text)

    def _legend_svg(self) -> str:
        if not self._legend or self._legend_at is None:
            return ""
        where = self._legend_at[0]
        size, row = 10.0, 15.0
        w = max(_text_width(t, size) for t, _, _ in self._legend) + 30
        h = row * len(self._legend) + 6
        bx, by, bw, bh = self.plot_box
        if where == "lower right":
            x, y = bx + bw - w - 6, by + bh - h - 6
        elif where == "upper left":
            x, y = bx + 6, by + 6
        elif where == "right":
            x, y = bx + bw + 8, by
        else:  # below
            x, y = bx, self.height - h - 4 - 14 * len(self._notes)
        parts = [(f'<g class="legend"><rect x="{_num(x)}" y="{_num(y)}" width="{_num(w)}" height="{_num(h)}" '
                  'fill="white" fill-opacity="0.85" stroke="#ccc"/>')]
        for i, (text, color, kind) in enumerate(self._legend):
            cy = y + 4 + row * i + row / 2
            sx = x + 6
            if kind == "bar":
                parts.append(f'<rect x="{_num(sx)}" y="{_num(cy - 5)}" width="16" height="10" fill="{color}"/>')
            elif kind == "point":
                parts.append(f'<circle cx="{_num(sx + 8)}" cy="{_num(cy)}" r="3.2" fill="{color}"/>')
            else:
                dash = ' stroke-dasharray="5 3"' if kind == "dash" else ""
                stroke = 2.5 if kind == "dash" and color == "black" else 1.6
                parts.append(f'<line x1="{_num(sx)}" x2="{_num(sx + 16)}" y1="{_num(cy)}" y2="{_num(cy)}" '
                             f'stroke="{color}" stroke-width="{stroke}"{dash}/>')
            parts.append(f'<text x="{_num(sx + 22)}" y="{_num(cy + 3.5)}" font-size="{size}">{_esc(text)}</text>')
        parts.append("</g>")
        return "".join(parts)

    def render(self) -> str:
        """The chart as one ``<svg>`` element (scales down to its container, never up)."""
        bx, by, bw, bh = self.plot_box
        out = [(f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {self.width} {self.height}" '
                f'width="{self.width}" height="{self.height}" role="img" aria-label="{_esc(self.title)}" '
                f'style="max-width:100%;height:auto;{_FONT}">')]
        if self._defs:
            out.append("<defs>" + "".join(self._defs) + "</defs>")
        out.append(f'<rect x="0" y="0" width="{self.width}" height="{self.height}" fill="white"/>')
        out.append(f'<clipPath id="@ID@-plot"><rect x="{_num(bx)}" y="{_num(by - 2)}" width="{_num(bw)}" '
                   f'height="{_num(bh + 4)}"/></clipPath>')
        out.extend(a for a in self._axes if 'stroke="#e5e5e5"' in a)  # grid under the marks
        out.append('<g clip-path="url(#@ID@-plot)">' + "".join(self._marks) + "</g>")
        out.append(f'<rect x="{_num(bx)}" y="{_num(by)}" width="{_num(bw)}" height="{_num(bh)}" fill="none" '
                   'stroke="#333" stroke-width="0.8"/>')
        out.extend(a for a in self._axes if 'stroke="#e5e5e5"' not in a)
        if self.title:
            out.append(f'<text x="{_num(bx + bw / 2)}" y="18" font-size="12" font-weight="bold" '
                       f'text-anchor="middle">{_esc(self.title)}</text>')
        if self.xlabel:
            out.append(f'<text class="xlabel" x="{_num(bx + bw / 2)}" y="{_num(self._xlabel_y())}" font-size="11" '
                       f'text-anchor="middle">{_esc(self.xlabel)}</text>')
        if self.ylabel:
            cy = by + bh / 2
            out.append(f'<text x="14" y="{_num(cy)}" font-size="11" text-anchor="middle" '
                       f'transform="rotate(-90 14 {_num(cy)})">{_esc(self.ylabel)}</text>')
        for i, text in enumerate(self._notes):
            y = self.height - 6 - 14 * (len(self._notes) - 1 - i)
            out.append(f'<text class="note" x="{_num(bx)}" y="{_num(y)}" font-size="10" fill="#444">'
                       f"{_esc(text)}</text>")
        out.append(self._legend_svg())
        out.append("</svg>")
        text = "".join(out)
        # ids are global to the HTML page that holds several charts: each chart's own prefix,
        # from its content (the same chart gives the same page, run after run)
        return text.replace("@ID@", "c" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:10])

    def _xlabel_y(self) -> float:
        """Baseline of the x-axis title: below the tick labels, above legend and notes."""
        legend_h = (15.0 * len(self._legend) + 10) if self._legend_at and self._legend_at[0] == "below" else 0.0
        return self.height - 8 - legend_h - 14 * len(self._notes)
