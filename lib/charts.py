"""Server-side SVG charts: no JavaScript library and no CDN, and the charts
render the same with scripts off. Every piece of text goes through
``format_html``, so a queue, job or tenant name cannot inject markup."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

# Readable on the admin's light and dark themes alike.
PALETTE = ("#417690", "#e07b39", "#5b9e3a", "#c0392b", "#7d5ba6", "#2a9d8f", "#b8860b", "#8c564b")
LEFT, RIGHT, TOP, BOTTOM = 52, 12, 26, 22  # margins for the axis labels, title and legend


@dataclass(frozen=True)
class Series:
    label: str
    points: Sequence[tuple[float, float | None]]  # (x, y); y None is a gap in the line
    color: str = ""


def clock(x: float) -> str:
    """A unix timestamp as local HH:MM (the x axis of every chart here)."""
    return timezone.localtime(datetime.fromtimestamp(x, UTC)).strftime("%H:%M")


def day_clock(x: float) -> str:
    return timezone.localtime(datetime.fromtimestamp(x, UTC)).strftime("%d %b %H:%M")


def number(value: float) -> str:
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    if value >= 1000:
        return f"{value / 1000:.1f}k"
    if value >= 10 or value == int(value):
        return f"{value:.0f}"
    return f"{value:.2f}".rstrip("0").rstrip(".")


def nice_ceiling(value: float) -> float:
    """The axis top: 1, 2, 2.5 or 5 times a power of ten, at least ``value``."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)


@dataclass(frozen=True)
class _Frame:
    width: int
    height: int
    x_min: float
    x_max: float
    y_max: float

    def x(self, value: float) -> float:
        span = self.x_max - self.x_min or 1.0
        return LEFT + (value - self.x_min) / span * (self.width - LEFT - RIGHT)

    def y(self, value: float) -> float:
        return self.height - BOTTOM - value / self.y_max * (self.height - TOP - BOTTOM)


def _colored(series: Sequence[Series]) -> list[Series]:
    return [Series(s.label, s.points, s.color or PALETTE[i % len(PALETTE)]) for i, s in enumerate(series)]


def _frame(series: Sequence[Series], width: int, height: int, x_pad: float = 0.0) -> _Frame | None:
    xs = [x for s in series for x, y in s.points if y is not None]
    ys = [y for s in series for _, y in s.points if y is not None]
    if not xs:
        return None
    return _Frame(width, height, min(xs) - x_pad, max(xs) + x_pad, nice_ceiling(max(ys)))


def _join(parts: Iterable[SafeString]) -> SafeString:
    """Concatenate already-escaped pieces without marking anything safe by hand."""
    return format_html_join("", "{}", ((part,) for part in parts))


def _chrome(
    frame: _Frame, title: str, unit: str, series: Sequence[Series], x_format: Callable[[float], str]
) -> SafeString:
    """Title, legend, the y grid (0, half, top) and three x labels."""
    parts = [format_html('<text class="chart-title" x="{}" y="14">{}</text>', LEFT, title)]
    legend_x = frame.width - RIGHT
    for s in reversed(series):  # right-aligned, first series leftmost
        parts.append(
            format_html(
                '<text class="chart-legend" x="{}" y="14" text-anchor="end" fill="{}">■ {}</text>',
                f"{legend_x:.0f}",
                s.color,
                s.label,
            )
        )
        legend_x -= 14 + 7 * len(s.label)
    for fraction in (0.0, 0.5, 1.0):
        value = frame.y_max * fraction
        y = f"{frame.y(value):.1f}"
        parts.append(
            format_html(
                '<line class="chart-grid" x1="{}" x2="{}" y1="{}" y2="{}"/>'
                '<text class="chart-axis" x="{}" y="{}" text-anchor="end" dy="4">{}{}</text>',
                LEFT,
                frame.width - RIGHT,
                y,
                y,
                LEFT - 6,
                y,
                number(value),
                unit,
            )
        )
    anchors = (("start", frame.x_min), ("middle", (frame.x_min + frame.x_max) / 2), ("end", frame.x_max))
    for anchor, x in anchors:
        parts.append(
            format_html(
                '<text class="chart-axis" x="{}" y="{}" text-anchor="{}">{}</text>',
                f"{frame.x(x):.1f}",
                frame.height - 6,
                anchor,
                x_format(x),
            )
        )
    return _join(parts)


def _svg(width: int, height: int, title: str, body: SafeString) -> SafeString:
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" width="100%" preserveAspectRatio="xMidYMid meet" '
        'role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">{}</svg>',
        width,
        height,
        title,
        body,
    )


def _empty(width: int, height: int, title: str) -> SafeString:
    body = format_html(
        '<text class="chart-title" x="{}" y="14">{}</text>'
        '<text class="chart-empty" x="{}" y="{}" text-anchor="middle">No data in this period yet</text>',
        LEFT,
        title,
        width // 2,
        height // 2,
    )
    return _svg(width, height, title, body)


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    unit: str = "",
    width: int = 640,
    height: int = 180,
    x_format: Callable[[float], str] = clock,
) -> SafeString:
    """One polyline per series over a shared time axis; a ``None`` value
    breaks the line instead of drawing a fake zero."""
    series = _colored(series)
    frame = _frame(series, width, height)
    if frame is None:
        return _empty(width, height, title)
    parts = [_chrome(frame, title, unit, series, x_format)]
    for s in series:
        runs: list[list[tuple[float, float]]] = [[]]
        for x, y in s.points:
            if y is None:
                runs.append([])
            else:
                runs[-1].append((x, y))
        for run in runs:
            if len(run) == 1:
                x, y = run[0]
                parts.append(
                    format_html(
                        '<circle cx="{}" cy="{}" r="2.5" fill="{}"><title>{} {}: {}{}</title></circle>',
                        f"{frame.x(x):.1f}",
                        f"{frame.y(y):.1f}",
                        s.color,
                        s.label,
                        x_format(x),
                        number(y),
                        unit,
                    )
                )
            elif run:
                coords = " ".join(f"{frame.x(x):.1f},{frame.y(y):.1f}" for x, y in run)
                parts.append(
                    format_html(
                        '<polyline class="chart-line" points="{}" stroke="{}"><title>{}</title></polyline>',
                        coords,
                        s.color,
                        s.label,
                    )
                )
    return _svg(width, height, title, _join(parts))


def bar_chart(
    series: Sequence[Series],
    *,
    title: str,
    unit: str = "",
    width: int = 640,
    height: int = 180,
    step: float = 60.0,
    x_format: Callable[[float], str] = clock,
) -> SafeString:
    """Bars ``step`` x-units wide; later series are drawn over earlier ones
    (jobs, then the failed part of them in red)."""
    series = _colored(series)
    frame = _frame(series, width, height, x_pad=step / 2)
    if frame is None:
        return _empty(width, height, title)
    bar = max(1.0, (frame.x(frame.x_min + step) - frame.x(frame.x_min)) * 0.8)
    parts = [_chrome(frame, title, unit, series, x_format)]
    base = frame.y(0)
    for s in series:
        parts.append(
            format_html_join(
                "",
                '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{} {}: {}{}</title></rect>',
                (
                    (
                        f"{frame.x(x) - bar / 2:.1f}",
                        f"{frame.y(y):.1f}",
                        f"{bar:.1f}",
                        f"{base - frame.y(y):.1f}",
                        s.color,
                        x_format(x),
                        s.label,
                        number(y),
                        unit,
                    )
                    for x, y in s.points
                    if y  # zero bars draw nothing; the tooltip of an empty minute helps nobody
                ),
            )
        )
    return _svg(width, height, title, _join(parts))
