"""hyperdist: Hyperopt-compatible TPE search that runs on one machine or many over MongoDB."""
from . import hp
from .algorithms import rand, tpe
from .early_stop import no_progress_loss
from . import exceptions, pyll
from .errors import AllTrialsFailed, HyperdistError, SpaceError
from .fmin import fmin, generate_trials_to_calculate
from .result import STATUS_FAIL, STATUS_NEW, STATUS_OK, STATUS_RUNNING, STATUS_STRINGS, STATUS_SUSPENDED
from .space import SearchSpace, compile_space, space_eval, space_from_json
from .trials import JOB_STATE_DONE, JOB_STATE_ERROR, JOB_STATE_NEW, JOB_STATE_RUNNING, Trials

__version__ = "0.1.0"

__all__ = [
    "hp", "rand", "tpe", "fmin", "Trials", "space_eval", "compile_space", "space_from_json", "SearchSpace",
    "no_progress_loss", "STATUS_OK", "STATUS_FAIL", "STATUS_NEW", "STATUS_RUNNING", "STATUS_SUSPENDED",
    "STATUS_STRINGS", "JOB_STATE_NEW", "JOB_STATE_RUNNING", "JOB_STATE_DONE", "JOB_STATE_ERROR",
    "HyperdistError", "SpaceError", "AllTrialsFailed", "exceptions", "pyll", "generate_trials_to_calculate",
]


def __getattr__(name: str):
    if name == "MongoTrials":  # imported lazily: only the distributed mode needs pymongo
        from .mongotrials import MongoTrials

        return MongoTrials
    raise AttributeError(f"module 'hyperdist' has no attribute {name!r}")
