"""Helpers for the adversarial tests (test_security*.py, test_leaks.py).

- :class:`Recorder`: a small HTTP/1.1 server on any loopback address, in this
  process, that records every request it answers (path, headers, body, and the
  client's port: two requests on one kept-alive connection share it) and can be
  told to answer 401 ``invalid_token``, echo the token back in a 403, or
  redirect. Unlike the werkzeug ``service`` it is raw ``http.server``, so a
  test controls every byte of the answer.
- :class:`AuditLog`: what ``sys.addaudithook`` sees while a test runs: files
  opened, sockets connected, names resolved. An audit hook cannot be removed,
  so one hook is installed once and does nothing while no test listens.
- Writer and reader functions for the multiprocessing tests (importable, for
  the ``spawn`` start method).

Fixtures made from these are imported explicitly by the test modules.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, NamedTuple
from urllib.parse import parse_qs, urlsplit

import pytest

from conftest import OTHER_TOKEN, VALID_TOKEN

ACCEPTED_TOKENS = (VALID_TOKEN, OTHER_TOKEN)
REALM = 'Bearer realm="https://auth.example.invalid/sticky_auth/api/v1/authorize"'


class Hit(NamedTuple):
    """One request a :class:`Recorder` answered."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int

    @property
    def authorization(self) -> str | None:
        return self.headers.get("Authorization")

    @property
    def cookie(self) -> str | None:
        return self.headers.get("Cookie")


def _json(status: int, data: Any, extra: dict[str, str] | None = None) -> tuple[int, dict, bytes]:
    return status, {"Content-Type": "application/json", **(extra or {})}, json.dumps(data).encode()


INVALID_TOKEN_ANSWER = {
    "error": "invalid_token",
    "message": "Unauthorized - Token is Invalid or Expired",
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a re-send on the same connection is visible
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        body = self._read_body()
        hit = Hit(
            self.command,
            self.path,
            {name: value for name, value in self.headers.items()},
            body,
            self.client_address[1],
        )
        recorder = self.server.recorder
        with recorder.lock:
            recorder.hits.append(hit)
        status, headers, content = recorder.answer(hit)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    do_GET = do_POST = do_PUT = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    recorder: Recorder


class _Server6(_Server):
    address_family = socket.AF_INET6


class Recorder:
    """A recording HTTP/1.1 server on ``host`` (``127.0.0.1``, ``127.0.0.2``, ``::1``).

    Routes: ``/echo`` (200, the headers and body as JSON); ``/401`` (401
    ``invalid_token``); ``/auth`` (200 for :data:`ACCEPTED_TOKENS`, else 401
    ``invalid_token``); ``/403-echo`` (a plain 403 whose text quotes the
    ``Authorization`` header); ``/403-echo-accepted`` (the same for accepted tokens,
    else 401 ``invalid_token``); ``/403-permission-echo`` (a CAVE 403
    ``missing_permission`` whose fields quote it); ``/redirect?status=&to=``.
    ``on_hit`` is called with each hit before it is answered.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.hits: list[Hit] = []
        self.lock = threading.Lock()
        self.on_hit: Callable[[Hit], None] | None = None
        server_class = _Server6 if ":" in host else _Server
        self._server = server_class((host, 0), _Handler)
        self._server.recorder = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str = "/echo", host: str | None = None) -> str:
        name = host or (f"[{self.host}]" if ":" in self.host else self.host)
        return f"http://{name}:{self.port}{path}"

    def redirect(self, to: str, status: int = 302, host: str | None = None) -> str:
        from urllib.parse import quote

        return self.url(f"/redirect?status={status}&to={quote(to, safe='')}", host)

    def answer(self, hit: Hit) -> tuple[int, dict[str, str], bytes]:
        if self.on_hit is not None:
            self.on_hit(hit)
        parts = urlsplit(hit.path)
        authorization = hit.authorization or ""
        token = authorization.removeprefix("Bearer ")
        if parts.path == "/echo":
            return _json(200, {"headers": hit.headers, "body": hit.body.decode("latin-1")})
        refusing = parts.path in ("/auth", "/403-echo-accepted") and token not in ACCEPTED_TOKENS
        if parts.path == "/401" or refusing:
            return _json(401, INVALID_TOKEN_ANSWER, {"WWW-Authenticate": REALM})
        if parts.path == "/auth":
            return _json(200, {"token": "accepted", "body": hit.body.decode("latin-1")})
        if parts.path in ("/403-echo", "/403-echo-accepted"):
            text = f"Forbidden: the key {authorization} has no access".encode()
            return 403, {"Content-Type": "text/plain"}, text
        if parts.path == "/403-permission-echo":
            return _json(
                403,
                {
                    "error": "missing_permission",
                    "message": f"Missing permission: {token} for dataset {token}",
                    "data": {"required_permission": token, "auth_dataset": token},
                },
            )
        if parts.path == "/redirect":
            query = parse_qs(parts.query)
            return int(query["status"][0]), {"Location": query["to"][0]}, b""
        return 404, {"Content-Type": "text/plain"}, b"not found"

    def clear(self) -> None:
        with self.lock:
            self.hits.clear()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@pytest.fixture(scope="session")
def _recorders() -> Iterator[dict[str, Recorder]]:
    made: dict[str, Recorder] = {}
    yield made
    for recorder in made.values():
        recorder.close()


def _recorder_on(made: dict[str, Recorder], host: str) -> Recorder:
    if host not in made:
        made[host] = Recorder(host)
    made[host].clear()
    made[host].on_hit = None
    return made[host]


@pytest.fixture
def recorder(_recorders: dict[str, Recorder]) -> Recorder:
    """A :class:`Recorder` on 127.0.0.1 (another port than ``service``), cleared."""
    return _recorder_on(_recorders, "127.0.0.1")


@pytest.fixture
def recorder_on(_recorders: dict[str, Recorder]) -> Callable[[str], Recorder]:
    """A :class:`Recorder` on a loopback address of the test's choice, cleared."""
    return lambda host: _recorder_on(_recorders, host)


# -- audit events ------------------------------------------------------------------------

_listeners: list[AuditLog] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _listeners and (event == "open" or event.startswith("socket.")):
        for listener in list(_listeners):
            listener.events.append((event, args, threading.get_ident()))


_HOOKED = "_cave_security_audit_hook_installed"
if not getattr(sys, _HOOKED, False):
    sys.addaudithook(_audit)
    setattr(sys, _HOOKED, True)


class AuditLog:
    """Audit events (``open``, ``socket.*``) seen while it listens."""

    def __init__(self) -> None:
        self.events: list[tuple[str, tuple[Any, ...], int]] = []
        self.thread = threading.get_ident()

    def opened(self, under: Path) -> list[str]:
        """Paths opened under ``under`` (by any thread), absolute."""
        found = []
        for event, args, _ in list(self.events):
            if event != "open" or isinstance(args[0], int):
                continue
            path = os.path.abspath(os.fsdecode(args[0]))
            if path.startswith(str(under) + os.sep):
                found.append(path)
        return found

    def network(self) -> list[tuple[str, tuple[Any, ...]]]:
        """Name resolutions and connections made by the test's own thread."""
        return [
            (event, args)
            for event, args, thread in list(self.events)
            if thread == self.thread
            and event in ("socket.getaddrinfo", "socket.connect", "socket.gethostbyname")
        ]


@pytest.fixture
def audit() -> Iterator[AuditLog]:
    log = AuditLog()
    _listeners.append(log)
    yield log
    _listeners.remove(log)


# -- processes -----------------------------------------------------------------------------


def save_keys(environment: dict[str, str], process: int, count: int, start: Any) -> None:
    """A writer process: ``count`` saves of different keys into the default file."""
    os.environ.update(environment)
    from cave_requests_auth import save_token

    start.wait(30)
    for number in range(count):
        save_token(VALID_TOKEN, token_key=f"k{process}_{number}", write_server_file=False)


def read_until(path: str, stop: Any, results: Any) -> None:
    """A reader process: read ``path`` until ``stop``.

    Reports ``(reads, bad reads, examples of bad reads, distinct key counts seen,
    times the key count went down)``: writers only add keys, so a reader that
    sees fewer keys than before has seen a lost update.
    """
    reads = bad = shrank = 0
    examples: list[str] = []
    sizes: set[int] = set()
    last = 0
    while not stop.is_set():
        try:
            with open(path, "rb") as file:
                raw = file.read()
        except FileNotFoundError:
            bad += 1  # the file is replaced, never removed
            continue
        reads += 1
        try:
            data = json.loads(raw)
            good = isinstance(data, dict) and bool(data)
            good = good and all(value == VALID_TOKEN for value in data.values())
        except ValueError:
            good = False
        if not good:
            bad += 1
            if len(examples) < 3:
                examples.append(f"{len(raw)} bytes")
            continue
        sizes.add(len(data))
        shrank += len(data) < last
        last = len(data)
    results.put((reads, bad, examples, len(sizes), shrank))
