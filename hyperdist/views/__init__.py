"""What a person sees of a search: the text status (hyperdist/views/status.py), parameter importance, matplotlib plots, the HTML report and the live
dashboard. They all draw from one step, `ExperimentView` (data.py), which reads an experiment's
trials, or a notebook's `Trials`, once.

In a notebook::

    from hyperdist.views import ExperimentView, plots
    view = ExperimentView.from_trials(trials, space)       # or ExperimentView.from_store(store, "run1")
    plots.plot_history(view)                               # a matplotlib Figure
"""
from __future__ import annotations

from hyperdist.views.data import ExperimentView

__all__ = ["ExperimentView"]
