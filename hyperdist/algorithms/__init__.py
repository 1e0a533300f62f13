"""Suggestion algorithms: pure numpy functions from (space, history, seed) to new assignments."""
from . import rand, tpe

__all__ = ["rand", "tpe"]
