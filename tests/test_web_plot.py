"""The forest plot and the lineage chart as pure functions: orientation, reference lines, escaping."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from model_eval_gate.web import plot

SVG = "{http://www.w3.org/2000/svg}"


def table():
    return [
        {"metric": "auroc", "role": "primary", "higher_is_better": True, "delta": 0.02, "ci_low": 0.01, "ci_high": 0.03},
        {"metric": "log_loss", "role": "guardrail", "higher_is_better": False, "delta": 0.05, "ci_low": 0.01,
         "ci_high": 0.09},
        {"metric": "accuracy", "role": "secondary", "higher_is_better": True, "delta": None, "ci_low": None,
         "ci_high": None},
    ]


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # well-formed XML, or this raises


def test_lower_is_better_metrics_are_negated_so_that_right_is_better():
    rows = plot.forest_rows(table(), {"non_inferiority_margin": 0.01, "guardrails": {"log_loss": 0.02}})
    by = {r.metric: r for r in rows}
    assert (by["auroc"].delta, by["auroc"].ci_low, by["auroc"].ci_high) == (0.02, 0.01, 0.03)
    # log_loss went up (worse): oriented, the delta is negative and the interval flipped.
    assert (by["log_loss"].delta, by["log_loss"].ci_low, by["log_loss"].ci_high) == (-0.05, -0.09, -0.01)
    assert by["auroc"].reference == -0.01 and by["log_loss"].reference == -0.02
    assert not by["accuracy"].drawable and by["accuracy"].reference is None


def test_the_plot_draws_one_interval_per_defined_metric_and_says_which_are_undefined():
    svg = parse(plot.forest_plot_svg(plot.forest_rows(table(), {"non_inferiority_margin": 0.01,
                                                               "guardrails": {"log_loss": 0.02}})))
    intervals = [g for g in svg.iter(f"{SVG}g") if g.get("class") == "interval"]
    assert [g.get("data-metric") for g in intervals] == ["auroc", "log_loss"]
    assert [t.get("data-metric") for t in svg.iter(f"{SVG}text") if t.get("class") == "undefined"] == ["accuracy"]
    low, high = float(svg.get("data-axis-low")), float(svg.get("data-axis-high"))
    assert low < -0.09 and high > 0.03  # every interval fits
    # The worsened guardrail beyond its tolerance is drawn red, the improved primary green.
    colours = {g.get("data-metric"): g.find(f"{SVG}circle").get("fill") for g in intervals}
    assert colours == {"auroc": plot.BETTER_COLOUR, "log_loss": plot.WORSE_COLOUR}


def test_a_far_reference_line_is_drawn_at_the_edge_marked_off_scale():
    rows = plot.forest_rows(table()[:1], {"non_inferiority_margin": 5.0})
    svg = parse(plot.forest_plot_svg(rows))
    line = next(l for l in svg.iter(f"{SVG}line") if l.get("class") == "reference-line")
    assert line.get("data-off-scale") == "true" and float(line.get("data-reference")) == -5.0
    assert float(svg.get("data-axis-low")) > -1  # the interval keeps its width
    assert any("off scale" in (t.text or "") for t in svg.iter(f"{SVG}text"))


def test_identical_predictions_give_a_readable_axis_and_labels_are_escaped():
    rows = [plot.ForestRow(label="<b>x</b>&", role="primary", delta=0.0, ci_low=0.0, ci_high=0.0,
                           higher_is_better=True, metric="<b>x</b>&")]
    text = plot.forest_plot_svg(rows)
    assert "<b>" not in text and "&lt;b&gt;x&lt;/b&gt;&amp;" in text
    svg = parse(text)
    assert float(svg.get("data-axis-low")) < 0 < float(svg.get("data-axis-high"))


def test_the_biocreep_anchor_is_a_row_of_its_own_unless_it_is_the_parent():
    anchor = {"version_id": "v1", "is_parent": False, "metric": "auroc", "higher_is_better": True, "delta": -0.004,
              "ci_low": -0.008, "ci_high": 0.0, "margin": 0.01}
    rows = plot.forest_rows(table()[:1], {"non_inferiority_margin": 0.01}, anchor)
    assert [(r.kind, r.reference) for r in rows] == [("metric", -0.01), ("anchor", -0.01)]
    assert len(plot.forest_rows(table()[:1], {}, {**anchor, "is_parent": True})) == 1


def test_the_lineage_chart_has_one_point_per_promotion():
    points = [{"label": "a", "short": "v1", "value": 0.8, "when": "t1"},
              {"label": "b", "short": "v2", "value": 0.82, "when": "t2", "forced": True},
              {"label": "c", "short": "v3", "value": None, "when": "t3"}]
    svg = parse(plot.timeline_svg(points, metric="auroc", higher_is_better=True))
    drawn = [g for g in svg.iter(f"{SVG}g") if g.get("class") == "timeline-point"]
    assert [(g.get("data-version"), float(g.get("data-value"))) for g in drawn] == [("a", 0.8), ("b", 0.82)]
    assert drawn[1].find(f"{SVG}circle").get("fill") == plot.MARGIN_COLOUR
    assert plot.timeline_svg([], metric="auroc", higher_is_better=True) == ""
