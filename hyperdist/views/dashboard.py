"""The live dashboard: a small Starlette app serving two pages and the JSON API they poll.

Why this stack: Starlette routes and answers JSON in a few lines and runs the store's blocking reads
in its thread pool; uvicorn serves it; plotly.js comes from the plotly wheel, so a page needs
nothing from the internet. The page script polls the API every few seconds and redraws only when a
trial changed (pages.py). Every request only reads: the store is opened without creating indexes,
and no route writes.

Routes: `/` (experiments), `/experiments/<key>`, `/api/experiments`, `/api/experiments/<key>`
(`?since=<version>`), `/api/experiments/<key>/trials/<tid>`, `/api/experiments/<key>/contour?x=&y=`,
`/static/...`. The page sends `<key>` percent-encoded as one path segment; the API routes read the
raw path, because the server decodes `%2F` to `/` before routing (a key may be `team/run1`).
"""
from __future__ import annotations

import html
import json
import logging
import threading
from typing import Any, Callable
from urllib.parse import quote, unquote

from hyperdist.errors import ExperimentNotFound, HyperdistError, StoreUnavailable, redact
from hyperdist.views.data import ExperimentView, jsonable
from hyperdist.views.pages import STATIC, contour_payload, dashboard_page, experiment_payload, plotly_js
from hyperdist.views.summary import experiment_summaries

log = logging.getLogger("hyperdist.dashboard")
LOOPBACK = ("127.0.0.1", "localhost")
_STATIC_FILES = {"app.js": "text/javascript", "app.css": "text/css"}


def _starlette() -> Any:
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise HyperdistError("the dashboard needs starlette and uvicorn: pip install 'hyperdist[dashboard]'") from None


def create_app(store: Any, poll_seconds: float = 2.0, host: str = "127.0.0.1",
               reopen: Callable[[], Any] | None = None) -> Any:
    """The ASGI app over an open store. Bound to loopback, it answers only requests addressed to a
    loopback name, so a web page elsewhere cannot read it through a rebound DNS name. `reopen`
    gives a fresh store when the server stopped answering (the local server, stopped by the search
    that started it), so a dashboard opened during a search still works after it."""
    _starlette()
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.requests import Request
    from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    plotly_path = plotly_js()
    current, reopening = [store], threading.Lock()

    def read(call: Callable[[Any], Any]) -> Any:
        """call(store), once more on a reopened store if the server stopped answering."""
        used = current[0]
        try:
            return call(used)
        except StoreUnavailable:
            if reopen is None:
                raise
        with reopening:
            if current[0] is used:
                current[0] = reopen()
                used.close()
        return call(current[0])

    def answer(call: Callable[[Any], Any]) -> Response:
        """JSON, or the error as one line with the status that fits it."""
        try:
            return JSONResponse(read(call))
        except ExperimentNotFound as exc:
            return JSONResponse({"error": redact(str(exc))}, status_code=404)
        except StoreUnavailable as exc:
            return JSONResponse({"error": redact(str(exc))}, status_code=503)
        except HyperdistError as exc:
            return JSONResponse({"error": redact(str(exc))}, status_code=400)
        except Exception as exc:  # a bug or a document this version cannot read: say which, keep serving
            log.exception("dashboard request failed")
            return JSONResponse({"error": redact(f"the dashboard failed on this request: {type(exc).__name__}: {exc}")},
                                status_code=500)

    def index(request: Request) -> Response:
        return HTMLResponse(dashboard_page("index", None, poll_seconds, current[0].url_redacted))

    def experiment(request: Request) -> Response:
        key = request.path_params["key"]
        found = answer(lambda s: s.get_experiment(key) and None)
        if found.status_code != 200:
            message = json.loads(bytes(found.body))["error"]
            return HTMLResponse(f"<p>{html.escape(message)}. <a href='/'>All experiments</a></p>",
                                status_code=found.status_code)
        return HTMLResponse(dashboard_page("experiment", key, poll_seconds, current[0].url_redacted))

    def list_api(request: Request) -> Response:
        return answer(lambda s: jsonable(experiment_summaries(s)))

    def experiment_api(request: Request) -> Response:
        """One experiment, one of its trials or a contour, told apart on the raw (still encoded) path."""
        raw = request.scope.get("raw_path") or quote(request.scope["path"]).encode()
        rest = raw.decode("utf-8", "replace").split("/api/experiments/", 1)[-1].split("/")
        if len(rest) == 3 and rest[1] == "trials" and rest[2].isascii() and rest[2].isdigit():
            return trial_api(unquote(rest[0]), int(rest[2]))
        if len(rest) == 2 and rest[1] == "contour":
            return contour_api(unquote(rest[0]), request)
        key = request.path_params["key"]  # the key itself, even when a client sent its "/" unencoded
        since = request.query_params.get("since")
        return answer(lambda s: experiment_payload(ExperimentView.from_store(s, key), since))

    def trial_api(key: str, tid: int) -> Response:
        def detail(s: Any) -> dict:
            found = ExperimentView.from_store(s, key).detail(tid)
            if found is None:
                raise ExperimentNotFound(f"experiment {key!r} has no trial {tid}")
            return jsonable(found)
        return answer(detail)

    def contour_api(key: str, request: Request) -> Response:
        q = request.query_params
        return answer(lambda s: contour_payload(ExperimentView.from_store(s, key), q.get("x", ""), q.get("y", "")))

    def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name == "plotly.min.js":
            return FileResponse(plotly_path, media_type="text/javascript")
        if name not in _STATIC_FILES:
            return JSONResponse({"error": f"no static file {name!r}"}, status_code=404)
        return Response((STATIC / name).read_text(), media_type=_STATIC_FILES[name])

    routes = [Route("/", index), Route("/experiments/{key:path}", experiment),
              Route("/api/experiments", list_api), Route("/api/experiments/{key:path}", experiment_api),
              Route("/static/{name}", static)]
    hosts = list(LOOPBACK) if host in LOOPBACK else ["*"]
    return Starlette(routes=routes, middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=hosts)])


def serve(app: Any, sock: Any) -> None:
    """Run the app on an already bound socket (so the caller knows the port before it starts)."""
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])

