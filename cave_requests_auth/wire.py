"""What goes on the wire, as values: a token's headers, proxies, the CAVE JSON error. No I/O.

Shared by :mod:`.core` (which decides), :mod:`.refusals` (which explains) and
the bindings (which translate).
"""

from __future__ import annotations

import copy
import json
import os
from typing import TYPE_CHECKING, Any, Callable

from requests.utils import get_environ_proxies, select_proxy

from .tokens import mask_token
from .urls import origin_key, same_origin

if TYPE_CHECKING:
    from .tokens import TokenSource

__all__ = [
    "COOKIE_NAME", "MAX_ERROR_BODY", "PROGRAMMATIC", "Attachment", "Chain", "ProxyOf",
    "bearer_of", "drop_cookie", "environment_proxy", "error_object", "merge_cookie",
    "no_proxy",
]  # fmt: skip

COOKIE_NAME = "middle_auth_token"
PROGRAMMATIC = ("X-Requested-With", "XMLHttpRequest")
"""Marks a request as a program's: a CAVE service then answers a missing token with
its JSON ``401 no_token``, not a redirect to a login page."""
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


def environment_proxy(url: str) -> str | None:
    """The environment's proxy requests would send a plain ``http`` request to ``url`` through.

    Exactly as requests applies them (``NO_PROXY`` included); the environment is
    scanned first, since requests' own lookup costs tens of microseconds.
    """
    for name in os.environ:
        if name[-6:].lower() == "_proxy":
            return select_proxy(url, get_environ_proxies(url))
    return None


class Chain:
    """One request and its redirect hops: where it began, what it got, whether it left.

    A binding makes one per request it sends (:meth:`.core.Credentials.start`),
    asks the core about every hop (:meth:`.core.Credentials.hop`), and tells it
    of hops it did not send itself (:meth:`saw`), so the rule holds whatever sent them.
    """

    __slots__ = ("attachment", "key", "left", "replaced")

    def __init__(self, key: str, attachment: Attachment | None) -> None:
        self.key = key
        self.attachment = attachment
        self.left = False
        self.replaced: tuple[str, ...] = ()
        """Tokens a retry replaced on this chain: still to be masked in its messages."""

    def replace(self, newer: Attachment) -> None:
        """After a retry with ``newer``: the hops that follow carry it."""
        old = self.attachment
        if old is not None and old.source is not None:
            self.replaced = (*self.replaced, old.source.token)
        self.attachment = newer

    def saw(self, url: str) -> None:
        """A hop went to ``url``; where that is another origin, the chain has left."""
        if not self.left and not same_origin(origin_key(url), self.key):
            self.left = True

    def hop(self, url: str) -> Attachment | None:
        """A hop to ``url``: the first request's attachment, or none once the chain has left."""
        self.saw(url)
        return None if self.left else self.attachment

    def __repr__(self) -> str:
        return f"Chain({self.key!r}, left={self.left})"

    def __getstate__(self) -> tuple[Any, ...]:  # a pickled request's hooks hold it: its hops
        return self.key, None, self.left, ()  # get nothing once unpickled

    def __setstate__(self, state: tuple[Any, ...]) -> None:
        self.key, self.attachment, self.left, self.replaced = state


class Attachment:
    """What goes on a request to one origin: the token's source and its headers.

    ``source`` is ``None`` where no token was found and none was required: the
    request then only says it is a program's (:data:`PROGRAMMATIC`), and
    ``searched`` lists where the lookup looked, for the refusal that follows.
    ``direct_only``: plain http, not to be sent where a proxy would see it (:data:`ProxyOf`).
    """

    __slots__ = ("cookie", "direct_only", "fields", "header", "searched", "server", "source")

    def __init__(
        self,
        source: TokenSource | None,
        server_address: str | None,
        *,
        cookie: bool = False,
        direct_only: bool = False,
        searched: tuple[str, ...] = (),
    ) -> None:
        self.source = source
        self.server = server_address
        self.direct_only = direct_only
        self.searched = searched
        self.header = None if source is None else f"Bearer {source.token}"
        self.cookie = None if source is None or not cookie else f"{COOKIE_NAME}={source.token}"
        self.fields = dict(
            [PROGRAMMATIC] if self.header is None else [("Authorization", self.header)]
        )
        """The headers to set, but the cookie (merged into the request's own)."""

    def headers(self, existing_cookie: str | None = None) -> dict[str, str]:
        """The headers to set (the cookie merged with ``existing_cookie``)."""
        if self.cookie is None:
            return dict(self.fields)
        return {**self.fields, "Cookie": merge_cookie(existing_cookie, self.cookie)}

    def __repr__(self) -> str:
        return f"Attachment(source={self.source!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled with a response (on its request), it keeps the source's name, and of its
        token only the mask."""
        source = copy.copy(self.source)
        if source is not None:
            source.token = mask_token(source.token)
        return (
            _unpickled,
            (source, self.server, self.cookie is not None, self.direct_only, self.searched),
        )


def _unpickled(source: TokenSource | None, server: str | None, *flags: Any) -> Attachment:
    cookie, direct_only, searched = flags
    return Attachment(source, server, cookie=cookie, direct_only=direct_only, searched=searched)


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


def drop_cookie(existing: str, cookie: str) -> str | None:
    """A ``Cookie`` header value without ``cookie``; ``None`` where nothing is left."""
    return (
        "; ".join(p.strip() for p in existing.split(";") if p.strip() not in ("", cookie)) or None
    )


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
