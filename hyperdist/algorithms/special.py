"""scipy.special's normal CDF and its inverse, imported on their first call.

Importing scipy.special costs about 0.25 s of CPU (docs/performance.md, "Start-up"). Only TPE's
Parzen estimators call these, and only once the random start-up trials are done, so a search's
coordinator reaches its first suggestions, and `import hyperdist` finishes, without paying for it.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable


class _OnFirstCall:
    """Stands for the scipy.special ufunc `name`; imports it when first called."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.fn: Callable[..., Any] | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.fn is None:
            self.fn = getattr(importlib.import_module("scipy.special"), self.name)
        return self.fn(*args, **kwargs)


ndtr = _OnFirstCall("ndtr")
ndtri = _OnFirstCall("ndtri")
