"""The shared step of every view: an experiment's trials read once into what plots and pages draw.

`ExperimentView` turns trial documents (from the store, or a `Trials` in a notebook) into arrays and
plain records: each trial's kind (ok, pruned, failed, running, new), the numeric parameter table
(NaN where a conditional parameter was inactive), losses, and per-view series. The plotly figures
(figures.py), the matplotlib plots (plots.py), the dashboard and the report all draw from it, so a
choice is shown by its option, a log parameter on a log axis, and an inactive parameter counted
the same way everywhere.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np

from hyperdist.errors import redact
from hyperdist.objective.result import STATUS_PRUNED, finite, ok_loss
from hyperdist.space.compiled import SearchSpace, space_from_json
from hyperdist.store.document import FINISHED, OPEN, ExperimentState, TrialRecord, TrialState, utc
from hyperdist.views.importance import importances

OK, PRUNED, FAILED, RUNNING, NEW = "ok", "pruned", "failed", "running", "new"  # a trial's kind, as views draw it
# a local Trials' integer states (Hyperopt's JOB_STATE_NEW ... JOB_STATE_ERROR)
_JOB_STATES = {0: TrialState.NEW, 1: TrialState.RUNNING, 2: TrialState.DONE, 3: TrialState.ERROR}


LABEL_CHARS = 40  # a parameter's label or option as drawn; longer ones are cut (the table and detail keep them)


def short(text: Any, limit: int = LABEL_CHARS) -> str:
    """`text` cut to `limit` characters for an axis, a title or a tick: a 5 000-character label must
    not take the figure (or minutes of layout) with it."""
    text = str(text)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def kind_of(rec: TrialRecord) -> str:
    """ok: finished with an ok loss; pruned: stopped early (loss = last reported value); failed: the rest."""
    if rec.state in OPEN:
        return NEW if rec.state == TrialState.NEW else RUNNING
    if ok_loss(rec.result, rec.state == TrialState.DONE) is not None:
        return OK
    return PRUNED if rec.state == TrialState.DONE and rec.status == STATUS_PRUNED else FAILED


def trial_record(doc: dict) -> dict:
    """A store document or a `Trials` entry as one record with the fields the views read."""
    rec = TrialRecord.from_doc(_stored(doc))
    return {"tid": rec.tid, "state": rec.state, "result": rec.result, "params": rec.params, "error": rec.error,
            "owner": _worker(rec), "claimed": rec.claimed, "finished": rec.finished, "heartbeat": rec.heartbeat,
            "lease_until": rec.lease_until, "attempts": rec.attempts, "loss": finite(rec.result.get("loss")),
            "intermediate": sorted((int(k), float(v)) for k, v in rec.intermediate.items() if finite(v) is not None),
            "kind": kind_of(rec)}


def _stored(doc: dict) -> dict:
    """A local `Trials` entry (Hyperopt's integer states, book_time, refresh_time) in the stored
    document's field names; a store document as it is."""
    if not isinstance(doc.get("state"), int):
        return doc
    state = _JOB_STATES[doc["state"]]
    return dict(doc, state=state, claimed=doc.get("book_time"),
                finished=doc.get("refresh_time") if state in FINISHED else None)


def _worker(rec: TrialRecord) -> str | None:
    """The worker that ran a trial, with the device it was pinned to (`host:pid (gpu:1)`)."""
    return f"{rec.owner} ({rec.device})" if rec.owner and rec.device else rec.owner


MAX_DRAWN = 30  # parameters a per-parameter view draws at most


@dataclass
class ExperimentView:
    """One experiment's trials, ordered by tid, and the arrays every view draws from."""

    key: str
    exp: dict
    space: SearchSpace
    trials: list[dict]

    def __post_init__(self) -> None:
        self.trials.sort(key=lambda t: t["tid"])
        self.kinds = np.array([t["kind"] for t in self.trials], dtype=object)
        self.X = np.full((len(self.trials), len(self.space)), np.nan)
        for i, t in enumerate(self.trials):
            self.X[i] = self.space.to_row(t["params"])
        self._drop_impossible()
        self.loss = np.array([t["loss"] if t["kind"] == OK else np.nan for t in self.trials], dtype=float)
        self.ok = self.kinds == OK
        self.now = dt.datetime.now(dt.timezone.utc)
        self._importance: dict[str, float] | None = None

    def _drop_impossible(self) -> None:
        """Values no search can have written (anyone who can write the database can write a trial)
        are read as missing: infinities, a choice index that is not one of its options, a value
        outside a bounded parameter's range, and one further than 50 prior deviations from a normal
        family's centre (1e308 there made every axis's span infinite)."""
        self.space.drop_invalid(self.X)
        for j, spec in enumerate(self.space.params):
            if not spec.dist.categorical and not spec.dist.bounded:
                mu, sigma = spec.dist.prior
                x = self.X[:, j]
                with np.errstate(invalid="ignore", divide="ignore"):
                    t = np.log(x) if spec.dist.log else x
                    x[np.abs(t - mu) > 50 * sigma] = np.nan

    # --- construction -------------------------------------------------------------------------
    @classmethod
    def from_store(cls, store: Any, exp_key: str) -> "ExperimentView":
        exp = store.get_experiment(exp_key)
        return cls(exp_key, exp, space_from_json(exp.get("space")), [trial_record(d) for d in store.iter_history(exp_key)])

    @classmethod
    def from_trials(cls, trials: Any, space: Any, name: str = "trials") -> "ExperimentView":
        """A notebook's `Trials` (or `MongoTrials`) and the space it was searched with."""
        from hyperdist.space.compiled import compile_space

        docs = [trial_record(t) for t in trials.trials]
        over = all(t["state"] in FINISHED for t in docs)
        exp = {"_id": name, "state": (ExperimentState.DONE if over else ExperimentState.RUNNING).value,
               "max_evals": len(docs)}
        return cls(name, exp, compile_space(space), docs)

    # --- what the loss looks like -------------------------------------------------------------
    @property
    def oks(self) -> np.ndarray:
        return self.loss[self.ok]

    def log_loss(self) -> bool:
        """Draw losses on a log axis when all are positive and they span a decade or more: on a
        linear one a few bad trials flatten the best-so-far line against the floor."""
        losses = self.oks
        return bool(len(losses) >= 2 and losses.min() > 0 and losses.max() / losses.min() >= 10)

    def pairs(self) -> list[list[str]]:
        """Parameter pairs for the contour: the most important parameters' pairs first, pairs with
        fewer than three trials to draw (never active together, or one constant) last."""
        order = list(self.importance())
        order += [lab for lab in self.space.labels if lab not in order]
        ranked = sorted(combinations(order, 2), key=lambda ab: self.informative(*ab) < 3)  # stable sort
        return [[a, b] for a, b in ranked]

    def informative(self, a: str, b: str) -> int:
        """How many ok trials a contour of a and b would show: both active and, among those, each
        taking two values or more (0 otherwise, e.g. a parameter against the choice it hangs on)."""
        cols = self.X[:, [self.space.index[a], self.space.index[b]]]
        both = cols[self.ok & ~np.isnan(cols).any(axis=1)]
        return len(both) if len(both) and all(len(np.unique(both[:, k])) > 1 for k in (0, 1)) else 0

    def importance(self) -> dict[str, float]:
        """label -> adjusted main-effect share of the loss variance (importance.py); largest first."""
        if self._importance is None:
            found = importances(self.space, self.X, self.loss) if self.ok.sum() >= 8 else {}
            self._importance = dict(sorted(found.items(), key=lambda kv: -kv[1]))
        return self._importance

    # --- per-view series ----------------------------------------------------------------------
    def history(self) -> dict[str, list]:
        """Loss per trial id: ok trials with the best so far, pruned at their last value, failed ids."""
        rows = [t for t in self.trials if t["kind"] == OK]
        best = np.minimum.accumulate([t["loss"] for t in rows]).tolist() if rows else []
        pruned = [t for t in self.trials if t["kind"] == PRUNED and t["loss"] is not None]
        failed = [t for t in self.trials if t["kind"] == FAILED]
        return {"tid": [t["tid"] for t in rows], "loss": [t["loss"] for t in rows], "best": best,
                "pruned_tid": [t["tid"] for t in pruned], "pruned_loss": [t["loss"] for t in pruned],
                "failed_tid": [t["tid"] for t in failed], "failed_why": [_error_line(t) for t in failed]}

    def options(self, j: int) -> list[str]:
        """A choice's options as a person reads them, in index order, cut for drawing (`short`)."""
        spec = self.space.params[j]
        return [short(self.space.display(spec.label, i)) for i in range(spec.dist.n_options)]

    def drawn(self) -> list[int]:
        """The parameters the per-parameter views draw: all of them, or for a space of more than
        MAX_DRAWN the most important (in the space's order while importance is unknown), so a space
        of thousands of parameters draws in seconds and stays readable (`drawn_note` says so)."""
        n = len(self.space)
        if n <= MAX_DRAWN:
            return list(range(n))
        ranked = [self.space.index[label] for label in self.importance()][:MAX_DRAWN]
        return sorted(ranked) if ranked else list(range(MAX_DRAWN))

    def drawn_note(self) -> str:
        """'' when every parameter is drawn, else which ones are."""
        n = len(self.space)
        if n <= MAX_DRAWN:
            return ""
        which = "the most important" if self.importance() else "the first, until importance is known"
        return f" ({MAX_DRAWN} of {n} parameters: {which})"

    def slices(self) -> list[dict]:
        """Per drawn parameter: its value against the loss over ok trials where it was active."""
        out = []
        for j in self.drawn():
            spec = self.space.params[j]
            active = self.ok & ~np.isnan(self.X[:, j])
            x = self.X[active, j]
            names = self.options(j) if spec.dist.categorical else []
            values: list = [names[int(v)] for v in x] if spec.dist.categorical else x.tolist()
            out.append({"label": spec.label, "categorical": spec.dist.categorical,
                        "log": bool(spec.dist.log and (x > 0).all()), "x": values, "loss": self.loss[active].tolist(),
                        "tid": [t["tid"] for t, a in zip(self.trials, active) if a],
                        "categories": self.options(j) if spec.dist.categorical else None,
                        "active": int(active.sum()), "inactive": int((self.ok & ~active).sum())})
        return out

    def axis(self, j: int, rows: np.ndarray) -> dict:
        """Parameter j of these rows on a drawable axis: log10 for log families, option codes for
        choices, and inactive rows at a level of their own below the range ("inactive")."""
        spec, x = self.space.params[j], self.X[rows, j]
        active = ~np.isnan(x)
        if spec.dist.categorical:
            ticks: list[float] = [float(i) for i in range(spec.dist.n_options)]
            text = [short(o, 20) for o in self.options(j)]
            lo, hi, t = 0.0, float(max(1, spec.dist.n_options - 1)), x.copy()
        else:
            log = spec.dist.log and bool((x[active] > 0).all())
            t = np.log10(np.where(active, x, 1.0)) if log else x.copy()
            lo, hi = (float(t[active].min()), float(t[active].max())) if active.any() else (0.0, 1.0)
            if hi <= lo:
                lo, hi = lo - 0.5, hi + 0.5
            ticks = _nice_ticks(lo, hi, log)
            text = [_fmt(10 ** v if log else v) for v in ticks]
        if (~active).any():
            level = lo - 0.15 * (hi - lo)
            t[~active] = level
            ticks, text, lo = [level, *ticks], ["inactive", *text], level
        return {"label": spec.label, "values": t.tolist(), "range": [lo, hi], "tickvals": ticks, "ticktext": text,
                "inactive": int((~active).sum())}

    def parallel(self) -> dict:
        """Parallel coordinates of the ok trials: one axis per parameter, then the loss (log10 when
        the losses span a decade, labelled with the losses themselves)."""
        rows = self.ok
        dims = [self.axis(j, rows) for j in self.drawn()]
        log = self.log_loss()
        loss = np.log10(self.oks) if log else self.oks
        lo, hi = (float(loss.min()), float(loss.max())) if len(loss) else (0.0, 1.0)
        axis = dict(self._loss_ticks(loss), label="loss", values=loss.tolist(), range=[lo, hi if hi > lo else lo + 1])
        return {"dims": dims, "loss": axis, "color": loss.tolist(), "log": log, "n": int(rows.sum())}

    def _loss_ticks(self, values: np.ndarray) -> dict:
        """Ticks for losses drawn as `values` (log10 of the loss when `log_loss`), labelled with the
        losses themselves."""
        log = self.log_loss()
        lo, hi = (float(values.min()), float(values.max())) if len(values) else (0.0, 1.0)
        ticks = _nice_ticks(lo, hi, log) if hi > lo else [lo]
        return {"tickvals": ticks, "ticktext": [_fmt(10 ** v if log else v) for v in ticks]}

    def contour(self, a: str, b: str, grid: int = 40) -> dict:
        """The loss over two parameters, smoothed from the ok trials where both were active: a
        Gaussian kernel average on axes scaled to [0, 1] (never across a choice's options), blank
        where no trial is near."""
        ja, jb = self.space.index[a], self.space.index[b]
        rows = self.ok & ~np.isnan(self.X[:, ja]) & ~np.isnan(self.X[:, jb])
        axes, coords = [], []
        for j in (ja, jb):
            ax = self.axis(j, rows)
            cat = self.space.params[j].dist.categorical
            g = np.array(ax["tickvals"], dtype=float) if cat else np.linspace(ax["range"][0], ax["range"][1], grid)
            axes.append(dict(ax, grid=g.tolist(), categorical=cat))
            coords.append((np.array(ax["values"]), g, cat, ax["range"]))
        y = np.log10(self.loss[rows]) if self.log_loss() else self.loss[rows]
        z = np.full((len(coords[1][1]), len(coords[0][1])), np.nan)
        if len(y) >= 3:
            width = max(0.08, 0.6 / math.sqrt(len(y)))  # wider where trials are few
            kx, ky = (_kernel(*c, width) for c in coords)  # grid points x trials, per axis
            total = ky @ kx.T
            z = np.where(total > 0.05, ((ky * y) @ kx.T) / np.maximum(total, 1e-300), np.nan)
        return {"x": axes[0], "y": axes[1], "z": z.tolist(), "log": self.log_loss(), "n": int(rows.sum()),
                "ticks": self._loss_ticks(y),
                "tid": [t["tid"] for t, r in zip(self.trials, rows) if r], "loss": self.loss[rows].tolist()}

    def edf(self) -> dict:
        """Empirical distribution of the ok losses: the share of trials at or below each loss."""
        losses = np.sort(self.oks)
        return {"loss": losses.tolist(), "share": (np.arange(1, len(losses) + 1) / max(1, len(losses))).tolist(),
                "log": self.log_loss()}

    def curves(self) -> list[dict]:
        """The values each trial reported per step (the pruning curves)."""
        return [{"tid": t["tid"], "kind": t["kind"], "step": [s for s, _ in t["intermediate"]],
                 "value": [v for _, v in t["intermediate"]]} for t in self.trials if t["intermediate"]]

    def timeline(self) -> list[dict]:
        """Claimed-to-finished spans per worker; a running trial ends now."""
        spans = []
        for t in self.trials:
            if t["claimed"] is not None and t["kind"] != NEW:
                end = t["finished"] or self.now
                spans.append({"tid": t["tid"], "owner": str(t["owner"] or "?"), "kind": t["kind"],
                              "start": t["claimed"], "end": max(end, t["claimed"])})
        return spans

    # --- tables -------------------------------------------------------------------------------
    def rows(self) -> list[dict]:
        """One row per trial for the trials table: readable parameters, loss, times, owner."""
        out = []
        for t in self.trials:
            took = (t["finished"] - t["claimed"]).total_seconds() if t["finished"] and t["claimed"] else None
            out.append({"tid": t["tid"], "kind": t["kind"], "loss": t["loss"], "seconds": took,
                        "params": {k: _cell(v) for k, v in self.space.readable(t["params"]).items()},
                        "owner": t["owner"],
                        "finished": t["finished"], "error": (t["error"] or {}).get("type")})
        return out

    def detail(self, tid: int) -> dict | None:
        """One trial in full: the configuration its objective received, its result and traceback."""
        t = next((t for t in self.trials if t["tid"] == tid), None)
        if t is None:
            return None
        try:
            config: Any = self.space.eval(t["params"])
        except Exception as exc:  # a stored assignment the space no longer fits
            config = f"cannot rebuild the configuration: {exc}"
        return {"tid": tid, "kind": t["kind"], "state": t["state"], "config": config, "params": t["params"],
                "readable": self.space.readable(t["params"]), "result": t["result"], "error": t["error"],
                "intermediate": t["intermediate"], "owner": t["owner"], "attempts": t["attempts"],
                "claimed": t["claimed"], "finished": t["finished"], "heartbeat": t["heartbeat"]}


def fingerprint(view: ExperimentView) -> str:
    """Changes whenever a trial changes state or reports a value: the page redraws only then."""
    import hashlib

    parts = [(t["tid"], t["kind"], len(t["intermediate"]), t["loss"]) for t in view.trials]
    return hashlib.sha1(repr((view.exp.get("state"), parts)).encode()).hexdigest()[:16]


def jsonable(value: Any) -> Any:
    """Plain JSON for a page: no NaN or inf, times as ISO strings, every string redacted."""
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is str:  # both credential patterns need an '@' or a '='
        return redact(value) if "@" in value or "=" in value else value
    if kind is int or kind is bool or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, dt.datetime):
        return utc(value).isoformat()
    return jsonable(str(value))


def _kernel(values: np.ndarray, grid: np.ndarray, categorical: bool, span: list[float], width: float) -> np.ndarray:
    """Weights of each trial at each grid point along one axis: equal options only for a choice."""
    d = (grid[:, None] - values[None, :]) / ((span[1] - span[0]) or 1.0)
    return (np.abs(d) < 1e-9).astype(float) if categorical else np.exp(-0.5 * (d / width) ** 2)


def _error_line(t: dict) -> str:
    error = t["error"] or {}
    if error:
        return f"{error.get('type')}: {error.get('message')}"[:200]
    return f"status {t['result'].get('status')!r}, loss {t['result'].get('loss')!r}"[:200]


def _nice_ticks(lo: float, hi: float, log: bool) -> list[float]:
    """Round tick positions in [lo, hi]: on a log axis (lo, hi are log10) whole decades when it spans
    two or more, else 1-2-5 values; on a linear one multiples of 1, 2 or 5 times a power of ten."""
    if log:
        if hi - lo >= 2:
            step = max(1, int(math.ceil((hi - lo) / 5)))
            return [float(v) for v in range(int(math.ceil(lo)), int(math.floor(hi)) + 1, step)]
        marks = [math.log10(m) + k for k in range(int(math.floor(lo)), int(math.ceil(hi)) + 1) for m in (1, 2, 5)]
        inside = [v for v in marks if lo - 1e-9 <= v <= hi + 1e-9]
        return inside if len(inside) >= 2 else [lo, hi]
    raw = (hi - lo) / 4
    base = 10 ** math.floor(math.log10(raw))
    step = next(m * base for m in (1, 2, 5, 10) if (hi - lo) / (m * base) <= 5)
    first = math.ceil(lo / step - 1e-9) * step
    return [float(round(v, 12)) for v in np.arange(first, hi + step * 1e-9, step)]


def _cell(value: Any) -> Any:
    """A table cell: numbers stay numbers (they sort and filter as such), options read as in the plots."""
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def _fmt(value: float) -> str:
    return f"{value:.3g}"
