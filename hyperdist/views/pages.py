"""The pages the dashboard serves and the report embeds: one HTML skeleton, one script (static/app.js)
and the JSON it draws from. The dashboard's script fetches that JSON from its API and polls it; the
report carries the same JSON inline, so both show the same views.
"""
from __future__ import annotations

import html
import json
from importlib import resources
from pathlib import Path
from typing import Any

from hyperdist.errors import HyperdistError
from hyperdist.views import figures
from hyperdist.views.data import ExperimentView, fingerprint, jsonable
from hyperdist.views.summary import setup, summarize

STATIC = resources.files("hyperdist.views") / "static"


def plotly_js() -> Path:
    """plotly.js as the plotly wheel ships it: served and embedded from here, never fetched."""
    try:
        import plotly
    except ImportError:
        raise HyperdistError("the dashboard and the report need plotly: pip install 'hyperdist[dashboard]'") from None
    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise HyperdistError(f"plotly {plotly.__version__} has no bundled plotly.min.js at {path}; "
                             "reinstall it: pip install --force-reinstall plotly")
    return path


def experiment_payload(view: ExperimentView, since: str | None = None) -> dict:
    """What the experiment page draws. Figures and rows only when the trials changed since
    `since` (the version the page holds); summary, setup and heartbeats every time."""
    version = fingerprint(view)
    out: dict[str, Any] = {"key": view.key, "version": version, "summary": summarize(view.exp, view.trials, view.now),
                           "setup": setup(view), "now": view.now}
    if since != version:
        numeric = [s.label for s in view.space.params if not s.dist.categorical]
        out.update(figures=figures.all_figures(view), rows=view.rows(), labels=list(view.space.labels),
                   numeric=numeric, pairs=view.pairs(), importance_note=figures.IMPORTANCE_NOTE)
    return jsonable(out)


def contour_payload(view: ExperimentView, a: str, b: str) -> dict:
    for label in (a, b):
        if label not in view.space.index:
            raise HyperdistError(f"no parameter {label!r} in experiment {view.key!r} "
                                 f"(parameters: {', '.join(view.space.labels)})")
    if a == b:
        raise HyperdistError(f"a contour needs two different parameters, got {a!r} twice")
    return jsonable(figures.contour(view, a, b))


def page(kind: str, title: str, config: dict, scripts: str, style: str) -> str:
    """The one HTML skeleton; app.js fills it in for `kind` ('index' or 'experiment')."""
    body = (STATIC / f"{kind}.html").read_text()
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'><link rel='icon' href='data:,'>"
            f"<title>{html.escape(title)}</title>{style}</head><body>{body}"
            f"<script>window.HD_CONFIG = {script_json(config)};</script>{scripts}</body></html>")


def dashboard_page(kind: str, key: str | None, poll_seconds: float, server: str) -> str:
    title = f"hyperdist: {key}" if key else "hyperdist experiments"
    config = {"page": kind, "key": key, "poll_ms": int(poll_seconds * 1000), "server": server}
    scripts = "<script src='/static/plotly.min.js'></script><script src='/static/app.js'></script>"
    return page(kind, title, config, scripts, "<link rel='stylesheet' href='/static/app.css'>")


def script_json(value: Any) -> str:
    """JSON that cannot end the <script> element it sits in."""
    return json.dumps(value, separators=(",", ":")).replace("</", "<\\/").replace("<!--", "<\\!--")


def inline_script(script: str) -> str:
    return script.replace("</script", "<\\/script")
