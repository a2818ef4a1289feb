"""What goes on the wire, as values: the headers of a token, the CAVE JSON error. No I/O.

Shared by :mod:`.core` (which decides) and :mod:`.refusals` (which explains).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from .tokens import TokenSource

__all__ = [
    "COOKIE_NAME",
    "MAX_ERROR_BODY",
    "Attachment",
    "ProxyOf",
    "bearer_of",
    "error_object",
    "merge_cookie",
    "no_proxy",
]

COOKIE_NAME = "middle_auth_token"
MAX_ERROR_BODY = 64 * 1024
"""Bytes of an answer read to find CAVE's JSON error."""

ProxyOf = Callable[[str], "str | None"]
"""For a URL: the proxy that would see the request (``None``: a direct connection).

A CONNECT tunnel for ``https`` is no such proxy: it sees only encrypted bytes.
The core asks only for plain ``http``, and for ``https`` where a binding says
it forwards ``https`` through a proxy.
"""


def no_proxy(url: str) -> str | None:
    """A direct connection, as urllib3's ``PoolManager`` makes."""
    return None


class Attachment:
    """What goes on a request to one origin: the token's source and its headers.

    ``source`` is ``None`` where no token was found and none was required.
    ``direct_only``: plain http, not to be sent where a proxy would see it (:data:`ProxyOf`).
    """

    __slots__ = ("cookie", "direct_only", "header", "server_address", "source")

    def __init__(
        self,
        source: TokenSource | None,
        server_address: str | None,
        *,
        cookie: bool = False,
        direct_only: bool = False,
    ) -> None:
        self.source = source
        self.server_address = server_address
        self.header = None if source is None else f"Bearer {source.token}"
        self.cookie = None if source is None or not cookie else f"{COOKIE_NAME}={source.token}"
        self.direct_only = direct_only

    def headers(self, existing_cookie: str | None = None) -> dict[str, str]:
        """``Authorization`` (and ``Cookie``, merged with ``existing_cookie``) to set."""
        if self.header is None:
            return {}
        if self.cookie is None:
            return {"Authorization": self.header}
        return {"Authorization": self.header, "Cookie": merge_cookie(existing_cookie, self.cookie)}

    def __repr__(self) -> str:
        return f"Attachment(source={self.source!r})"


def merge_cookie(existing: str | None, cookie: str) -> str:
    """A ``Cookie`` header value with ``cookie`` replacing any ``middle_auth_token``."""
    if not existing:
        return cookie
    kept = [
        part.strip()
        for part in existing.split(";")
        if part.strip() and part.split("=", 1)[0].strip() != COOKIE_NAME
    ]
    return "; ".join([*kept, cookie])


def error_object(content_type: str, body: bytes) -> dict[str, Any] | None:
    """The JSON error object of a CAVE answer (``{"error": code, ...}``), or ``None``."""
    if "json" not in content_type.lower() or len(body) > MAX_ERROR_BODY:
        return None
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return data
    return None


def bearer_of(authorization: str | bytes | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` value, whoever set it; else ``None``."""
    if isinstance(authorization, bytes):
        authorization = authorization.decode("latin-1")
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip() or None
    return None
