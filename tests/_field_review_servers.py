"""Loopback servers for ``test_field_review.py``: a recording service and a recording proxy.

Every server listens on a loopback address only, records each request it receives
(method, request target, headers, body) and answers through a ``route`` the test
gives. The proxy answers plain-http requests itself (it never forwards them) and
tunnels ``CONNECT`` to a loopback target, recording the request line and headers.

Also the worker function that ``ProcessPoolExecutor`` (spawn) imports by name.
"""

from __future__ import annotations

import json
import selectors
import socket
import socketserver
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from _loopback import request_body

Answer = tuple[int, dict[str, str], bytes]


class Seen:
    """One request as a server received it."""

    def __init__(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes):
        self.method = method
        self.target = target
        self.path = target.split("?", 1)[0] if target.startswith("/") else target
        self.headers = headers
        self.body = body

    def header(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def carries(self, token: str) -> bool:
        """Whether any header (Authorization, Cookie, anything) holds ``token``."""
        return any(token in value for _, value in self.headers)

    def __repr__(self) -> str:  # never the headers: they may hold a token
        return f"Seen({self.method} {self.target})"


def echo(seen: Seen, server: Server) -> Answer:
    return 200, {"Content-Type": "text/plain"}, b"ok"


def json_answer(status: int, data: Any, **headers: str) -> Answer:
    return status, {"Content-Type": "application/json", **headers}, json.dumps(data).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        seen = Seen(self.command, self.path, list(self.headers.items()), request_body(self))
        with self.server.lock:
            self.server.records.append(seen)
        status, headers, body = self.server.route(seen, self.server)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

    def do_CONNECT(self) -> None:
        seen = Seen(self.command, self.path, list(self.headers.items()), b"")
        with self.server.lock:
            self.server.records.append(seen)
        host, _, port = self.path.rpartition(":")
        if not self.server.tunnels or host.strip("[]") not in ("localhost", "127.0.0.1", "::1"):
            self.send_response(403)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        with upstream, selectors.DefaultSelector() as selector:
            selector.register(self.connection, selectors.EVENT_READ, upstream)
            selector.register(upstream, selectors.EVENT_READ, self.connection)
            while True:
                for key, _ in selector.select(timeout=10):
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    key.data.sendall(data)


Route = Callable[[Seen, "Server"], Answer]


class Server(ThreadingHTTPServer):
    """A recording HTTP server on a loopback address, in a thread."""

    daemon_threads = True
    block_on_close = False

    def __init__(
        self,
        host: str = "127.0.0.1",
        route: Route = echo,
        *,
        tls: ssl.SSLContext | None = None,
        tunnels: bool = False,
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.records: list[Seen] = []
        self.lock = threading.Lock()
        self.route = route
        self.tls = tls
        self.tunnels = tunnels
        self.host = host
        super().__init__((host, 0), _Handler)
        self.port = self.server_address[1]
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.01})
        self.thread.daemon = True
        self.thread.start()

    def server_bind(self) -> None:  # no getfqdn(): no name lookup of any kind
        socketserver.TCPServer.server_bind(self)
        self.server_name = self.host
        self.server_port = self.server_address[1]

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        if self.tls is not None:
            connection = self.tls.wrap_socket(
                connection, server_side=True, do_handshake_on_connect=False
            )
        return connection, address

    def url(self, path: str = "/", host: str | None = None) -> str:
        scheme = "https" if self.tls is not None else "http"
        name = host or self.host
        if ":" in name and not name.startswith("["):
            name = f"[{name}]"
        return f"{scheme}://{name}:{self.port}{path}"

    def close(self) -> None:
        self.shutdown()
        self.server_close()


def raise_auth_error_in_worker(url: str, token: str) -> None:
    """Run in a spawned worker: a request whose 401 raises ``AuthResponseError``."""
    import requests

    from cave_requests_auth import CAVETokenAuth

    auth = CAVETokenAuth(token=token, raise_on_auth_error=True)
    requests.get(url, auth=auth, timeout=30)
