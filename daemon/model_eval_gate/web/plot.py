"""Server-drawn SVG: the verdict's forest plot and the lineage's primary metric over time.

Pure functions from plain data to an SVG string: no I/O, no JavaScript, and
every text that came from the database is escaped here (the templates insert
the result as markup).

The forest plot is oriented so that right is better: a lower-is-better
metric's delta and interval are negated (as decision.py orients them), and
the row says so. One horizontal axis, in each metric's own absolute units
(the policy's margins and tolerances are absolute too), spans every interval
and every reference line, so nothing is clipped. Reference lines: zero; the
non-inferiority margin at -margin on the primary metric's row; each
guardrail's tolerance at -tolerance on its row.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import Any, Iterable, Mapping, Sequence

ROW_HEIGHT = 34
LABEL_WIDTH = 230
PLOT_WIDTH = 460
VALUE_WIDTH = 250
TOP = 34
BOTTOM = 44
FONT = "font-family: system-ui, sans-serif; font-size: 12px"

BETTER_COLOUR = "#1a7f37"
WORSE_COLOUR = "#b42318"
NEUTRAL_COLOUR = "#475467"
MARGIN_COLOUR = "#b54708"
# A margin or tolerance further left of the intervals than this many times
# their span is drawn at the axis's edge, marked off scale.
REFERENCE_REACH = 1.5


@dataclass(frozen=True)
class ForestRow:
    """One interval, already oriented (positive is better)."""

    label: str
    role: str  # primary, guardrail, secondary, anchor
    delta: float | None
    ci_low: float | None
    ci_high: float | None
    higher_is_better: bool | None
    reference: float | None = None  # -margin or -tolerance: the line this row must stay right of
    reference_label: str | None = None
    kind: str = "metric"  # "metric" for the metric table's rows, "anchor" for the biocreep comparison
    metric: str = ""

    @property
    def drawable(self) -> bool:
        return all(isinstance(v, (int, float)) and math.isfinite(v) for v in (self.delta, self.ci_low, self.ci_high))


def orient(delta: float | None, ci_low: float | None, ci_high: float | None,
           higher_is_better: bool | None) -> tuple[float | None, float | None, float | None]:
    """(delta, low, high) with positive meaning better, as decision._orient does."""
    if higher_is_better is False:
        def neg(value):
            return None if value is None else -value
        return neg(delta), neg(ci_high), neg(ci_low)
    return delta, ci_low, ci_high


def forest_rows(metric_table: Iterable[Mapping[str, Any]], policy: Mapping[str, Any] | None,
                baseline: Mapping[str, Any] | None = None) -> list[ForestRow]:
    """The plot's rows from a verdict's metric table, its policy and its biocreep comparison."""
    policy = policy or {}
    margin = policy.get("non_inferiority_margin")
    guardrails = policy.get("guardrails") or {}
    rows = []
    for entry in metric_table:
        hib = entry.get("higher_is_better")
        delta, low, high = orient(entry.get("delta"), entry.get("ci_low"), entry.get("ci_high"), hib)
        reference = reference_label = None
        if entry.get("role") == "primary" and isinstance(margin, (int, float)):
            reference, reference_label = -float(margin), f"margin {margin:g}"
        elif entry.get("role") == "guardrail" and isinstance(guardrails.get(entry["metric"]), (int, float)):
            tolerance = guardrails[entry["metric"]]
            reference, reference_label = -float(tolerance), f"tolerance {tolerance:g}"
        rows.append(ForestRow(label=entry["metric"], role=str(entry.get("role") or "secondary"), delta=delta,
                              ci_low=low, ci_high=high, higher_is_better=hib, reference=reference,
                              reference_label=reference_label, metric=entry["metric"]))
    if baseline and not baseline.get("is_parent"):
        hib = baseline.get("higher_is_better")
        delta, low, high = orient(baseline.get("delta"), baseline.get("ci_low"), baseline.get("ci_high"), hib)
        anchor_margin = baseline.get("margin")
        rows.append(ForestRow(
            label=f"{baseline.get('metric')} vs anchor", role="anchor", delta=delta, ci_low=low, ci_high=high,
            higher_is_better=hib, kind="anchor", metric=str(baseline.get("metric")),
            reference=-float(anchor_margin) if isinstance(anchor_margin, (int, float)) else None,
            reference_label=f"margin {anchor_margin:g}" if isinstance(anchor_margin, (int, float)) else None))
    return rows


def _nice_step(span: float) -> float:
    raw = span / 6
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def _axis_extent(rows: Sequence[ForestRow]) -> tuple[float, float]:
    """The axis spans zero and every interval; a reference line too, unless it lies so far out
    that the intervals would shrink to dots (then it is drawn at the edge, marked off scale)."""
    values = [0.0]
    for row in rows:
        if row.drawable:
            values += [row.ci_low, row.ci_high, row.delta]
    span = max(values) - min(values)
    references = [row.reference for row in rows if row.reference is not None]
    for reference in references:
        if span < 1e-12 or min(values) - reference <= REFERENCE_REACH * span:
            values.append(reference)
    low, high = min(values), max(values)
    if high - low < 1e-12:  # identical predictions: every interval is [0, 0]
        low, high = -0.01, 0.01
    pad = (high - low) * 0.08
    return low - pad, high + pad


def _fmt(value: float | None) -> str:
    if value is None or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "undefined"
    return f"{value:+.4f}"


def forest_plot_svg(rows: Sequence[ForestRow], *, title: str = "Metric deltas, candidate minus parent") -> str:
    """The forest plot: one row per metric (and the anchor), its 95% CI as a line, its delta as a dot."""
    if not rows:
        return ""
    low, high = _axis_extent(rows)
    width = LABEL_WIDTH + PLOT_WIDTH + VALUE_WIDTH
    height = TOP + ROW_HEIGHT * len(rows) + BOTTOM

    def x(value: float) -> float:
        return round(LABEL_WIDTH + (value - low) / (high - low) * PLOT_WIDTH, 2)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="forest-plot" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-labelledby="forest-title" data-axis-low="{low:.6g}" '
        f'data-axis-high="{high:.6g}" style="{FONT}">',
        f'<title id="forest-title">{escape(title)}: 95% intervals, oriented so that right is better</title>',
        f'<text x="{LABEL_WIDTH}" y="16" fill="{NEUTRAL_COLOUR}">{escape(title)} (95% CI; right is better)</text>',
    ]
    # Grid and axis.
    step = _nice_step(high - low)
    tick = math.ceil(low / step) * step
    axis_y = TOP + ROW_HEIGHT * len(rows)
    while tick <= high + 1e-12:
        tx = x(tick)
        parts.append(f'<line x1="{tx}" y1="{TOP - 6}" x2="{tx}" y2="{axis_y}" stroke="#eaecf0"/>')
        label = f"{tick:+.3g}" if abs(tick) > step * 1e-6 else "0"
        parts.append(f'<text x="{tx}" y="{axis_y + 16}" text-anchor="middle" fill="{NEUTRAL_COLOUR}">'
                     f'{escape(label)}</text>')
        tick += step
    parts.append(f'<line x1="{LABEL_WIDTH}" y1="{axis_y}" x2="{LABEL_WIDTH + PLOT_WIDTH}" y2="{axis_y}" '
                 f'stroke="{NEUTRAL_COLOUR}"/>')
    parts.append(f'<text x="{LABEL_WIDTH + 4}" y="{axis_y + 34}" fill="{WORSE_COLOUR}">\u2190 candidate worse</text>')
    parts.append(f'<text x="{LABEL_WIDTH + PLOT_WIDTH - 4}" y="{axis_y + 34}" text-anchor="end" '
                 f'fill="{BETTER_COLOUR}">candidate better \u2192</text>')
    zero = x(0.0)
    parts.append(f'<line class="zero-line" x1="{zero}" y1="{TOP - 6}" x2="{zero}" y2="{axis_y}" '
                 f'stroke="{NEUTRAL_COLOUR}" stroke-width="1.5"/>')

    for index, row in enumerate(rows):
        y = TOP + ROW_HEIGHT * index + ROW_HEIGHT / 2
        if index % 2:
            parts.append(f'<rect x="0" y="{y - ROW_HEIGHT / 2}" width="{width}" height="{ROW_HEIGHT}" '
                         'fill="#f9fafb"/>')
        role = "" if row.role == "secondary" else f" ({row.role})"
        flipped = "" if row.higher_is_better is not False else " \u2193"
        weight = ' font-weight="bold"' if row.role == "primary" else ""
        parts.append(f'<text x="8" y="{y + 4}"{weight}>{escape(row.label)}{escape(role)}{flipped}</text>')
        if row.reference is not None:
            off_scale = row.reference < low
            rx = x(max(row.reference, low))
            parts.append(
                f'<line class="reference-line" data-metric="{escape(row.metric)}" data-kind="{escape(row.kind)}" '
                f'data-reference="{row.reference:.6g}" data-off-scale="{str(off_scale).lower()}" x1="{rx}" '
                f'y1="{y - ROW_HEIGHT / 2 + 3}" x2="{rx}" y2="{y + ROW_HEIGHT / 2 - 3}" stroke="{MARGIN_COLOUR}" '
                f'stroke-width="2" stroke-dasharray="4 3">'
                f'<title>{escape(row.reference_label or "")}: must stay right of {row.reference:+.4g}</title></line>')
            if off_scale:
                parts.append(f'<text x="{rx + 4}" y="{y - 6}" fill="{MARGIN_COLOUR}" style="font-size: 10px">'
                             f'\u2190 {row.reference:+.3g} (off scale)</text>')
        if row.drawable:
            if row.ci_low > 0:
                colour = BETTER_COLOUR
            elif row.reference is not None and row.ci_low < row.reference:
                colour = WORSE_COLOUR
            elif row.ci_high < 0:
                colour = WORSE_COLOUR
            else:
                colour = NEUTRAL_COLOUR
            x1, x2, cx = x(row.ci_low), x(row.ci_high), x(row.delta)
            css = "interval" if row.kind == "metric" else "anchor-interval"
            parts.append(
                f'<g class="{css}" data-metric="{escape(row.metric)}" data-role="{escape(row.role)}" '
                f'data-delta="{row.delta:.6g}" data-ci-low="{row.ci_low:.6g}" data-ci-high="{row.ci_high:.6g}">'
                f'<title>{escape(row.label)}: {_fmt(row.delta)} [{_fmt(row.ci_low)}, {_fmt(row.ci_high)}]'
                f'{" (sign flipped: lower is better)" if row.higher_is_better is False else ""}</title>'
                f'<line x1="{x1}" y1="{y}" x2="{x2}" y2="{y}" stroke="{colour}" stroke-width="3"/>'
                f'<line x1="{x1}" y1="{y - 6}" x2="{x1}" y2="{y + 6}" stroke="{colour}" stroke-width="2"/>'
                f'<line x1="{x2}" y1="{y - 6}" x2="{x2}" y2="{y + 6}" stroke="{colour}" stroke-width="2"/>'
                f'<circle cx="{cx}" cy="{y}" r="5" fill="{colour}"/></g>')
            text = f"{_fmt(row.delta)} [{_fmt(row.ci_low)}, {_fmt(row.ci_high)}]"
        else:
            parts.append(f'<text class="undefined" data-metric="{escape(row.metric)}" x="{zero + 6}" y="{y + 4}" '
                         f'fill="{NEUTRAL_COLOUR}">no interval</text>')
            text = "undefined"
        parts.append(f'<text x="{LABEL_WIDTH + PLOT_WIDTH + 10}" y="{y + 4}" '
                     f'style="font-variant-numeric: tabular-nums">{escape(text)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def timeline_svg(points: Sequence[Mapping[str, Any]], *, metric: str, higher_is_better: bool | None) -> str:
    """The primary metric of each promoted version, in promotion order: a step line and labelled dots.

    points: [{"label": version, "value": float, "when": str, "forced": bool}], oldest first.
    """
    drawable = [p for p in points if isinstance(p.get("value"), (int, float)) and math.isfinite(p["value"])]
    if not drawable:
        return ""
    width, height, left, right, top, bottom = 760, 240, 90, 60, 30, 56
    values = [p["value"] for p in drawable]
    low, high = min(values), max(values)
    if high - low < 1e-12:
        low, high = low - 0.01, high + 0.01
    pad = (high - low) * 0.15
    low, high = low - pad, high + pad
    span_x = max(1, len(drawable) - 1)

    def x(index: int) -> float:
        return round(left + (width - left - right) * (index / span_x if len(drawable) > 1 else 0.5), 2)

    def y(value: float) -> float:
        return round(top + (height - top - bottom) * (1 - (value - low) / (high - low)), 2)

    direction = "higher is better" if higher_is_better is not False else "lower is better"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="metric-timeline" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" style="{FONT}">',
        f'<title>{escape(metric)} of each promoted version, in promotion order ({direction})</title>',
        f'<text x="{left}" y="16" fill="{NEUTRAL_COLOUR}">{escape(metric)} of each promoted version '
        f'({escape(direction)})</text>',
    ]
    step = _nice_step(high - low)
    tick = math.ceil(low / step) * step
    while tick <= high + 1e-12:
        ty = y(tick)
        parts.append(f'<line x1="{left}" y1="{ty}" x2="{width - right}" y2="{ty}" stroke="#eaecf0"/>')
        parts.append(f'<text x="{left - 6}" y="{ty + 4}" text-anchor="end" fill="{NEUTRAL_COLOUR}">{tick:.4g}</text>')
        tick += step
    # A step line: the head's value holds until the next promotion.
    d = f"M{x(0)} {y(drawable[0]['value'])}"
    for index in range(1, len(drawable)):
        d += f" H{x(index)} V{y(drawable[index]['value'])}"
    parts.append(f'<path d="{d}" fill="none" stroke="{NEUTRAL_COLOUR}" stroke-width="1.5"/>')
    for index, point in enumerate(drawable):
        px, py = x(index), y(point["value"])
        colour = MARGIN_COLOUR if point.get("forced") else BETTER_COLOUR
        parts.append(f'<g class="timeline-point" data-version="{escape(str(point["label"]))}" '
                     f'data-value="{point["value"]:.6g}"><title>{escape(str(point["label"]))}: {point["value"]:.4f} '
                     f'({escape(str(point.get("when", "")))}){" forced" if point.get("forced") else ""}</title>'
                     f'<circle cx="{px}" cy="{py}" r="5" fill="{colour}"/></g>')
        parts.append(f'<text x="{px}" y="{height - bottom + 18}" text-anchor="middle">'
                     f'{escape(str(point.get("short", point["label"])))}</text>')
        parts.append(f'<text x="{px + 8}" y="{py - 8}" fill="{NEUTRAL_COLOUR}">'
                     f'{point["value"]:.4f}{" (forced)" if point.get("forced") else ""}</text>')
    parts.append("</svg>")
    return "".join(parts)
