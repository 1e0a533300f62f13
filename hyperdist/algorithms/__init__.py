"""Suggestion algorithms: pure numpy functions from (space, history, seed) to new assignments."""
from hyperdist.algorithms import rand, tpe

__all__ = ["rand", "tpe"]
