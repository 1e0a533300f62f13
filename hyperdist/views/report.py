"""`hyperdist report`: the dashboard's experiment page as one self-contained HTML file.

The file holds the experiment's data as JSON, plotly.js and the page script, so it is as
interactive as the dashboard (zoom, hover, log toggle, sortable and filterable trials, each trial's
detail) and opens offline, mailed or archived. It does not update, and its contour picker offers
only the pairs of the most important parameters, computed when it was written.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from hyperdist.views.data import ExperimentView, jsonable
from hyperdist.views.pages import STATIC, contour_payload, experiment_payload, inline_script, page, plotly_js, script_json


def report_html(view: ExperimentView, contours: int = 6) -> str:
    """The experiment page with its data, every trial's detail, `contours` contour pairs, plotly.js
    and the page script inline."""
    payload = experiment_payload(view)
    payload["pairs"] = payload["pairs"][:contours]
    embedded = {"experiment": payload,
                "details": {str(t["tid"]): jsonable(view.detail(t["tid"])) for t in view.trials},
                "contours": {f"{a}\t{b}": contour_payload(view, a, b) for a, b in payload["pairs"]}}
    generated = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    config = {"page": "experiment", "key": view.key, "poll_ms": 0, "server": f"report written {generated}"}
    scripts = (f"<script>{inline_script(plotly_js().read_text(encoding='utf-8'))}</script>"
               f"<script>window.HD_EMBED = {script_json(embedded)};</script>"
               f"<script>{inline_script((STATIC / 'app.js').read_text(encoding='utf-8'))}</script>")
    return page("experiment", f"hyperdist report: {view.key}", config, scripts,
                f"<style>{(STATIC / 'app.css').read_text(encoding='utf-8')}</style>")


def write_report(view: ExperimentView, out: Path) -> Path:
    out.write_text(report_html(view), encoding="utf-8")
    return out
