"""Integrations with the tools tuners already use, one module per tool, each in an optional extra:
MLflow tracking (`mlflow`), pruning callbacks for XGBoost, LightGBM, Keras and PyTorch Lightning,
and a scikit-learn search estimator (`hyperdist.sklearn`). Importing a module whose library is
missing raises a HyperdistError naming the extra to install."""
from __future__ import annotations

import importlib
from types import ModuleType

from hyperdist.errors import HyperdistError


def require(module: str, extra: str) -> ModuleType:
    """Import a third-party module, or fail with one line saying which extra brings it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise HyperdistError(f"this integration needs {module.split('.')[0]} ({exc}): "
                             f"pip install 'hyperdist[{extra}]'") from None
