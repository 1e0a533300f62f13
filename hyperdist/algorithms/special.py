"""scipy.special's normal CDF and its inverse, imported on their first call or by `preload`.

Importing scipy.special costs about 0.25 s of CPU (docs/performance.md, "Start-up"). Only TPE's
Parzen estimators call these, and only once the random start-up trials are done, so a search's
coordinator reaches its first suggestions, and `import hyperdist` finishes, without paying for it.
Imported on that first model fit, the queue ran dry while it loaded (a ~0.3 s pause in the
finishing times at the 20th trial); `hyperdist search` preloads it while its workers start instead.
"""
from __future__ import annotations

import importlib
import threading
from typing import Any, Callable


def preload() -> threading.Thread:
    """Import scipy.special in a background thread: the first model fit then finds it loaded
    (or waits on the import lock for the rest of it) instead of stalling the queue."""
    thread = threading.Thread(target=importlib.import_module, args=("scipy.special",),
                              name="hyperdist-preload-scipy", daemon=True)
    thread.start()
    return thread


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
