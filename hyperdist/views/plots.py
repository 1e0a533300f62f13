"""The views as matplotlib figures, drawn headless: for `hyperdist plot` (PNG and SVG files) and for
notebooks (each function returns a Figure; build the view with `ExperimentView.from_trials(trials,
space)` or `ExperimentView.from_store(store, key)`).

They draw the same series as the dashboard (data.py): choices by their options, a log loss axis when
the losses span more than two decades, an "inactive" level for conditional parameters.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from hyperdist.errors import HyperdistError
from hyperdist.views.data import FAILED, LABEL_CHARS, MAX_DRAWN, OK, PRUNED, RUNNING, ExperimentView, short
from hyperdist.views.figures import COLORS, IMPORTANCE_NOTE, default_pair


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise HyperdistError("plots need matplotlib: pip install 'hyperdist[plot]'") from None
    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def literal(text: Any, limit: int = LABEL_CHARS) -> str:
    """Data (a label, an option, a worker) as matplotlib text: cut by `short`, and with "$" escaped,
    so that mathtext never parses it ("cost $x^" is drawn as written, not a ParseException)."""
    return short(text, limit).replace("$", r"\$")


def readable_log(ax: Any, which: str) -> None:
    """Put the `which` ("x" or "y") axis on a log scale whose labels do not collide: plain numbers
    on decades, and on a range shorter than two decades a few round values instead of
    matplotlib's crowded minor labels."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter

    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    lo, hi = sorted(ax.get_xlim() if which == "x" else ax.get_ylim())
    axis = ax.xaxis if which == "x" else ax.yaxis
    if lo > 0 and hi / lo < 100:
        values = np.unique([float(f"{v:.2g}") for v in np.geomspace(lo, hi, 5)])
        axis.set_major_locator(FixedLocator(values.tolist()))
    else:
        axis.set_major_locator(LogLocator(base=10, numticks=8))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
    axis.set_minor_formatter(NullFormatter())


def _note(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#777")


def plot_history(view: ExperimentView) -> Any:
    """Loss of every trial by id with the best so far; pruned (last value) and failed marked."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    h = view.history()
    ax.scatter(h["tid"], h["loss"], s=14, alpha=0.7, color=COLORS[OK], label="trial loss")
    ax.step(h["tid"], h["best"], where="post", color="#d62728", label="best so far")
    if h["pruned_tid"]:
        ax.scatter(h["pruned_tid"], h["pruned_loss"], marker="v", s=18, color=COLORS[PRUNED],
                   label="pruned (last reported value)")
    if h["failed_tid"]:
        ax.scatter(h["failed_tid"], np.full(len(h["failed_tid"]), 0.97), marker="x", color=COLORS[FAILED],
                   transform=ax.get_xaxis_transform(), label="failed", clip_on=False)
    if not (h["tid"] or h["pruned_tid"] or h["failed_tid"]):
        _note(ax, "no finished trials yet")
    elif view.log_loss():
        readable_log(ax, "y")
    ax.set(xlabel="trial id", ylabel="loss" + (" (log scale)" if view.log_loss() else ""), title="optimisation history")
    if h["tid"] or h["pruned_tid"] or h["failed_tid"]:
        ax.legend(loc="upper right", fontsize=8)
    return fig


def plot_slices(view: ExperimentView) -> Any:
    """Each parameter against the loss over the trials where it was active (choices by option)."""
    plt = _pyplot()
    panels = view.slices()
    cols = min(3, max(1, len(panels)))
    rows = max(1, math.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    rng = np.random.default_rng(0)
    for ax, p in zip(axes.flat, panels):
        counted = f" ({p['inactive']} of {p['active'] + p['inactive']} inactive)" if p["inactive"] else ""
        ax.set_title(literal(p["label"]) + counted, fontsize=10)
        ax.set_ylabel("loss")
        if not p["x"]:
            _note(ax, "no ok trial with it active")
            continue
        if p["categorical"]:
            codes = np.array([p["categories"].index(v) for v in p["x"]])
            ax.scatter(codes + rng.uniform(-0.15, 0.15, len(codes)), p["loss"], s=10, alpha=0.6, color=COLORS[OK])
            ax.set_xticks(range(len(p["categories"])))
            ax.set_xticklabels([literal(c, 14) for c in p["categories"]], rotation=20 if len(p["categories"]) > 3 else 0)
        else:
            ax.scatter(p["x"], p["loss"], s=10, alpha=0.6, color=COLORS[OK])
            if p["log"]:
                readable_log(ax, "x")
        if view.log_loss():
            readable_log(ax, "y")
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    fig.suptitle("each parameter against the loss" + view.drawn_note())
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))  # room for the title above the panels
    return fig


def plot_parallel(view: ExperimentView) -> Any:
    """Parallel coordinates of the ok trials, every axis labelled, conditional parameters with an
    "inactive" level, the loss as the last axis and as the colour."""
    plt = _pyplot()
    p = view.parallel()
    dims = p["dims"] + [p["loss"]]
    fig, ax = plt.subplots(figsize=(max(7, 1.3 * len(dims)), 5))
    if p["n"] < 2:
        _note(ax, "needs two trials finished ok")
        return fig
    scaled = []
    for d in dims:
        lo, hi = d["range"]
        scaled.append((np.array(d["values"]) - lo) / ((hi - lo) or 1.0))
    Y = np.array(scaled).T
    color = np.array(p["color"])
    norm = plt.Normalize(color.min(), color.max())
    order = np.argsort(-color)  # best drawn last, on top
    for i in order:
        ax.plot(range(len(dims)), Y[i], color=plt.cm.viridis_r(norm(color[i])), alpha=0.6, linewidth=1)
    for k, d in enumerate(dims):
        ax.axvline(k, color="#444", linewidth=0.8)
        lo, hi = d["range"]
        for v, text in zip(d["tickvals"], d["ticktext"]):
            y = (v - lo) / ((hi - lo) or 1.0)
            ax.text(k + 0.04, y, literal(text, 12), fontsize=7, va="center",
                    color=COLORS[FAILED] if text == "inactive" else "#333")
    ax.set_xticks(range(len(dims)))
    ax.set_xticklabels([literal(d["label"]) for d in dims], rotation=30, ha="right")
    ax.set_yticks([])
    ax.set_xlim(-0.2, len(dims) - 0.6)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    bar = fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap="viridis_r"), ax=ax, pad=0.02)
    bar.set_ticks(p["loss"]["tickvals"], labels=p["loss"]["ticktext"])
    bar.set_label("loss")
    ax.set_title(f"parallel coordinates of {p['n']} trials (yellow: lower loss){view.drawn_note()}")
    return fig


def plot_importance(view: ExperimentView) -> Any:
    plt = _pyplot()
    imp = dict(list(view.importance().items())[:MAX_DRAWN])
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.4 * len(imp) + 1.2)))
    if not imp:
        _note(ax, f"needs 8 trials finished ok ({int(view.ok.sum())} so far)")
        return fig
    labels = list(imp)[::-1]
    ax.barh([literal(k) for k in labels], [imp[k] for k in labels], color=COLORS[OK])
    ax.set_xlim(0, max(0.05, *imp.values()) * 1.1)
    ax.set_xlabel("share of the loss variation explained alone (adjusted main effect)")
    ax.set_title("parameter importance" + view.drawn_note())
    fig.text(0.01, -0.02, "\n".join(_wrap(IMPORTANCE_NOTE, 110)), fontsize=7, va="top", color="#555")
    return fig


def plot_contour(view: ExperimentView, a: str | None = None, b: str | None = None) -> Any:
    """The loss over two parameters (default: the two most important), smoothed between trials."""
    plt = _pyplot()
    pair = (a, b) if a and b else default_pair(view)
    fig, ax = plt.subplots(figsize=(6.5, 5))
    if pair is None:
        _note(ax, "needs two parameters")
        return fig
    c = view.contour(*pair)
    if c["n"] < 3:
        _note(ax, f"needs three ok trials with {literal(pair[0])} and {literal(pair[1])} active")
        return fig
    z = np.ma.masked_invalid(np.array(c["z"], dtype=float))
    if c["x"]["categorical"] or c["y"]["categorical"]:  # options are cells, not a surface
        filled = ax.pcolormesh(c["x"]["grid"], c["y"]["grid"], z, shading="nearest", cmap="viridis_r")
    else:
        filled = ax.contourf(c["x"]["grid"], c["y"]["grid"], z, levels=14, cmap="viridis_r")
    bar = fig.colorbar(filled, ax=ax)
    bar.set_ticks(c["ticks"]["tickvals"], labels=c["ticks"]["ticktext"])
    bar.set_label("loss")
    ax.scatter(c["x"]["values"], c["y"]["values"], s=14, color="white", edgecolor="black", linewidth=0.6)
    for name, axis, setter, limits in (("x", ax.xaxis, ax.set_xlabel, ax.set_xlim),
                                       ("y", ax.yaxis, ax.set_ylabel, ax.set_ylim)):
        spec = c[name]
        axis.set_ticks(spec["tickvals"])
        axis.set_ticklabels([literal(t, 12) for t in spec["ticktext"]])
        setter(literal(spec["label"]))
        limits(*_padded(spec["range"]))  # trials on the edge stay whole
    ax.set_title(f"loss over {literal(pair[0])} and {literal(pair[1])} ({c['n']} trials)")
    return fig


def plot_edf(view: ExperimentView) -> Any:
    plt = _pyplot()
    e = view.edf()
    fig, ax = plt.subplots(figsize=(7, 4))
    if not e["loss"]:
        _note(ax, "no trial finished ok yet")
        return fig
    ax.step(e["loss"], e["share"], where="post", color=COLORS[OK])
    if e["log"]:
        readable_log(ax, "x")
    ax.set(xlabel="loss", ylabel="share of trials at or below", ylim=(0, 1.02),
           title="empirical distribution of the loss")
    return fig


def plot_timeline(view: ExperimentView) -> Any:
    """One row per worker: a bar per trial from claim to finish, coloured by how it ended."""
    plt = _pyplot()
    spans = view.timeline()
    owners = sorted({s["owner"] for s in spans})
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(owners) + 1.6))
    if not spans:
        _note(ax, "no trial claimed yet")
        return fig
    start = min(s["start"] for s in spans)
    for s in spans:
        ax.barh(owners.index(s["owner"]), max((s["end"] - s["start"]).total_seconds(), 1e-3),
                left=(s["start"] - start).total_seconds(), color=COLORS[s["kind"]], edgecolor="white")
    ax.set_yticks(range(len(owners)))
    ax.set_yticklabels([literal(o) for o in owners])
    ax.set_xlabel("seconds since the first claim")
    ax.set_title("trials per worker (blue ok, orange pruned, red failed, grey running)")
    return fig


def plot_curves(view: ExperimentView) -> Any:
    """Intermediate values per step, one line per trial; pruned trials in orange."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    series = view.curves()
    for s in series:
        ax.plot(s["step"], s["value"], color=COLORS.get(s["kind"], COLORS[RUNNING]), linewidth=1,
                alpha=0.5 if s["kind"] == PRUNED else 0.8)
    if not series:
        _note(ax, "no trial reported intermediate values")
    ax.set(xlabel="step", ylabel="reported value", title="intermediate values (orange: pruned)")
    return fig


PLOTS = {"history": plot_history, "slices": plot_slices, "parallel": plot_parallel, "importance": plot_importance,
         "contour": plot_contour, "edf": plot_edf, "timeline": plot_timeline, "curves": plot_curves}


def plot_all(view: ExperimentView, out: Path) -> list[Path]:
    """Every plot as PNG and SVG in `out` (intermediate values only when some trial reported them)."""
    plt = _pyplot()
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for name, draw in PLOTS.items():
        if name == "curves" and not view.curves():
            continue
        fig = draw(view)
        for suffix in ("png", "svg"):
            paths.append(out / f"{name}.{suffix}")
            fig.savefig(paths[-1], dpi=110, bbox_inches="tight")
        plt.close(fig)
    return paths


def _padded(span: list[float]) -> tuple[float, float]:
    pad = 0.04 * ((span[1] - span[0]) or 1.0)
    return span[0] - pad, span[1] + pad


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width)
