"""Loopback servers for tests/test_attack_bindings.py: they record what reaches them.

- :class:`Recording`: an HTTP/1.1 server (plain or TLS) that records every request
  (its raw head and body) and answers by path: ``/echo`` (200 JSON), ``/redirect``
  (``?code=302&to=<url>``), or a route a test installs in ``routes``.
- :class:`Proxy`: a recording forward proxy. An absolute-form request is recorded
  and answered by the proxy itself (it never forwards: what it saw is the point);
  ``CONNECT`` to a loopback address is recorded and tunnelled.

Nothing here resolves a name or connects anywhere but loopback.
"""

from __future__ import annotations

import json
import select
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from _loopback import request_body

Answer = tuple[int, dict[str, str], bytes]
Route = Callable[["Seen"], Answer]


@dataclass
class Seen:
    """One request as it arrived: the request line and head as text, and the body."""

    where: str  # "host:port" the server listens on
    method: str
    target: str
    head: str
    headers: dict[str, str]  # lower-cased names
    body: bytes = b""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.target).query).items()}

    def __repr__(self) -> str:  # never the head: it may hold a token
        return f"Seen({self.method} {self.headers.get('host', self.where)} {self.path})"

    def carries(self, token: str) -> bool:
        """Whether the token is anywhere in what arrived (head or body)."""
        return token in self.head or token.encode() in self.body


def json_answer(status: int, data: Any, **headers: str) -> Answer:
    body = json.dumps(data).encode()
    return status, {"Content-Type": "application/json", **headers}, body


def invalid_token_answer(realm: str = "https://auth.invalid/auth/api/v1/authorize") -> Answer:
    return json_answer(
        401,
        {"error": "invalid_token", "message": "Unauthorized - Token is Invalid or Expired"},
        **{
            "WWW-Authenticate": f'Bearer realm="{realm}", error="invalid_token", '
            'error_description="Invalid/Expired Token"'
        },
    )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        head = self.requestline + "\r\n" + str(self.headers)
        seen = Seen(
            where=self.server.where,
            method=self.command,
            target=self.path,
            head=head,
            headers={k.lower(): v for k, v in self.headers.items()},
        )
        if self.command == "CONNECT":
            self.server.owner.connect(self, seen)
            return
        seen.body = request_body(self)
        with self.server.owner.lock:
            self.server.owner.seen.append(seen)
        status, headers, body = self.server.owner.answer(seen)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = do_CONNECT = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 256
    allow_reuse_address = True
    owner: Any
    where: str


class _Base:
    def __init__(self, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> None:
        self.lock = threading.Lock()
        self.seen: list[Seen] = []
        self.routes: dict[str, Route] = {}
        self._server = _Server((host, 0), _Handler)
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._server.owner = self
        self.host = host
        self.port = self._server.server_address[1]
        self._server.where = f"{host}:{self.port}"
        self.scheme = "https" if tls is not None else "http"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def reset(self) -> None:
        with self.lock:
            self.seen.clear()
        self.routes.clear()
        getattr(self, "aliases", {}).clear()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer(self, seen: Seen) -> Answer:
        raise NotImplementedError

    def connect(self, handler: _Handler, seen: Seen) -> None:
        handler.send_error(405)


class Recording(_Base):
    """An echo/redirect server that records each request."""

    def url(self, path: str = "/echo", host: str | None = None) -> str:
        return f"{self.scheme}://{host or self.host}:{self.port}{path}"

    def origin(self, host: str | None = None) -> str:
        return f"{self.scheme}://{host or self.host}:{self.port}"

    def answer(self, seen: Seen) -> Answer:
        route = self.routes.get(seen.path)
        if route is not None:
            return route(seen)
        if seen.path == "/redirect":
            query = seen.query
            code = int(query.get("code", "302"))
            return code, {"Location": query["to"]}, b""
        return json_answer(200, {"ok": True, "path": seen.path})


def redirect(server: Recording, to: str, code: int = 302, host: str | None = None) -> str:
    """A URL on ``server`` that redirects to ``to``."""
    return server.url(f"/redirect?code={code}&to={quote(to, safe='')}", host=host)


class Proxy(_Base):
    """A forward proxy that records what it is asked; plain http is answered, not forwarded.

    ``aliases``: names (``*.invalid``) whose ``CONNECT`` goes to a loopback port, so a
    client can be shown a host name that resolves nowhere.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        super().__init__(host)
        self.aliases: dict[str, int] = {}

    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def answer(self, seen: Seen) -> Answer:
        return json_answer(200, {"proxied": seen.target})

    def connect(self, handler: _Handler, seen: Seen) -> None:
        with self.lock:
            self.seen.append(seen)
        host, _, port = seen.target.rpartition(":")
        if host in self.aliases:  # a made-up name: tunnel to a loopback port instead
            address = ("127.0.0.1", self.aliases[host])
        elif host.startswith("127.") or host == "localhost":
            address = ("127.0.0.1" if host == "localhost" else host, int(port))
        else:
            handler.send_error(403)
            return
        upstream = socket.create_connection(address)
        handler.send_response(200, "Connection established")
        handler.end_headers()
        handler.wfile.flush()
        client = handler.connection
        sockets = [client, upstream]
        try:
            while True:
                readable, _, _ = select.select(sockets, [], [], 5)
                if not readable:
                    break
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (upstream if sock is client else client).sendall(data)
        except OSError:
            pass
        finally:
            upstream.close()
            handler.close_connection = True


__all__ = [
    "Proxy",
    "Recording",
    "Seen",
    "invalid_token_answer",
    "json_answer",
    "redirect",
]
