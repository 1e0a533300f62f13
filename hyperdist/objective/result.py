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

from hyperdist.errors import redact

STATUS_NEW = "new"
STATUS_RUNNING = "running"
STATUS_SUSPENDED = "suspended"
STATUS_OK = "ok"
STATUS_FAIL = "fail"
STATUS_PRUNED = "pruned"  # stopped early by a pruner; its loss is the last value it reported
STATUS_STRINGS = (STATUS_NEW, STATUS_RUNNING, STATUS_SUSPENDED, STATUS_OK, STATUS_FAIL, STATUS_PRUNED)


def finite(value: Any) -> float | None:
    """`value` as a float when it is a finite real number (not a bool), else None."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def ok_loss(result: Mapping[str, Any] | None, done: bool = True) -> float | None:
    """The loss of a finished trial that counts as a result, else None: the one rule every reader
    uses (best trial, status, views, stop rules). It must be done (a trial that raised is not), its
    status 'ok' (a pruned trial's loss is only its last report), and its loss a finite number (a
    stored result may have been written by anyone)."""
    if not done or not isinstance(result, Mapping) or result.get("status") != STATUS_OK:
        return None
    return finite(result.get("loss"))


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
    if "loss" not in result:
        keys = ", ".join(_short(k) for k in list(result)[:10])
        return _fail(result, "InvalidLoss", f"status is 'ok' but the result has no 'loss' (its keys: {keys}); "
                                            "expected a finite number under 'loss'")
    loss = result.get("loss")
    if isinstance(loss, bool) or not isinstance(loss, numbers.Real):
        return _fail(result, "InvalidLoss",
                     f"status is 'ok' but loss is {_short(loss)}; expected a finite number")
    if not math.isfinite(float(loss)):
        return _fail(result, "InvalidLoss", f"status is 'ok' but loss is {float(loss)!r}; expected a finite number")
    result["loss"] = float(loss)
    return result, None


def exception_error(exc: BaseException) -> dict[str, str]:
    """The record of an exception raised by an objective: type, message and traceback, credentials
    redacted (an objective's error often names the URL it could not reach, password included), so
    no store, log or tracker ever holds them. An exception whose message or traceback cannot be
    rendered still gives a record."""
    try:
        message = str(exc)
    except Exception as inner:  # a __str__ that raises
        message = f"<message unavailable: its __str__ raised {type(inner).__name__}>"
    try:
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    except Exception:
        tb = f"{type(exc).__name__}: {message}"
    return {"type": _text(type(exc).__name__, 200), "message": _text(redact(message), 4000),
            "traceback": _text(redact(tb)[-8000:], 8000)}


class UnstorableResult(TypeError):
    """A result value that no trial store can hold; the message names its path (`result.extra.n`)."""


MAX_DEPTH = 40  # nesting levels of a result; MongoDB refuses documents nested past 100
_INT64 = (-(2**63), 2**63 - 1)


def plain(value: Any, where: str = "result") -> Any:
    """A deep copy holding only JSON/BSON-friendly types (numpy scalars and arrays are converted).

    Raises UnstorableResult naming the path of the first value that cannot be stored: a type other
    than None/bool/number/str/list/dict, an int beyond 64 bits, a key that is not a plain string, a
    string that is not valid Unicode, a cycle, or nesting deeper than MAX_DEPTH.
    """
    return _plain(value, where, 0, set())


def _plain(value: Any, where: str, depth: int, path_ids: set[int]) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise UnstorableResult(f"{where} is a string that is not valid Unicode (a lone surrogate)") from None
        return value
    if isinstance(value, numbers.Integral):
        number = int(value)
        if not _INT64[0] <= number <= _INT64[1]:
            raise UnstorableResult(f"{where} is {_short(number)}, beyond 64-bit integers; return it as a float or "
                                   "a string")
        return number
    if isinstance(value, numbers.Real):
        return float(value)
    if depth >= MAX_DEPTH:
        raise UnstorableResult(f"{where} is nested more than {MAX_DEPTH} levels deep")
    if id(value) in path_ids:
        raise UnstorableResult(f"{where} refers back to a container it is inside (a cycle)")
    path_ids = path_ids | {id(value)}
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str) or k.startswith("$") or "\0" in k or not k:
                raise UnstorableResult(f"{where} has the key {_short(k)}; keys must be non-empty strings, "
                                       "not starting with '$'")
            out[_plain(k, f"{where} key", depth + 1, path_ids)] = _plain(v, f"{where}.{k}", depth + 1, path_ids)
        return out
    if isinstance(value, (list, tuple)):
        return [_plain(v, f"{where}[{i}]", depth + 1, path_ids) for i, v in enumerate(value)]
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return _plain(tolist(), where, depth + 1, path_ids)
    raise UnstorableResult(f"{where} holds a {type(value).__name__}, which cannot be stored; return numbers, "
                           "strings, lists and dicts")


def _fail(result: dict[str, Any], kind: str, message: str) -> tuple[dict[str, Any], dict[str, str]]:
    message = redact(message)  # it may quote what the objective returned
    result["status"] = STATUS_FAIL
    result["failure"] = message
    return result, {"type": kind, "message": message}


def _short(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."


def _text(text: str, limit: int) -> str:
    """Storable text: at most `limit` characters, unencodable characters escaped."""
    text = text if len(text) <= limit else text[:limit - 3] + "..."
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
