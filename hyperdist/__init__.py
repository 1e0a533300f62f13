"""hyperdist: Hyperopt-compatible TPE search that runs on one machine or many over MongoDB.

The layers, in the order a trial lives through them (docs/concepts.md): space/ -> algorithms/ ->
store/ -> distributed/ (coordinator, worker) or local/ (fmin, Trials), with objective/ (what is
evaluated and returned), server/ (the embedded server), views/, integrations/ and cli/ around them.
"""
import sys

from hyperdist.space import hp
from hyperdist.algorithms import rand, tpe
from hyperdist.local.early_stop import no_progress_loss
from hyperdist import exceptions, pyll
from hyperdist.errors import AllTrialsFailed, HyperdistError, SpaceError
from hyperdist.local.fmin import fmin, generate_trials_to_calculate
from hyperdist.objective.result import STATUS_FAIL, STATUS_NEW, STATUS_OK, STATUS_RUNNING, STATUS_STRINGS, STATUS_SUSPENDED
from hyperdist.space.compiled import SearchSpace, compile_space, space_eval, space_from_json
from hyperdist.local.trials import JOB_STATE_DONE, JOB_STATE_ERROR, JOB_STATE_NEW, JOB_STATE_RUNNING, Trials
from hyperdist.local import early_stop, fmin as _fmin_module, plotting

# Hyperopt's module paths (`hyperopt.hp`, `hyperopt.tpe`, `hyperopt.fmin`, `hyperopt.early_stop`,
# `hyperopt.plotting`) name modules that live in the layers here; these keep `import hyperdist.tpe`
# and `from hyperdist.fmin import ...` working after changing the import.
for _name, _module in {"hp": hp, "tpe": tpe, "rand": rand, "fmin": _fmin_module, "early_stop": early_stop,
                       "plotting": plotting}.items():
    sys.modules[f"{__name__}.{_name}"] = _module
del _name, _module

__version__ = "0.1.0"

__all__ = [
    "hp", "rand", "tpe", "fmin", "Trials", "space_eval", "compile_space", "space_from_json", "SearchSpace",
    "no_progress_loss", "STATUS_OK", "STATUS_FAIL", "STATUS_NEW", "STATUS_RUNNING", "STATUS_SUSPENDED",
    "STATUS_STRINGS", "JOB_STATE_NEW", "JOB_STATE_RUNNING", "JOB_STATE_DONE", "JOB_STATE_ERROR",
    "HyperdistError", "SpaceError", "AllTrialsFailed", "exceptions", "pyll", "generate_trials_to_calculate",
]


def __getattr__(name: str):
    if name == "MongoTrials":  # imported lazily: only the distributed mode needs pymongo
        from hyperdist.distributed.mongotrials import MongoTrials

        return MongoTrials
    if name in ("anneal", "atpe", "mix"):  # Hyperopt's other algorithms: say so at the import
        raise ImportError(f"hyperdist has no {name}: its algorithms are tpe.suggest and rand.suggest "
                          "(docs/migrating-from-hyperopt.md lists what is not carried over)")
    raise AttributeError(f"module 'hyperdist' has no attribute {name!r}")
