"""The console's HTTP server: the page, one JSON snapshot per region, and queries through ``tap query``'s guard.

It listens on 127.0.0.1 only and answers only requests addressed to that host (no DNS rebinding). Every API call
must carry the console's session token (made at start, in the address it prints) in ``X-Tap-Console``: another
site's page can neither know it nor send that header without a CORS preflight, which this server never grants; a
request a browser marks as coming from another site is refused too. A refused request closes its connection, so
its body can never be read as a next request. It changes nothing anywhere: every AWS call it makes is a read.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from typing import Any
from urllib.parse import urlsplit

from analytics_platform.console.snapshot import PartCache
from analytics_platform.targeting.region_target import RegionTarget

#: The header a query request must carry (see the module docstring).
QUERY_HEADER = "X-Tap-Console"
MAX_BODY = 64 * 1024


@dataclass(frozen=True)
class ConsoleSource:
    """Where the console reads: the environment's name, local or AWS, and a target per region."""

    environment: str
    local: bool
    regions: Sequence[str]
    target: Callable[[str], RegionTarget]


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return str(value)


class ConsoleHandler(BaseHTTPRequestHandler):
    """One request; ``server.source`` is the :class:`ConsoleSource`."""

    server: ConsoleServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: the terminal shows the console's address, not every request

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        if status >= HTTPStatus.BAD_REQUEST:  # its body may be unread: never parse it as a next request
            self.close_connection = True
        self.send_response(status)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                         "script-src 'self' 'unsafe-inline'; frame-ancestors 'none'")  # fmt: skip
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, document: Any) -> None:
        self._send(status, json.dumps(document, default=_plain, allow_nan=False).encode(), "application/json")

    def _host_ok(self) -> bool:
        host = (self.headers.get("Host") or "").lower()
        port = self.server.server_address[1]
        return host in {f"127.0.0.1:{port}", f"localhost:{port}"}

    def _api_ok(self) -> bool:
        """The console's own page: its token, and no browser saying the request comes from another site."""
        token = self.headers.get(QUERY_HEADER) or ""
        site = self.headers.get("Sec-Fetch-Site")
        return secrets.compare_digest(token, self.server.token) and site in (None, "same-origin", "none")

    def do_GET(self) -> None:
        if not self._host_ok():
            self._json(HTTPStatus.FORBIDDEN, {"error": "this console answers http://127.0.0.1 only"})
            return
        path = urlsplit(self.path).path
        source = self.server.source
        if path.startswith("/api/") and not self._api_ok():
            self._json(HTTPStatus.FORBIDDEN, {"error": f"the console's own page only ({QUERY_HEADER})"})
            return
        if path in {"/", "/index.html"}:
            page = files("analytics_platform.console").joinpath("page.html").read_bytes()
            self._send(HTTPStatus.OK, page, "text/html; charset=utf-8")
        elif path == "/api/overview":
            self._json(HTTPStatus.OK, {"environment": source.environment, "local": source.local,
                                       "regions": list(source.regions)})  # fmt: skip
        elif path.startswith("/api/regions/") and path.removeprefix("/api/regions/") in source.regions:
            from analytics_platform.console.snapshot import region_snapshot

            region = path.removeprefix("/api/regions/")
            try:
                self._json(HTTPStatus.OK, region_snapshot(source.target(region), cache=self.server.parts))
            except Exception as error:  # the region cannot even be resolved: say why
                self._json(HTTPStatus.BAD_GATEWAY, {"region": region, "error": f"{type(error).__name__}: {error}"})
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such page: {path}"})

    def do_POST(self) -> None:
        if not self._host_ok() or not self._api_ok():
            self._json(HTTPStatus.FORBIDDEN, {"error": f"queries need the console's own page ({QUERY_HEADER})"})
            return
        if urlsplit(self.path).path != "/api/query":
            self._json(HTTPStatus.NOT_FOUND, {"error": "no such endpoint"})
            return
        text = self.headers.get("Content-Length") or ""
        length = int(text) if text.isdigit() and "Transfer-Encoding" not in self.headers else 0
        if not 0 < length <= MAX_BODY:
            self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": f"a query request is 1 to {MAX_BODY} bytes"})
            return
        try:
            request = json.loads(self.rfile.read(length))
            region, sql = str(request["region"]), str(request["sql"])
        except (ValueError, KeyError, TypeError):
            self._json(HTTPStatus.BAD_REQUEST, {"error": 'send {"region": ..., "sql": ...}'})
            return
        status, document = run_console_query(self.server.source, region, sql)
        self._json(status, document)


#: Rows of a query result the page shows (a browser table of millions of rows would hang the tab); the total is
#: said, and ``tap query`` gives them all.
CONSOLE_ROWS = 1000


def run_console_query(source: ConsoleSource, region: str, sql: str) -> tuple[int, dict[str, Any]]:
    """``(HTTP status, document)`` of one query in one region, through ``tap query``'s guard."""
    from analytics_platform.analytics.commands import run_query
    from analytics_platform.analytics.guard import QueryRefusedError
    from analytics_platform.analytics.tables import CatalogLocationError

    if region not in source.regions:
        return HTTPStatus.BAD_REQUEST, {"error": f"{region!r} is not a region of {source.environment}"}
    try:
        result = run_query(source.target(region), sql)
    except (QueryRefusedError, CatalogLocationError) as error:
        return HTTPStatus.BAD_REQUEST, {"refused": True, "error": f"refused: {error}"}
    except Exception as error:  # a query error (unknown column, ...) is the user's to read
        return HTTPStatus.BAD_REQUEST, {"refused": False, "error": f"{type(error).__name__}: {error}"}
    rows = result.plain_rows()
    return HTTPStatus.OK, {"region": region, "engine": result.engine, "columns": result.columns,
                           "rows": rows[:CONSOLE_ROWS], "total_rows": len(rows)}  # fmt: skip


class ConsoleServer(ThreadingHTTPServer):
    """The console on ``127.0.0.1:port`` (0: a free port)."""

    daemon_threads = True

    def __init__(self, source: ConsoleSource, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), ConsoleHandler)
        self.source = source
        #: The session token every API call carries (the page reads it from its address).
        self.token = secrets.token_urlsafe(24)
        #: Snapshot parts kept between refreshes (the datasets part, which reads every SUCCEEDED job).
        self.parts = PartCache()

    @property
    def url(self) -> str:
        """The page's address, with the session token."""
        return f"http://127.0.0.1:{self.server_address[1]}/?token={self.token}"

    def start(self) -> threading.Thread:
        """Serve in a background thread (tests); :meth:`shutdown` stops it."""
        thread = threading.Thread(target=self.serve_forever, daemon=True)
        thread.start()
        return thread


__all__ = ["QUERY_HEADER", "ConsoleServer", "ConsoleSource", "run_console_query"]
