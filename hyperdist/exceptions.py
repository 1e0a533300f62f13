"""The names of `hyperopt.exceptions`, for code that imports them from there; defined in errors.py
as subclasses of hyperdist's own errors."""
from hyperdist.errors import (AllTrialsFailed, BadSearchSpace, DuplicateLabel, InvalidAnnotatedParameter, InvalidLoss,
                     InvalidResultStatus, InvalidTrial)

__all__ = ["AllTrialsFailed", "BadSearchSpace", "DuplicateLabel", "InvalidAnnotatedParameter", "InvalidLoss",
           "InvalidResultStatus", "InvalidTrial"]
