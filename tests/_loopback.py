"""The tests' one recording loopback server, and the worker a spawned process runs.

Standard library only, so that a worker process that imports this module stays light.

:class:`Server` listens on a loopback address (``127.0.0.x``, ``::1``), plain or TLS, in a
thread. It records every request in ``server.seen`` (a :class:`Seen` each) and answers
through ``routes`` (a dict by path), else its ``route`` function, else (or when either
gives None) the built-in routes:

- ``/echo``: 200, JSON of the headers and body; anything else: 200 ``{"ok", "path"}``;
- ``/redirect?status=&to=`` (:meth:`Server.redirect` builds one);
- ``/401``: 401 ``invalid_token``; ``/auth``: 200 for the ``accepted`` tokens, else 401;
- ``/403-echo``: a 403 quoting ``Authorization`` (``/403-echo-accepted``: 401 for a token
  not accepted); ``/403-permission-echo``: a CAVE 403 quoting the token.

``on_hit(seen)`` runs before each answer; the next ``drop`` requests get their connection
closed unanswered. A request in absolute form is answered, never forwarded; with
``proxy=True``, ``CONNECT`` to a loopback address, or to a name in ``aliases`` (a port on
127.0.0.1), is tunnelled. Nothing here resolves a name or leaves loopback.
"""

from __future__ import annotations

import ipaddress
import json
import selectors
import socket
import socketserver
import ssl
import sys
import threading
from collections.abc import Collection
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional
from urllib.parse import parse_qsl, quote, urlsplit

__all__ = ["Seen", "Server", "invalid_token_answer", "json_answer", "request_body"]

Answer = tuple[int, dict[str, str], bytes]
Route = Callable[["Seen"], Optional[Answer]]  # None: the built-in routes answer
REALM = "https://auth.invalid/auth/api/v1/authorize"
INVALID_401 = {"error": "invalid_token", "message": "Unauthorized - Token is Invalid or Expired"}


def json_answer(status: int, data: Any, **headers: str) -> Answer:
    return status, {"Content-Type": "application/json", **headers}, json.dumps(data).encode()


def invalid_token_answer(realm: str = REALM) -> Answer:
    """A CAVE 401 ``invalid_token``, its realm naming the auth server."""
    challenge = f'Bearer realm="{realm}", error="invalid_token"'
    challenge += ', error_description="Invalid/Expired Token"'
    return json_answer(401, INVALID_401, **{"WWW-Authenticate": challenge})


def request_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The body of the request ``handler`` is answering: chunked, or of Content-Length."""
    if "chunked" in handler.headers.get("Transfer-Encoding", "").lower():
        chunks: list[bytes] = []
        while True:
            size = int(handler.rfile.readline(65537).split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline(65537)
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


@dataclass(repr=False)
class Seen:
    """One request as it arrived. ``headers`` looks a name up in any case (``get``,
    ``in``, ``get_all``) and keeps every header in order (``items()``)."""

    method: str
    target: str  # as on the request line: /path?query, an absolute URL, or host:port
    headers: Message
    body: bytes = b""
    client_port: int = 0  # two requests on one kept-alive connection share it

    @property
    def path(self) -> str:
        if self.target.startswith("/") or self.method == "CONNECT":
            return self.target.partition("?")[0]
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.target).query))

    @property
    def head(self) -> str:
        """The request line and the header lines, as text."""
        return f"{self.method} {self.target}\r\n{self.headers}"

    @property
    def authorization(self) -> str | None:
        return self.headers.get("Authorization")

    @property
    def cookie(self) -> str | None:
        return self.headers.get("Cookie")

    def carries(self, token: str) -> bool:
        """Whether ``token`` is anywhere in what arrived: request line, headers or body."""
        return token in self.head or token.encode() in self.body

    def __repr__(self) -> str:  # never the headers nor the query: they may hold a token
        return f"Seen({self.method} {self.headers.get('Host', '')} {self.path})"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a re-send on the same connection is visible
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed ACK
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        server, connect = self.server, self.command == "CONNECT"
        body = b"" if connect else request_body(self)
        seen = Seen(self.command, self.path, self.headers, body, self.client_address[1])
        with server.lock:
            server.seen.append(seen)
            dropped = server.drop > 0
            server.drop -= dropped
        if dropped:  # no answer: the client sees the connection closed
            self.close_connection = True
            return
        if server.on_hit is not None:
            server.on_hit(seen)
        if connect:
            self._tunnel(seen)
        else:
            self._send(*server.answer(seen))

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_CONNECT = _handle

    def _send(self, status: int, headers: dict[str, str], content: bytes) -> None:
        self.send_response(status, headers.get(":reason"))  # a reason phrase of the test's
        for name, value in ((k, v) for k, v in headers.items() if k != ":reason"):
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(content)

    def _tunnel(self, seen: Seen) -> None:
        """Relay bytes both ways to a loopback target; anything else is refused (403)."""
        host, _, port = seen.target.rpartition(":")
        host = host.strip("[]")
        if host in self.server.aliases:
            host, port = "127.0.0.1", str(self.server.aliases[host])
        try:
            address = ipaddress.ip_address("127.0.0.1" if host == "localhost" else host)
        except ValueError:
            address = None
        if not (self.server.proxy and address and address.is_loopback and port.isdigit()):
            return self._send(403, {}, b"")
        upstream = socket.create_connection((str(address), int(port)), timeout=10)
        self.send_response(200, "Connection established")
        self.end_headers()
        self.close_connection = True
        with upstream, selectors.DefaultSelector() as selector:
            selector.register(self.connection, selectors.EVENT_READ, upstream)
            selector.register(upstream, selectors.EVENT_READ, self.connection)
            while events := selector.select(timeout=10):
                for key, _ in events:
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    key.data.sendall(data)


class Server(ThreadingHTTPServer):
    """A recording HTTP/1.1 server on a loopback address, in a thread (see the module)."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 256

    def __init__(
        self,
        host: str = "127.0.0.1",
        route: Route | None = None,
        *,
        tls: ssl.SSLContext | None = None,
        proxy: bool = False,
        accepted: Collection[str] = (),
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.host, self.route, self.tls, self.proxy = host, route, tls, proxy
        self.accepted = accepted  # the tokens /auth and /403-echo-accepted take
        self.scheme = "https" if tls is not None else "http"
        self.lock = threading.Lock()
        self.seen: list[Seen] = []
        self.routes: dict[str, Route] = {}
        self.aliases: dict[str, int] = {}  # CONNECT name -> port on 127.0.0.1
        self.on_hit: Callable[[Seen], None] | None = None
        self.drop = 0  # how many of the next requests get no answer, their connection closed
        super().__init__((host, 0), _Handler)
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, args=(0.01,), daemon=True).start()

    def server_bind(self) -> None:  # no getfqdn(): no name lookup of any kind
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.host, self.server_address[1]

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        if self.tls is not None:  # the handshake happens in the request's thread
            connection = self.tls.wrap_socket(
                connection, server_side=True, do_handshake_on_connect=False
            )
        return connection, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a client that went away is no news
            super().handle_error(request, client_address)

    def url(self, path: str = "/echo", host: str | None = None) -> str:
        name = host or self.host
        if ":" in name and not name.startswith("["):
            name = f"[{name}]"
        return f"{self.scheme}://{name}:{self.port}{path}"

    def origin(self, host: str | None = None) -> str:
        return self.url("", host)

    def redirect(self, to: str, status: int = 302, host: str | None = None) -> str:
        """A URL on this server that answers ``status`` with ``Location: to``."""
        return self.url(f"/redirect?status={status}&to={quote(to, safe='')}", host)

    def answer(self, seen: Seen) -> Answer:
        route = self.routes.get(seen.path) or self.route
        answer = route(seen) if route is not None else None
        if answer is not None:
            return answer
        path, authorization = seen.path, seen.authorization or ""
        token = authorization.removeprefix("Bearer ")
        if path == "/redirect":
            return int(seen.query.get("status", "302")), {"Location": seen.query["to"]}, b""
        refusing = path in ("/auth", "/403-echo-accepted") and token not in self.accepted
        if path == "/401" or refusing:
            return invalid_token_answer()
        if path == "/auth":
            return json_answer(200, {"token": "accepted", "body": seen.body.decode("latin-1")})
        if path in ("/403-echo", "/403-echo-accepted"):
            text = f"Forbidden: the key {authorization} has no access".encode()
            return 403, {"Content-Type": "text/plain"}, text
        if path == "/403-permission-echo":
            data = {"required_permission": token, "auth_dataset": token}
            message = f"Missing permission: {token} for dataset {token}"
            refusal = {"error": "missing_permission", "message": message, "data": data}
            return json_answer(403, refusal)
        if path != "/echo":
            return json_answer(200, {"ok": True, "path": path})
        headers, body = dict(seen.headers.items()), seen.body.decode("latin-1")
        return json_answer(200, {"ok": True, "path": path, "headers": headers, "body": body})

    def reset(self) -> None:
        """Forget what was seen and what a test installed (routes, aliases, on_hit, drop)."""
        with self.lock:
            self.seen.clear()
            self.drop = 0
        self.routes.clear()
        self.aliases.clear()
        self.on_hit = None

    def close(self) -> None:
        self.shutdown()
        self.server_close()


def raise_auth_error_in_worker(url: str, token: str) -> None:
    """Run in a spawned worker: a request whose 401 raises ``AuthResponseError``."""
    import requests

    from cave_requests_auth import CAVETokenAuth

    auth = CAVETokenAuth(token=token, raise_on_auth_error=True)
    requests.get(url, auth=auth, timeout=30)
