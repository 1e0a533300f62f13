"""Exceptions a user can act on, and the credential redaction every message goes through."""
from __future__ import annotations

import re


class HyperdistError(Exception):
    """Base for errors caused by input or environment; the CLI prints these without a traceback."""


class SpaceError(HyperdistError, ValueError):
    """A search space is malformed (bad label, bound, probability...)."""


class AllTrialsFailed(HyperdistError):
    """No trial finished with status ok, so there is no best trial."""


class StoreError(HyperdistError):
    """The database cannot be reached or holds something unexpected."""


class StoreUnavailable(StoreError):
    """The server did not answer (down, restarting, unreachable): retrying later may succeed."""


class ExperimentNotFound(StoreError):
    """No experiment has the given key."""


class ExperimentExists(StoreError):
    """An experiment with this key exists and resuming it was not asked for."""


class SpaceMismatch(StoreError):
    """The stored experiment was created with a different space."""


class CoordinatorBusy(StoreError):
    """Another coordinator holds an unexpired lease on the experiment."""


class ObjectiveError(HyperdistError):
    """An objective reference does not import, is not callable, or is not allowed."""


_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<cred>[^@/\s]+)@")
_SECRET_PARAMS = re.compile(
    r"(?P<key>(password|tlsCertificateKeyFilePassword|authMechanismProperties)=)[^&\s]*",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """Replace user:password in URLs and secret query parameters with '***'."""
    text = _CREDENTIALS.sub(lambda m: f"{m.group('scheme')}***@", str(text))
    return _SECRET_PARAMS.sub(lambda m: f"{m.group('key')}***", text)
