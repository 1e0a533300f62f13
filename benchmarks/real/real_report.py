"""Markdown tables of a real-task run (`run.py`): best loss, diversity, and Mann-Whitney comparisons."""
from __future__ import annotations

import numpy as np

STARTUP = 20  # trials 1-20 are random start-up for hyperdist and Hyperopt (Optuna: 10)


def best_after(r: dict, n: int) -> float:
    return float(np.min(r["losses"][:n]))


def distinct_losses(r: dict, first: int, last: int) -> int:
    """Distinct loss values among trials first..last (1-based): how many different results the budget bought."""
    return len(set(np.round(r["losses"][first - 1:last], 12).tolist()))


def new_configs(r: dict, first: int, last: int) -> int:
    return int(np.sum(r["new"][first - 1:last]))


def _p(a: list[float], b: list[float]) -> float:
    from scipy.stats import mannwhitneyu

    if len(set(a) | set(b)) == 1:
        return 1.0
    return float(mannwhitneyu(a, b, alternative="two-sided").pvalue)


def _cell(v: list[float]) -> str:
    q1, med, q3 = np.percentile(v, [25, 50, 75])
    return f"{med:.4f} [{q1:.4f}, {q3:.4f}]"


def _versus(ours: list[float], theirs: list[float]) -> str:
    """'<' / '>' / '=' by median, with the p-value; bold when p < 0.05."""
    mo, mt = np.median(ours), np.median(theirs)
    sign = "=" if mo == mt else "<" if mo < mt else ">"
    p = _p(ours, theirs)
    text = f"{sign} p={p:.2f}"
    return f"**{text}**" if p < 0.05 else text


def report(results: list[dict], methods: list[str], tasks: list[str]) -> str:
    rows: dict = {}
    for r in results:
        rows.setdefault((r["task"], r["method"]), []).append(r)
    for v in rows.values():
        v.sort(key=lambda r: r["seed"])
    evals = min(len(r["losses"]) for r in results)
    checks = sorted({c for c in (40, evals) if c <= evals})
    methods = [m for m in methods if all((t, m) in rows for t in tasks)]
    seeds = sorted({r["seed"] for r in results})
    windows = [(STARTUP + 1, c) for c in checks if c > STARTUP]  # post-start-up trials up to each checkpoint
    described = ", ".join(f"{a}-{b} (of {b - a + 1})" for a, b in windows)
    out = [f"Seeds {seeds[0]}..{seeds[-1]} ({len(seeds)}). Best loss: median [25th, 75th percentile] over seeds."
           + (f" Diversity: distinct loss values among trials {described}, median over seeds; 'new' = trials "
              f"{windows[-1][0]}-{windows[-1][1]} whose configuration (4 significant digits) was not evaluated "
              "before in the search." if windows else ""), ""]
    for t in tasks:
        head = [f"best @{c}" for c in checks] + [f"distinct {a}-{b}" for a, b in windows]
        head += [f"new {windows[-1][0]}-{windows[-1][1]}"] if windows else []
        out += [f"### {t}", "", "| method | " + " | ".join(head) + " | optimiser CPU s/search |",
                "|---" * (len(head) + 2) + "|"]
        for m in methods:
            rs = rows[(t, m)]
            cells = [_cell([best_after(r, c) for r in rs]) for c in checks]
            cells += [f"{np.median([distinct_losses(r, a, b) for r in rs]):.0f}" for a, b in windows]
            if windows:
                cells.append(f"{np.median([new_configs(r, *windows[-1]) for r in rs]):.0f}")
            cells.append(f"{np.median([r['optimiser_cpu_seconds'] for r in rs]):.2f}")
            out.append(f"| {m} | " + " | ".join(cells) + " |")
        out.append("")
    hd = [m for m in methods if m.startswith("hd")]
    peers = [m for m in methods if not m.startswith("hd")]
    if hd and peers:
        out += ["### hyperdist against the others", "",
                "Per task and checkpoint: hyperdist's median best loss <, = or > the other's, with the two-sided "
                "Mann-Whitney U p-value over the seeds (bold: p < 0.05).", ""]
        head = [f"{p} @{c}" for p in peers for c in checks]
        out += ["| hyperdist | task | " + " | ".join(head) + " |", "|---" * (len(head) + 2) + "|"]
        for m in hd:
            for t in tasks:
                cells = [_versus([best_after(r, c) for r in rows[(t, m)]], [best_after(r, c) for r in rows[(t, p)]])
                         for p in peers for c in checks]
                out.append(f"| {m} | {t} | " + " | ".join(cells) + " |")
        out.append("")
    ours = next((m for m in ("hd TPE", "hd TPE before") if m in hd), None)
    if len(hd) > 1 and ours:
        out += [f"### hyperdist configurations against `{ours}`", "",
                "| configuration | task | " + " | ".join(f"@{c}" for c in checks) + " |",
                "|---" * (len(checks) + 2) + "|"]
        for m in hd:
            if m == ours:
                continue
            for t in tasks:
                cells = [_versus([best_after(r, c) for r in rows[(t, m)]], [best_after(r, c) for r in rows[(t, ours)]])
                         for c in checks]
                out.append(f"| {m} | {t} | " + " | ".join(cells) + " |")
        out.append("")
    from scipy.stats import rankdata

    out += ["Mean rank over tasks of each method's median best loss (1 = best):", "",
            "| method | " + " | ".join(f"@{c}" for c in checks) + " |", "|---" * (len(checks) + 1) + "|"]
    ranks = {c: np.mean([rankdata([np.median([best_after(r, c) for r in rows[(t, m)]]) for m in methods])
                         for t in tasks], axis=0) for c in checks}
    for i in np.argsort(ranks[checks[-1]], kind="stable"):
        out.append(f"| {methods[i]} | " + " | ".join(f"{ranks[c][i]:.2f}" for c in checks) + " |")
    return "\n".join(out)
