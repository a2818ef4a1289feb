"""What the tests' loopback servers share: reading a request's body. Standard library only,
so that a worker process that imports a server module stays light."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler

__all__ = ["request_body"]


def request_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The body of the request ``handler`` is answering: chunked, or of Content-Length."""
    if "chunked" in handler.headers.get("Transfer-Encoding", "").lower():
        chunks = []
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
