"""MongoDB URLs as users write them: standard `mongodb://` and `mongodb+srv://`, and Hyperopt's
`mongo://host:port/db/jobs`. Messages never echo a URL (it may hold a password)."""
from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from hyperdist.errors import HyperdistError


def parse_url(url: str, db: str | None = None) -> tuple[str, str]:
    """(URL for pymongo, database name): the database from `db`, else the URL's path, else 'hyperdist'."""
    scheme = url.split("://", 1)[0] if isinstance(url, str) and "://" in url else ""
    if scheme not in ("mongo", "mongodb", "mongodb+srv"):
        shown = scheme if scheme.isalnum() else "none"
        raise HyperdistError(f"a MongoDB URL must start with mongodb:// or mongodb+srv:// (its scheme is {shown!r}); "
                             "expected mongodb://host:port/db (credentials, when the server needs them, go before "
                             "the host as USER:PASSWORD@)")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise HyperdistError(f"the MongoDB URL cannot be parsed: {exc}") from None
    path = [p for p in parts.path.split("/") if p]
    name = db or (path[0] if path else "hyperdist")
    if parts.scheme == "mongo":
        return urlunsplit(("mongodb", parts.netloc, "", parts.query, "")), name
    return url, name
