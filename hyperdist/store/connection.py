"""The connection: one client, the database's collections and indexes, and pymongo's exceptions
turned into hyperdist's (`_errors`). Every part of the store builds on this class."""
from __future__ import annotations

import atexit
import logging
import random
import re
import sys
import time
import warnings
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence, TypeVar

import pymongo
from pymongo import ASCENDING, MongoClient
from pymongo.errors import ConfigurationError, ConnectionFailure, InvalidURI, OperationFailure, PyMongoError

from hyperdist.errors import StoreError, StoreUnavailable, redact
from hyperdist.store.picks import Sightings

log = logging.getLogger("hyperdist.store")
T = TypeVar("T")

# Server error codes meaning "not now" (shutting down, stepping down, network): worth a retry.
_TRANSIENT_CODES = frozenset({6, 7, 89, 91, 189, 9001, 10107, 11600, 11602, 13435, 13436})


class Database:
    """One database's client and collections, which every part of the store shares.

    The surface its parts build on: `_trials`, `_experiments`, `_snapshots` (the collections),
    `_errors(doing)` (pymongo's exceptions as one StoreError line), `_across_experiments()`. These
    are for the classes `Store` is made of only; tests and benchmarks reach them through
    hyperdist/store/testing.py."""

    def __init__(self, url: str, db: str = "hyperdist", *, timeout_ms: int = 5000, client: Any = None,
                 event_listeners: Sequence[Any] = (), read_only: bool = False) -> None:
        """`read_only`: for viewers (the dashboard), which must work with a read-only user and never
        write, so the indexes are left as they are."""
        self._url = self._worker_url = url
        self.db_name = db
        self._gone: str | None = None  # why retrying is pointless (see give_up)
        self._client = client or self._connect(timeout_ms, event_listeners)
        self._shuffle = random.Random()  # seeded from os.urandom here, so forked clients differ
        self._sightings = Sightings()  # when this client first saw each trial waiting (store/picks.py)
        self._any_index = False  # the index for claims across experiments exists (see _across_experiments)
        try:
            with self._errors("connecting to"):
                self._client.admin.command("ping")
                if client is None and not _RETRY_WRITES.search(url) and _is_secantus(self._client):
                    # SecantusDB, the embedded server, charges each retryable write more the more it
                    # has served, and every protocol step is conditional and repeated by the store
                    # itself (`retry`): off there. A real MongoDB keeps the driver's default (on).
                    self._client.close()
                    self._client = self._connect(timeout_ms, event_listeners, retryWrites=False)
                    # the URL handed to local workers says so, sparing each of them this second handshake
                    self._worker_url = _with_option(url, "retryWrites=false")
            self._db = self._client[db]
            self._experiments = self._db["experiments"]
            self._trials = self._db["trials"]
            self._snapshots = self._db["snapshots"]
            if not read_only:
                self.ensure_indexes()  # also where missing credentials show: ping needs none
        except StoreError:
            if client is None:  # don't leave pymongo's monitor threads behind
                self._client.close()
            raise

    def _connect(self, timeout_ms: int, event_listeners: Sequence[Any], **options: Any) -> Any:
        with self._errors("connecting to"), warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("always")
            made = MongoClient(  # pymongo reconnects by itself after an outage
                self._url, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms, tz_aware=True,
                appname="hyperdist", event_listeners=list(event_listeners), **options,
            )
        # pymongo would ignore a URL option it cannot use (tls=ture: no TLS) with a UserWarning; other
        # warnings raised meanwhile (a ResourceWarning from a collected client) are not about this URL
        about_url = [w for w in warned if w.category is UserWarning and "pymongo" in w.filename]
        for w in warned:
            if w not in about_url:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if about_url:
            made.close()
            raise StoreError(f"invalid MongoDB URL {self.url_redacted!r}: {redact(str(about_url[0].message))}; "
                             "fix or remove the option")
        return made

    @property
    def url(self) -> str:
        """The URL with its credentials: for child processes only, never for messages."""
        return self._url

    @property
    def worker_url(self) -> str:
        """The URL for the workers a command starts itself: `url` and what connecting found out (on
        SecantusDB, retryWrites=false, so they skip the check). Credentials included, like `url`."""
        return self._worker_url

    @property
    def url_redacted(self) -> str:
        return redact(self._url)

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """pymongo's exceptions become one StoreError line, with credentials removed.

        StoreUnavailable marks the ones a retry may cure, so callers (who never import pymongo)
        can tell an outage from a refusal such as failed authentication.
        """
        if self._gone is not None:  # nothing to wait for (see give_up)
            raise StoreUnavailable(self._gone)
        try:
            yield
        except FileNotFoundError as exc:  # a tlsCAFile or tlsCertificateKeyFile named in the URL
            raise StoreError(f"connecting to {self.url_redacted} failed: a file named in the URL cannot be read "
                             f"({exc.strerror or exc}); check its tlsCAFile / tlsCertificateKeyFile paths") from None
        except (InvalidURI, ConfigurationError, ValueError) as exc:
            raise StoreError(f"invalid MongoDB URL {self.url_redacted!r}: {redact(str(exc))}") from None
        except ConnectionFailure as exc:
            raise StoreUnavailable(f"{doing} {self.url_redacted} failed: {_unreachable(exc)}") from None
        except OperationFailure as exc:
            kind = StoreUnavailable if exc.code in _TRANSIENT_CODES else StoreError
            raise kind(f"{doing} {self.url_redacted} failed: {_refused(exc)}") from None
        except PyMongoError as exc:
            raise StoreError(f"{doing} {self.url_redacted} failed: {type(exc).__name__}: "
                             f"{redact(str(exc)).splitlines()[0][:300]}") from None

    @contextmanager
    def time_limit(self, seconds: float) -> Iterator[None]:
        """Store calls inside give up once `seconds` have passed in all (pymongo's client-side
        timeout), each with a StoreError: for cleanup that must not wait on a database that is gone."""
        with pymongo.timeout(seconds):
            yield

    def close(self) -> None:
        """Close the client, and spare the process pymongo's wait for its threads at exit.

        pymongo's exit hook joins every client's monitor threads, which look whether their client
        was closed only between sleeps of 0.5 s: each process took ~0.55 s to exit after its work
        (measured: 0.55 s against 0.06 s without the hook), and `hyperdist search` waits for its
        workers' exits, then its own. The threads are daemons and a closed client needs nothing
        else from the hook, so it is dropped (a pymongo without it is left as it is). Closing tells
        the server to end the client's sessions, which waited out the whole server selection timeout
        (5 s) on a server that is gone: bounded to 2 s (unended sessions expire on the server)."""
        with pymongo.timeout(2.0):
            self._client.close()
        for name in ("pymongo.synchronous.monitor", "pymongo.monitor"):  # pymongo >= 4.9, older
            hook = getattr(sys.modules.get(name), "_shutdown_resources", None)
            if hook is not None:
                atexit.unregister(hook)

    def give_up(self, reason: str) -> None:
        """The server is known to be gone for good (a local server that could not be restarted):
        every operation from now on raises StoreUnavailable(reason) at once, and `retry` stops
        retrying within one backoff step."""
        self._gone = reason

    def retry(self, call: Callable[..., T], *args: Any, timeout: float = 120.0, **kwargs: Any) -> T:
        """Call a store operation, retrying with backoff while the server is unreachable.

        Every protocol step is conditional, so repeating one whose reply was lost is harmless: a
        repeated report or claim simply matches nothing the second time. Only StoreUnavailable is
        retried: a missing experiment or a refused login would fail the same way every time.
        """
        deadline = time.monotonic() + timeout
        delay = 0.2
        while True:
            try:
                return call(*args, **kwargs)
            except StoreUnavailable as exc:
                if self._gone is not None:
                    raise StoreUnavailable(self._gone) from None
                if time.monotonic() + delay > deadline:
                    raise
                log.warning("%s; retrying in %.1f s", exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def ensure_indexes(self) -> None:
        """One index beside `_id`'s: (exp_key, state, tid) serves the claims, the coordinator's reads
        and every read by tid (one per state). A tid is unique through its `_id` (document.trial_key);
        an (exp_key, tid) index of its own cost SecantusDB a fifth of its CPU per trial."""
        with self._errors("creating indexes on"):
            self._trials.create_index([("exp_key", ASCENDING), ("state", ASCENDING), ("tid", ASCENDING)],
                                      name="claim")

    def _across_experiments(self) -> None:
        """The (state, tid) index, for workers that serve every experiment: made when the first one
        asks rather than up front, because each index costs every trial's three writes (on SecantusDB
        one more index took 4-8% more server CPU per trial, docs/store-notes.md)."""
        if not self._any_index:
            with self._errors("creating indexes on"):
                self._trials.create_index([("state", ASCENDING), ("tid", ASCENDING)], name="claim_any")
            self._any_index = True


_RETRY_WRITES = re.compile(r"[?&]retrywrites=", re.IGNORECASE)


def _with_option(url: str, option: str) -> str:
    """`url` with one more `name=value` option (after the hosts, whose part holds no '/' or '?')."""
    rest = url.split("://", 1)[-1]
    return url + ("&" if "?" in rest else "?" if "/" in rest else "/?") + option


def _is_secantus(client: Any) -> bool:
    """Whether the server is SecantusDB: its replica set, known from the handshake, is named
    'secantus', and its buildInfo says so (so a real MongoDB pays no extra command)."""
    names = {sd.replica_set_name for sd in client.topology_description.server_descriptions().values()}
    return "secantus" in names and "secantusVersion" in client.admin.command("buildInfo")


def _unreachable(exc: Exception) -> str:
    """pymongo's server-selection error without its topology dump: the reason per server, and the wait."""
    text = redact(str(exc)).splitlines()[0]
    reason = text.split(", Timeout:")[0].split(" (configured timeouts")[0]
    waited = text.split(", Timeout: ")[1].split(",")[0] if ", Timeout: " in text else None
    try:  # a client-side timeout (Store.time_limit) says how long is left to the last digit
        waited = f"{float(str(waited).rstrip('s')):.1f}s"
    except ValueError:
        pass
    hint = "; is the server running, and are the host and port right?"
    return f"cannot reach the server ({reason[:200]}){' after ' + waited if waited else ''}{hint}"


def _refused(exc: OperationFailure) -> str:
    """The server's own message and code, not its whole reply (cluster time, signatures)."""
    details = exc.details if isinstance(exc.details, dict) else {}
    message = redact(str(details.get("errmsg") or exc))[:300]
    if exc.code == 18:  # AuthenticationFailed
        return f"{message} (code 18): check the user, the password and authSource / authMechanism in the URL"
    return f"{message} (code {exc.code})" if exc.code is not None else message

