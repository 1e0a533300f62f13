"""The interactive views as plotly figures: plain JSON dicts (plotly.js's schema) built from an
`ExperimentView`, drawn by the dashboard's page and embedded as they are in the HTML report.

They are built here rather than in the browser so the dashboard and the report show the same
thing, and built as dicts rather than with plotly's Python objects, which validate every property
and would cost more than reading the trials.
"""
from __future__ import annotations

import functools
import html
import math
from typing import Any, Callable

from hyperdist.views.data import FAILED, MAX_DRAWN, OK, PRUNED, RUNNING, ExperimentView, short

COLORS = {OK: "#4c78a8", PRUNED: "#f58518", FAILED: "#e45756", RUNNING: "#9d9d9d"}
_FONT = {"family": "system-ui, sans-serif", "size": 12}
IMPORTANCE_NOTE = ("The share of the variation in the loss that each parameter explains on its own (its main "
                   "effect, measured on the loss ranks and adjusted for chance): 0 means the loss does not "
                   "depend on it alone, 1 that it decides the loss by itself. Interactions are not counted.")


def _literal(value: Any, inside: str = "") -> Any:
    """`value` with every string escaped for plotly.js, which reads `<a href>`, `<b>`, `<br>`... in
    the text it draws (titles, tick labels, hover text, parcoords labels) and decodes `&lt;`, `&gt;`
    and `&amp;` back to the characters. Left as they are: hover templates, which are ours and hold
    no stored text, and parcoords' tick labels, which plotly draws as plain text (no markup, no
    entities)."""
    if isinstance(value, str):
        return html.escape(value, quote=False) if "<" in value or ">" in value or "&" in value else value
    if isinstance(value, dict):
        return {k: v if k == "hovertemplate" or (k == "ticktext" and inside == "dimensions") else _literal(v, k)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_literal(v, inside) for v in value]
    return value


def _drawn(build: Callable[..., dict]) -> Callable[..., dict]:
    """A figure builder whose figure shows the database's strings (labels, options, errors, worker
    names) as literal text: the one place they are escaped, for the dashboard and the report alike."""
    @functools.wraps(build)
    def wrapper(*args: Any, **kwargs: Any) -> dict:
        return _literal(build(*args, **kwargs))
    return wrapper


def _layout(title: str, **extra: Any) -> dict:
    layout = {"title": {"text": title, "x": 0.01, "font": {"size": 14}}, "font": _FONT, "margin":
              {"l": 60, "r": 20, "t": 40, "b": 100}, "hovermode": "closest", "plot_bgcolor": "#fafafa",
              "legend": {"orientation": "h", "y": -0.3, "yanchor": "top"}}
    layout.update(extra)
    return layout


def _empty(title: str, why: str) -> dict:
    return {"data": [], "layout": _layout(title, xaxis={"visible": False}, yaxis={"visible": False}, annotations=[
        {"text": why, "showarrow": False, "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5,
         "font": {"size": 14, "color": "#777"}}])}


def _log_axis(values: list) -> dict:
    """A log axis labelled in plain numbers: on decades over wide ranges, on 1-2-5 steps or finer
    over short ones (plotly's own labels mix bare "2" and "5" digits with the decades there)."""
    positive = [v for v in values if v is not None and v > 0]
    if len(positive) < 2:
        return {"type": "log"}
    span = math.log10(max(positive) / min(positive))
    lo, hi = math.floor(math.log10(min(positive))), math.ceil(math.log10(max(positive)))
    steps = (1,) if span >= 2.5 else (1, 2, 5) if span >= 0.8 else (1, 1.5, 2, 3, 4, 5, 6, 8)
    ticks = [m * 10.0 ** k for k in range(lo, hi + 1) for m in steps]
    return {"type": "log", "tickmode": "array", "tickvals": ticks, "ticktext": [f"{v:g}" for v in ticks]}


def _value_axis(log: bool, values: list) -> dict:
    return _log_axis(values) if log else {"type": "linear"}


@_drawn
def history(view: ExperimentView) -> dict:
    """Every trial's loss and the best so far; pruned and failed trials marked; a log/linear switch."""
    h, log = view.history(), view.log_loss()
    if not h["tid"] and not h["failed_tid"] and not h["pruned_tid"]:
        return _empty("Optimisation history", "no finished trials yet")
    data = [
        {"type": "scatter", "mode": "markers", "name": "trial loss", "x": h["tid"], "y": h["loss"],
         "marker": {"color": COLORS[OK], "size": 6, "opacity": 0.7}, "hovertemplate": "trial %{x}<br>loss %{y:.4g}"},
        {"type": "scatter", "mode": "lines", "name": "best so far", "x": h["tid"], "y": h["best"],
         "line": {"color": "#d62728", "shape": "hv", "width": 2}, "hoverinfo": "skip"},
        {"type": "scatter", "mode": "markers", "name": "pruned (last reported value)", "x": h["pruned_tid"],
         "y": h["pruned_loss"], "marker": {"color": COLORS[PRUNED], "symbol": "triangle-down", "size": 7},
         "hovertemplate": "trial %{x} pruned<br>last value %{y:.4g}"},
        {"type": "scatter", "mode": "markers", "name": "failed", "x": h["failed_tid"],
         "y": [1.0] * len(h["failed_tid"]), "yaxis": "y2", "text": h["failed_why"],
         "marker": {"color": COLORS[FAILED], "symbol": "x", "size": 8},
         "hovertemplate": "trial %{x} failed<br>%{text}<extra></extra>"},
    ]
    logs = _log_axis(h["loss"] + h["pruned_loss"])
    axes = {"linear": {"yaxis.type": "linear", "yaxis.tickmode": "auto"},
            "log": {f"yaxis.{k}": v for k, v in logs.items()}}
    buttons = [{"label": label, "method": "relayout", "args": [axes[label]]} for label in ("linear", "log")]
    return {"data": data, "layout": _layout(
        "Optimisation history", height=470, xaxis={"title": {"text": "trial id"}},
        yaxis=dict(_value_axis(log, h["loss"] + h["pruned_loss"]), title={"text": "loss"}),
        yaxis2={"overlaying": "y", "range": [0, 1.05], "visible": False, "fixedrange": True},
        # the switch sits in the legend's row: at the top it lay under plotly's toolbar on hover
        updatemenus=[{"type": "buttons", "direction": "right", "x": 1, "xanchor": "right", "y": -0.3, "yanchor": "top",
                      "showactive": True, "active": int(log), "buttons": buttons, "font": {"size": 11}}])}


@_drawn
def importance(view: ExperimentView) -> dict:
    imp = view.importance()
    if not imp:
        return _empty("Parameter importance", f"needs 8 trials finished ok ({int(view.ok.sum())} so far)")
    labels = list(imp)[:MAX_DRAWN][::-1]
    return {"data": [{"type": "bar", "orientation": "h", "y": [short(k) for k in labels], "x": [imp[k] for k in labels],
                      "marker": {"color": COLORS[OK]}, "hovertemplate": "%{y}: %{x:.3f}<extra></extra>"}],
            "layout": _layout("Parameter importance (main effect on the loss)" + view.drawn_note(),
                              xaxis={"title": {"text": "share of the loss variation"},
                                     "range": [0, max(0.05, *imp.values()) * 1.1]},
                              yaxis={"automargin": True}, height=max(400, 60 + 24 * len(labels)))}


@_drawn
def slices(view: ExperimentView) -> dict:
    """One panel per parameter: value against loss, log axis for log families, options by value."""
    panels = view.slices()
    if not view.ok.any():
        return _empty("Slice plots", "no trial finished ok yet")
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    data, layout = [], _layout("Each parameter against the loss, over the trials where it was active (darker: later)"
                               + view.drawn_note(),
                               grid={"rows": rows, "columns": cols, "pattern": "independent", "ygap": 0.45},
                               height=260 * rows + 60, showlegend=False)
    for i, p in enumerate(panels, start=1):
        suffix = "" if i == 1 else str(i)
        data.append({"type": "scatter", "mode": "markers", "x": p["x"], "y": p["loss"], "customdata": p["tid"],
                     "xaxis": f"x{suffix}", "yaxis": f"y{suffix}", "name": short(p["label"]),
                     "marker": {"color": p["tid"], "colorscale": "Blues", "size": 6, "opacity": 0.8},
                     "hovertemplate": "%{fullData.name}=%{x}<br>loss %{y:.4g}<br>trial %{customdata}<extra></extra>"})
        title = short(p["label"]) + (f"  ({p['inactive']} of {p['active'] + p['inactive']} inactive)" if p["inactive"] else "")
        xaxis: dict = {"title": {"text": title, "font": {"size": 12}}}
        if p["categorical"]:
            xaxis.update(type="category", categoryorder="array", categoryarray=p["categories"])
        else:
            xaxis.update(_value_axis(p["log"], p["x"]))
        layout[f"xaxis{suffix}"] = xaxis
        layout[f"yaxis{suffix}"] = dict(_value_axis(view.log_loss(), p["loss"]),
                                        title={"text": "loss" if i % cols == 1 or cols == 1 else ""})
    return {"data": data, "layout": layout}


@_drawn
def parallel(view: ExperimentView) -> dict:
    """Parallel coordinates of the ok trials: an "inactive" level on conditional axes, loss as colour."""
    p = view.parallel()
    if p["n"] < 2:
        return _empty("Parallel coordinates", "needs two trials finished ok")
    dims = [{"label": short(d["label"]), "values": d["values"], "range": d["range"], "tickvals": d["tickvals"],
             "ticktext": d["ticktext"]} for d in p["dims"]]
    loss = p["loss"]
    dims.append({k: loss[k] for k in ("label", "values", "range", "tickvals", "ticktext")})
    line = {"color": p["color"], "colorscale": "Viridis", "reversescale": True, "showscale": True,
            "colorbar": {"title": {"text": "loss"}, "thickness": 14, "tickvals": loss["tickvals"],
                         "ticktext": loss["ticktext"]}}
    return {"data": [{"type": "parcoords", "dimensions": dims, "line": line, "labelangle": 0,
                      "labelfont": {"size": 11}, "tickfont": {"size": 10}}],
            "layout": _layout(f"Parallel coordinates of {p['n']} trials (yellow: lower loss){view.drawn_note()}",
                              margin={"l": 60, "r": 40, "t": 100, "b": 30}, height=450)}


@_drawn
def contour(view: ExperimentView, a: str, b: str) -> dict:
    """The loss over a pair of parameters, smoothed between trials, with the trials on top."""
    c = view.contour(a, b)
    title = f"Loss over {a} and {b}"
    if c["n"] < 3:
        return _empty(title, f"needs three ok trials where both are active ({c['n']} so far)")
    axes = {}
    for name, ax in (("xaxis", c["x"]), ("yaxis", c["y"])):
        axes[name] = {"title": {"text": short(ax["label"])}, "tickvals": ax["tickvals"], "ticktext": ax["ticktext"],
                      "range": _pad(ax["range"])}
    smooth = not (c["x"]["categorical"] or c["y"]["categorical"])  # options are cells, not a surface
    surface = {"type": "contour", "connectgaps": False, "contours": {"coloring": "heatmap"}} if smooth else \
        {"type": "heatmap", "xgap": 2 if c["x"]["categorical"] else 0, "ygap": 2 if c["y"]["categorical"] else 0}
    # the colour scale spans the surface drawn, and its ticks stay inside it (a tick below the
    # surface's lowest value left a blank band at the bottom of the colour bar)
    zs = [v for row in c["z"] for v in row if v is not None and math.isfinite(v)]
    scale: dict[str, Any] = {}
    ticks = c["ticks"]
    if zs:
        lo, hi = min(zs), max(zs)
        scale = {"zmin": lo, "zmax": hi} if hi > lo else {}
        kept = [(v, t) for v, t in zip(ticks["tickvals"], ticks["ticktext"]) if lo <= v <= hi]
        ticks = {"tickvals": [v for v, _ in kept], "ticktext": [t for _, t in kept]} if kept else ticks
    data = [dict(surface, x=c["x"]["grid"], y=c["y"]["grid"], z=c["z"], colorscale="Viridis", reversescale=True,
                 colorbar=dict(ticks, title={"text": "loss"}, thickness=14), hoverinfo="skip", **scale),
            {"type": "scatter", "mode": "markers", "x": c["x"]["values"], "y": c["y"]["values"], "customdata":
             list(zip(c["tid"], c["loss"])), "showlegend": False,
             "marker": {"color": "white", "size": 6, "line": {"color": "black", "width": 1}},
             "hovertemplate": "trial %{customdata[0]}<br>loss %{customdata[1]:.4g}<extra></extra>"}]
    return {"data": data, "layout": _layout(title, **axes)}


def default_pair(view: ExperimentView) -> tuple[str, str] | None:
    """The pair the contour shows first: the most important parameters that were active together."""
    ranked = view.pairs()
    return (ranked[0][0], ranked[0][1]) if ranked else None


@_drawn
def edf(view: ExperimentView) -> dict:
    e = view.edf()
    if not e["loss"]:
        return _empty("Empirical distribution of the loss", "no trial finished ok yet")
    return {"data": [{"type": "scatter", "mode": "lines", "x": e["loss"], "y": e["share"], "name": "trials",
                      "line": {"shape": "hv", "color": COLORS[OK], "width": 2},
                      "hovertemplate": "%{y:.0%} of trials at or below %{x:.4g}<extra></extra>"}],
            "layout": _layout("Empirical distribution of the loss", xaxis=dict(_value_axis(e["log"], e["loss"]),
                              title={"text": "loss"}), yaxis={"title": {"text": "share of trials"},
                              "tickformat": ".0%", "range": [0, 1.02]})}


@_drawn
def curves(view: ExperimentView) -> dict:
    """Intermediate values per step, one line per trial; pruned trials in orange."""
    series = view.curves()
    if not series:
        return _empty("Intermediate values", "no trial reported intermediate values (ctx.report)")
    data = []
    for kind, name in ((OK, "completed"), (PRUNED, "pruned"), (RUNNING, "running"), (FAILED, "failed")):
        xs: list = []
        ys: list = []
        ids: list = []
        for s in series:
            if s["kind"] == kind:
                xs += s["step"] + [None]
                ys += s["value"] + [None]
                ids += [s["tid"]] * len(s["step"]) + [None]
        if xs:
            data.append({"type": "scatter", "mode": "lines+markers", "name": name, "x": xs, "y": ys,
                         "customdata": ids, "connectgaps": False, "marker": {"size": 3},
                         "line": {"color": COLORS[kind], "width": 1}, "opacity": 0.75,
                         "hovertemplate": "trial %{customdata}<br>step %{x}: %{y:.4g}<extra></extra>"})
    return {"data": data, "layout": _layout("Intermediate values (pruning curves)",
                                            xaxis={"title": {"text": "step"}},
                                            yaxis={"title": {"text": "reported value"}})}


@_drawn
def timeline(view: ExperimentView) -> dict:
    """One row per worker, one bar per trial from claim to finish (a running one up to now)."""
    spans = view.timeline()
    if not spans:
        return _empty("Worker timeline", "no trial claimed yet")
    owners = sorted({s["owner"] for s in spans})
    data = []
    for kind, name in ((OK, "ok"), (PRUNED, "pruned"), (FAILED, "failed"), (RUNNING, "running")):
        mine = [s for s in spans if s["kind"] == kind]
        if mine:
            data.append({"type": "bar", "orientation": "h", "name": name, "y": [s["owner"] for s in mine],
                         "base": [_plotly_time(s["start"]) for s in mine],
                         "x": [max(1.0, (s["end"] - s["start"]).total_seconds() * 1000) for s in mine],
                         "customdata": [s["tid"] for s in mine], "marker": {"color": COLORS[kind]},
                         "hovertemplate": "trial %{customdata}<br>%{base|%H:%M:%S} + %{x:,.0f} ms<extra></extra>"})
    return {"data": data, "layout": _layout("Worker timeline (times in UTC)", barmode="overlay", xaxis={"type": "date"},
                                            yaxis={"automargin": True, "categoryorder": "array",
                                                   "categoryarray": owners},
                                            height=max(240, 120 + 28 * len(owners)))}


def _plotly_time(t: Any) -> str:
    """plotly.js reads dates without a zone offset; times are UTC and the axis says so."""
    return t.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _pad(span: list[float]) -> list[float]:
    pad = 0.04 * ((span[1] - span[0]) or 1.0)
    return [span[0] - pad, span[1] + pad]


VIEWS = {"history": history, "importance": importance, "slices": slices, "parallel": parallel, "edf": edf,
         "curves": curves, "timeline": timeline}


def all_figures(view: ExperimentView) -> dict[str, dict]:
    return {name: build(view) for name, build in VIEWS.items()}
