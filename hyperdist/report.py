"""A one-file HTML report of an experiment: summary, best trial, importances, plots, trial table.

Everything is embedded (plots as base64 PNG, a few lines of script to sort the table), so the file
can be mailed or archived and opens without a server or network.
"""
from __future__ import annotations

import base64
import html
import json
import tempfile
from pathlib import Path
from typing import Any

from .importance import importances
from .plots import plot_all
from .space import SearchSpace
from .status import best_trial, loss_table

_SORT_SCRIPT = """
document.querySelectorAll('table.sortable th').forEach((th, col) => th.addEventListener('click', () => {
  const body = th.closest('table').tBodies[0];
  const asc = th.dataset.order !== 'asc';
  th.closest('tr').querySelectorAll('th').forEach(h => delete h.dataset.order);
  th.dataset.order = asc ? 'asc' : 'desc';
  const key = r => { const t = r.cells[col].textContent; const n = parseFloat(t); return isNaN(n) ? t : n; };
  [...body.rows].sort((a, b) => (key(a) > key(b) ? 1 : key(a) < key(b) ? -1 : 0) * (asc ? 1 : -1))
    .forEach(r => body.appendChild(r));
}));
"""

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}
th{cursor:pointer;background:#f3f3f3}th[data-order=asc]::after{content:' \\25B2'}th[data-order=desc]::after{content:' \\25BC'}
.bar{background:#4c78a8;height:10px}img{max-width:100%;margin:1em 0}pre{background:#f7f7f7;padding:1em}
"""


def render(exp: dict, docs: list[dict], space: SearchSpace) -> str:
    esc = html.escape
    best = best_trial(None, exp["_id"], docs)
    counts: dict[str, int] = {}
    for d in docs:
        counts[d["state"]] = counts.get(d["state"], 0) + 1
    X, loss = loss_table(space, docs)
    imp = sorted(importances(space, X, loss).items(), key=lambda kv: -kv[1])
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>hyperdist: {esc(exp['_id'])}</title>",
             f"<style>{_STYLE}</style></head><body>",
             f"<h1>Experiment {esc(exp['_id'])}</h1>",
             f"<p>state <b>{esc(str(exp.get('state')))}</b>, objective <code>{esc(str(exp.get('objective')))}</code>, "
             f"{sum(counts.values())} trials: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) + "</p>"]
    if best is not None:
        parts += ["<h2 id='best'>Best trial</h2>",
                  f"<p id='best-loss'>best loss <b>{best['result']['loss']:.6g}</b> (trial {best['tid']})</p>",
                  f"<pre id='best-config'>{esc(json.dumps(space.eval(best['params']), indent=2, default=str))}</pre>"]
    if imp:
        parts += ["<h2>Parameter importance</h2><p>Share of the (rank) loss variance explained by each parameter "
                  "alone (main effect, adjusted for chance).</p><table><tr><th>parameter</th><th>importance</th><th></th></tr>"]
        parts += [f"<tr><td>{esc(k)}</td><td>{v:.3f}</td><td style='width:300px'><div class='bar' "
                  f"style='width:{100 * v:.0f}%'></div></td></tr>" for k, v in imp]
        parts.append("</table>")
    with tempfile.TemporaryDirectory() as tmp:
        for path in plot_all(docs, space, Path(tmp)):
            if path.suffix == ".png":
                data = base64.b64encode(path.read_bytes()).decode()
                parts.append(f"<img alt='{path.stem}' src='data:image/png;base64,{data}'>")
    parts.append(_trial_table(docs, space))
    parts.append(f"<script>{_SORT_SCRIPT}</script></body></html>")
    return "\n".join(parts)


def _trial_table(docs: list[dict], space: SearchSpace) -> str:
    esc = html.escape
    devices = any(d.get("device") for d in docs)  # a column only when workers were pinned to GPUs
    head = ["tid", "state", "loss", *space.labels, "owner", *(["device"] if devices else []), "error"]
    rows = []
    for d in docs:
        result, params = d.get("result") or {}, d.get("params") or {}
        cells: list[Any] = [d["tid"], d["state"], result.get("loss", ""), *(params.get(k, "") for k in space.labels),
                            d.get("owner") or "", *([d.get("device") or ""] if devices else []),
                            (d.get("error") or {}).get("type", "")]
        rows.append("<tr>" + "".join(f"<td>{esc(_fmt(c))}</td>" for c in cells) + "</tr>")
    return ("<h2>Trials</h2><p>Click a column to sort.</p><table class='sortable' id='trials'><thead><tr>"
            + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr></thead><tbody>" + "".join(rows)
            + "</tbody></table>")


def _fmt(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)
