"""A small inline-SVG plotting kit for the campaign pages.

Why not matplotlib: the pages must be self-contained and render from the run folder alone on any
machine, so plots are plain SVG markup built here (no fonts, images or scripts to fetch). Every
function returns an `<svg>` string ready to drop into HTML5 (no xmlns, which HTML does not need and
which would put an external-looking URL into the page).

Scatter points are drawn as zero-length round-capped subpaths of one `<path>` per series: a dot per
point at ~12 bytes each, so tens of thousands of operations stay small. Each such path carries
`data-points="N"` and exactly N `M` commands, which lets tests check that a plot is an image of the
run's data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

FONT = "font-family=\"system-ui,sans-serif\""
AXIS = "#555"
GRID = "#e3e3e3"

STATUS_COLOURS: dict[str, str] = {
    "pass": "#2e7d32",
    "ok": "#2e7d32",
    "fail": "#c62828",
    "error": "#ef6c00",
    "info": "#ef6c00",
    "indeterminate": "#ef6c00",
    "skipped": "#9e9e9e",
    "missing": "#bdbdbd",
}


def _a(text: object) -> str:
    """Escape for an attribute or text node."""
    return escape(str(text), quote=True)


def _n(v: float) -> str:
    """Compact coordinate: one decimal, no trailing zeros."""
    s = f"{v:.1f}"
    return s[:-2] if s.endswith(".0") else s


def fmt_num(v: float) -> str:
    """Tick label: short and human (1k, 2.5, 0.01)."""
    if v == 0:
        return "0"
    if abs(v) >= 10000:
        return f"{v / 1000:g}k"
    if abs(v) >= 1:
        return f"{v:.6g}"
    return f"{v:.3g}"


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick positions (1, 2, 5 x 10^k steps) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / max(count, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks: list[float] = []
    t = start
    while t <= hi + step * 1e-9:
        if t >= lo - step * 1e-9:
            ticks.append(round(t, 12))
        t += step
    return ticks


def log_ticks(lo: float, hi: float) -> list[float]:
    """Powers of ten (and 2x, 5x when the range is narrow) inside [lo, hi]; lo > 0."""
    lo_e, hi_e = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    mults = (1, 2, 5) if hi_e - lo_e <= 2 else (1,)
    return [m * 10.0**e for e in range(lo_e, hi_e + 1) for m in mults if lo <= m * 10.0**e <= hi]


@dataclass
class Scale:
    """Maps a data interval onto a pixel interval, linearly or logarithmically."""

    d0: float
    d1: float
    p0: float
    p1: float
    log: bool = False

    def __post_init__(self) -> None:
        if self.log:
            self.d0 = max(self.d0, 1e-9)
            self.d1 = max(self.d1, self.d0 * 10)
        elif self.d1 <= self.d0:
            self.d1 = self.d0 + 1.0

    def __call__(self, v: float) -> float:
        if self.log:
            v = max(v, self.d0)
            f = (math.log10(v) - math.log10(self.d0)) / (math.log10(self.d1) - math.log10(self.d0))
        else:
            f = (v - self.d0) / (self.d1 - self.d0)
        f = min(max(f, 0.0), 1.0)
        return self.p0 + f * (self.p1 - self.p0)

    def ticks(self) -> list[float]:
        return log_ticks(self.d0, self.d1) if self.log else nice_ticks(self.d0, self.d1)


@dataclass
class Series:
    """Points of one kind (e.g. ok operations) drawn as dots of one colour."""

    name: str
    points: Sequence[tuple[float, float]]
    colour: str


@dataclass
class Band:
    """A shaded x-interval, e.g. the window during which a fault was applied."""

    x0: float
    x1: float
    label: str = ""
    colour: str = "#ffcdd2"


@dataclass
class Bar:
    """One horizontal bar; `value=None` draws a labelled gap (e.g. 'did not converge')."""

    label: str
    value: float | None
    colour: str = "#1565c0"
    note: str = ""


@dataclass
class Cell:
    """One square of an outcome strip (e.g. one chaos cycle)."""

    status: str
    title: str = ""


@dataclass
class StripRow:
    label: str
    cells: list[Cell] = field(default_factory=list)


def _open(width: int, height: int, title: str, desc: str, cls: str) -> list[str]:
    return [
        f'<svg class="plot {_a(cls)}" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" {FONT} font-size="11">',
        f"<title>{_a(title)}</title><desc>{_a(desc)}</desc>",
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff"/>',
        f'<text x="{width / 2:g}" y="16" text-anchor="middle" font-size="13" font-weight="600">{_a(title)}</text>',
    ]


def empty_plot(title: str, message: str, width: int = 860, height: int = 80) -> str:
    """A plot frame saying why there is nothing to draw, so a gap is never silent."""
    parts = _open(width, height, title, message, "empty")
    parts.append(
        f'<text x="{width / 2:g}" y="{height / 2 + 12:g}" text-anchor="middle" fill="{AXIS}">{_a(message)}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _legend(items: Sequence[tuple[str, str]], x_right: float, y: float) -> list[str]:
    out: list[str] = []
    x = x_right
    for label, colour in reversed(items):
        w = 7 * len(label) + 22
        x -= w
        out.append(f'<rect x="{_n(x)}" y="{_n(y - 8)}" width="10" height="10" fill="{_a(colour)}"/>')
        out.append(f'<text x="{_n(x + 14)}" y="{_n(y + 1)}">{_a(label)}</text>')
    return out


def scatter_plot(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    bands: Sequence[Band] = (),
    log_y: bool = False,
    width: int = 860,
    height: int = 320,
    desc: str = "",
    dot: float = 3.5,
) -> str:
    """Dots per series over shaded bands (Jepsen's latency-raw shape)."""
    xs = [p[0] for s in series for p in s.points] + [b.x0 for b in bands] + [b.x1 for b in bands]
    ys = [p[1] for s in series for p in s.points]
    if not any(s.points for s in series):
        return empty_plot(title, "no data points in this run")
    left, right, top, bottom = 64, width - 16, 40, height - 42
    x_lo, x_hi = min(xs), max(xs)
    pad = (x_hi - x_lo) * 0.02 or 0.5  # keep the outermost dots off the axis
    x_lo, x_hi = x_lo - pad, x_hi + pad
    if log_y:
        positive = [y for y in ys if y > 0] or [1.0]
        y_lo, y_hi = 10 ** math.floor(math.log10(min(positive))), 10 ** math.ceil(math.log10(max(positive)))
    else:
        y_lo, y_hi = 0.0, max(ys) * 1.05 if max(ys) > 0 else 1.0
    sx = Scale(x_lo, x_hi if x_hi > x_lo else x_lo + 1, left, right)
    sy = Scale(y_lo, y_hi, bottom, top, log=log_y)
    parts = _open(width, height, title, desc or title, "scatter")
    for b in bands:
        x0, x1 = sx(b.x0), sx(b.x1)
        parts.append(
            f'<rect class="band" x="{_n(x0)}" y="{top}" width="{_n(max(x1 - x0, 1.5))}" height="{bottom - top}" '
            f'fill="{_a(b.colour)}" fill-opacity="0.55"><title>{_a(b.label)}</title></rect>'
        )
    parts.extend(_axes(sx, sy, left, right, top, bottom, x_label, y_label, width, height))
    for s in series:
        if not s.points:
            continue
        d = "".join(f"M{_n(sx(x))} {_n(sy(y))}h0" for x, y in s.points)
        parts.append(
            f'<path class="pts" data-series="{_a(s.name)}" data-points="{len(s.points)}" d="{d}" '
            f'stroke="{_a(s.colour)}" stroke-width="{dot:g}" stroke-linecap="round" fill="none" stroke-opacity="0.8"/>'
        )
    legend = [(f"{s.name} ({len(s.points)})", s.colour) for s in series]
    if bands:
        legend.append(("fault window", bands[0].colour))
    parts.extend(_legend(legend, right, 30))
    parts.append("</svg>")
    return "".join(parts)


def _axes(
    sx: Scale, sy: Scale, left: float, right: float, top: float, bottom: float,
    x_label: str, y_label: str, width: int, height: int,
) -> list[str]:
    out: list[str] = []
    for t in sy.ticks():
        y = sy(t)
        out.append(f'<line x1="{left}" x2="{right}" y1="{_n(y)}" y2="{_n(y)}" stroke="{GRID}"/>')
        out.append(f'<text x="{left - 6}" y="{_n(y + 4)}" text-anchor="end" fill="{AXIS}">{_a(fmt_num(t))}</text>')
    for t in sx.ticks():
        x = sx(t)
        out.append(f'<line x1="{_n(x)}" x2="{_n(x)}" y1="{bottom}" y2="{bottom + 4}" stroke="{AXIS}"/>')
        out.append(f'<text x="{_n(x)}" y="{bottom + 16}" text-anchor="middle" fill="{AXIS}">{_a(fmt_num(t))}</text>')
    out.append(
        f'<path d="M{left} {top}V{bottom}H{right}" stroke="{AXIS}" fill="none"/>'
        f'<text x="{(left + right) / 2:g}" y="{height - 6}" text-anchor="middle" fill="{AXIS}">{_a(x_label)}</text>'
        f'<text transform="translate(14 {(top + bottom) / 2:g}) rotate(-90)" text-anchor="middle" '
        f'fill="{AXIS}">{_a(y_label)}</text>'
    )
    return out


def bar_chart(
    bars: Sequence[Bar],
    *,
    title: str,
    x_label: str,
    threshold: float | None = None,
    threshold_label: str = "",
    max_value: float | None = None,
    value_fmt: str = "{:.3g}",
    width: int = 860,
    desc: str = "",
) -> str:
    """Horizontal bars, one per label, with an optional vertical threshold line."""
    if not bars:
        return empty_plot(title, "nothing recorded")
    row = 24
    left = min(260, 30 + 7 * max(len(b.label) for b in bars))
    right, top = width - 90, 36
    height = top + row * len(bars) + 40
    bottom = top + row * len(bars)
    values = [b.value for b in bars if b.value is not None]
    hi = max_value if max_value is not None else max([*values, threshold or 0.0, 1e-9]) * 1.05
    sx = Scale(0.0, hi, left, right)
    parts = _open(width, height, title, desc or title, "bars")
    for t in sx.ticks():
        x = sx(t)
        parts.append(f'<line x1="{_n(x)}" x2="{_n(x)}" y1="{top}" y2="{bottom}" stroke="{GRID}"/>')
        parts.append(f'<text x="{_n(x)}" y="{bottom + 14}" text-anchor="middle" fill="{AXIS}">{_a(fmt_num(t))}</text>')
    for i, b in enumerate(bars):
        y = top + i * row
        parts.append(
            f'<text x="{left - 6}" y="{y + row / 2 + 4:g}" text-anchor="end">{_a(b.label)}</text>'
        )
        if b.value is None:
            parts.append(
                f'<text class="gap" x="{left + 4}" y="{y + row / 2 + 4:g}" fill="{STATUS_COLOURS["fail"]}">'
                f"{_a(b.note or 'no value')}</text>"
            )
            continue
        w = sx(b.value) - left
        label = value_fmt.format(b.value) + (f" {b.note}" if b.note else "")
        parts.append(
            f'<rect class="bar" data-value="{_a(b.value)}" x="{left}" y="{y + 4}" width="{_n(max(w, 1))}" '
            f'height="{row - 8}" fill="{_a(b.colour)}"><title>{_a(b.label)}: {_a(label)}</title></rect>'
        )
        parts.append(f'<text x="{_n(left + max(w, 1) + 4)}" y="{y + row / 2 + 4:g}">{_a(label)}</text>')
    parts.append(f'<path d="M{left} {top}V{bottom}H{right}" stroke="{AXIS}" fill="none"/>')
    if threshold is not None:
        x = sx(threshold)
        parts.append(
            f'<line class="threshold" x1="{_n(x)}" x2="{_n(x)}" y1="{top - 4}" y2="{bottom}" stroke="#000" '
            f'stroke-dasharray="4 3"/><text x="{_n(x)}" y="{top - 6}" text-anchor="middle" font-size="10">'
            f"{_a(threshold_label or fmt_num(threshold))}</text>"
        )
    parts.append(
        f'<text x="{(left + right) / 2:g}" y="{height - 8}" text-anchor="middle" fill="{AXIS}">{_a(x_label)}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def strip_chart(rows: Sequence[StripRow], *, title: str, width: int = 860, desc: str = "") -> str:
    """One row of coloured squares per class: an at-a-glance outcome per cycle."""
    if not rows or not any(r.cells for r in rows):
        return empty_plot(title, "no cycles recorded")
    left = min(240, 30 + 7 * max(len(r.label) for r in rows))
    right = width - 16
    n = max(len(r.cells) for r in rows)
    cell = max(2.0, min(14.0, (right - left) / n))
    row_h = 18
    top = 40
    height = top + row_h * len(rows) + 22
    parts = _open(width, height, title, desc or title, "strip")
    statuses: list[str] = []
    for i, r in enumerate(rows):
        y = top + i * row_h
        parts.append(f'<text x="{left - 6}" y="{y + 12}" text-anchor="end">{_a(r.label)}</text>')
        for j, c in enumerate(r.cells):
            colour = STATUS_COLOURS.get(c.status, STATUS_COLOURS["missing"])
            if c.status not in statuses:
                statuses.append(c.status)
            parts.append(
                f'<rect class="cell" data-status="{_a(c.status)}" x="{_n(left + j * cell)}" y="{y + 2}" '
                f'width="{_n(max(cell - 1, 1))}" height="{row_h - 4}" fill="{colour}">'
                f"<title>{_a(c.title or c.status)}</title></rect>"
            )
    parts.append(
        f'<text x="{left}" y="{height - 6}" fill="{AXIS}">cycle 1 \u2192 {n}</text>'
    )
    parts.extend(_legend([(s, STATUS_COLOURS.get(s, STATUS_COLOURS["missing"])) for s in statuses], right, 28))
    parts.append("</svg>")
    return "".join(parts)
