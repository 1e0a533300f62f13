"""The search space: `hp.*` expressions, their distributions, and the compiled flat table the
algorithms read (also its JSON form, which is how a space travels to workers: data, never code)."""
from hyperdist.space.compiled import SearchSpace, compile_space, space_eval, space_from_json

__all__ = ["SearchSpace", "compile_space", "space_eval", "space_from_json"]
