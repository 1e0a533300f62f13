"""What an objective may return, and how it is turned into a result every trial store can hold.

Hyperopt's rule: a float is a loss; a dict carries `loss` and `status` plus any extra keys. A result
that claims success without a usable loss becomes a failure with a reason instead of poisoning the
search with NaN.
"""
from __future__ import annotations

import math
import numbers
import traceback
from typing import Any, Mapping

STATUS_NEW = "new"
STATUS_RUNNING = "running"
STATUS_SUSPENDED = "suspended"
STATUS_OK = "ok"
STATUS_FAIL = "fail"
STATUS_PRUNED = "pruned"  # stopped early by a pruner; its loss is the last value it reported
STATUS_STRINGS = (STATUS_NEW, STATUS_RUNNING, STATUS_SUSPENDED, STATUS_OK, STATUS_FAIL, STATUS_PRUNED)


def normalize(raw: Any) -> tuple[dict[str, Any], dict[str, str] | None]:
    """(result dict, error) from what the objective returned; error is None for a usable result."""
    if isinstance(raw, numbers.Real) and not isinstance(raw, bool):
        raw = {"loss": raw, "status": STATUS_OK}
    if not isinstance(raw, Mapping):
        return _fail({}, "InvalidResult",
                     f"objective returned {_short(raw)} of type {type(raw).__name__}; "
                     "expected a number or a dict with 'loss' and 'status'")
    result = dict(raw)
    status = result.get("status", STATUS_OK if "loss" in result else None)
    if status not in STATUS_STRINGS:
        return _fail(result, "InvalidResult",
                     f"result status {status!r} is not one of {list(STATUS_STRINGS)}")
    result["status"] = status
    if status != STATUS_OK:
        return result, None
    loss = result.get("loss")
    if isinstance(loss, bool) or not isinstance(loss, numbers.Real):
        return _fail(result, "InvalidLoss",
                     f"status is 'ok' but loss is {_short(loss)}; expected a finite number")
    if not math.isfinite(float(loss)):
        return _fail(result, "InvalidLoss", f"status is 'ok' but loss is {float(loss)!r}; expected a finite number")
    result["loss"] = float(loss)
    return result, None


def exception_error(exc: BaseException) -> dict[str, str]:
    """The record of an exception raised by an objective: type, message and traceback."""
    return {
        "type": type(exc).__name__,
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-8000:],
    }


def plain(value: Any, where: str = "result") -> Any:
    """A deep copy holding only JSON/BSON-friendly types (numpy scalars and arrays are converted).

    Raises TypeError naming the offending key, so a worker can record a clear error.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where} has a non-string key {k!r}")
            out[k] = plain(v, f"{where}[{k!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return [plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return plain(tolist(), where)
    raise TypeError(f"{where} holds a {type(value).__name__}, which cannot be stored as JSON/BSON")


def _fail(result: dict[str, Any], kind: str, message: str) -> tuple[dict[str, Any], dict[str, str]]:
    result["status"] = STATUS_FAIL
    result["failure"] = message
    return result, {"type": kind, "message": message}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
