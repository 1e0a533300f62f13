"""`hyperopt.pyll.base` names: `scope`, and `Apply`, the type every space node (hp node or expression) has."""
from __future__ import annotations

from typing import Any

from hyperdist.space.expr import Arithmetic, scope

Apply = Arithmetic  # isinstance(node, Apply) holds for hp nodes and expressions, as in Hyperopt


def as_apply(obj: Any) -> Any:
    """Hyperopt wraps literals in graph nodes here; a hyperdist space is plain data, so this is the identity."""
    return obj


__all__ = ["Apply", "as_apply", "scope"]
