"""urllib3: ``auth_headers`` for any client, and ``CAVEPoolManager``.

The pool manager attaches the token per request by the rules of its
:class:`CAVETokenAuth` (lookup, ``hosts=``, https), retries a ``401
invalid_token`` once when the token source has changed, and, following a
redirect, gives the token to a hop only where it goes to the same scheme, host
and port as the request itself. It removes its own headers from every other hop
itself, so a caller's ``Retry(remove_headers_on_redirect=...)`` cannot carry the
token to another host.
"""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING, Any

from urllib3 import PoolManager
from urllib3._collections import HTTPHeaderDict

from .answers import error_code
from .auth import CAVETokenAuth, merge_cookie
from .urls import origin_key, same_origin

if TYPE_CHECKING:
    from urllib3.response import BaseHTTPResponse

    from .answers import Attachment

__all__ = ["CAVEPoolManager", "auth_headers"]

# The origin key and attachment of the request whose redirects urlopen is
# following, in this thread: set by the outer call, seen by the recursive calls
# urllib3 makes for the hops.
_first: contextvars.ContextVar[tuple[str, Attachment] | None] = contextvars.ContextVar(
    "cave_requests_auth_first_request", default=None
)


def auth_headers(url: str, **token_kwargs: Any) -> dict[str, str]:
    """The headers that carry a CAVE token to ``url``, for urllib3 or any client.

    >>> urllib3.request("GET", url, headers=auth_headers(url))  # doctest: +SKIP

    Args:
        url: where the request goes; its host picks the token file, and decides
            whether a token may go there at all.
        **token_kwargs: as for :class:`CAVETokenAuth`; ``cookie`` defaults to
            ``False`` here (with ``cookie=True`` a ``Cookie`` header is included:
            merge it with yours).

    Returns:
        ``{"Authorization": "Bearer …"}`` (and ``"Cookie"`` where asked), or ``{}``
        for a host outside ``hosts=`` or with ``required=False`` and no token.

    Raises:
        InsecureTransportError, TokenNotFoundError, InvalidTokenError,
        TokenFileError: as a request through :class:`CAVETokenAuth` would.
    """
    token_kwargs.setdefault("cookie", False)
    return CAVETokenAuth(**token_kwargs).headers_for(url)


def _without(headers: HTTPHeaderDict, attachment: Attachment) -> None:
    """Remove from ``headers`` what ``attachment`` put there, and nothing else."""
    if attachment.header is not None and headers.get("Authorization") == attachment.header:
        del headers["Authorization"]
    cookie = headers.get("Cookie")
    if cookie is not None and attachment.cookie is not None and attachment.cookie in cookie:
        kept = "; ".join(
            part.strip() for part in cookie.split(";") if part.strip() != attachment.cookie
        )
        if kept:
            headers["Cookie"] = kept
        else:
            del headers["Cookie"]


class CAVEPoolManager(PoolManager):
    """A :class:`urllib3.PoolManager` that attaches a CAVE token to each request.

    >>> http = CAVEPoolManager()  # doctest: +SKIP
    >>> http.request("GET", "https://minnie.example.org/segmentation/api/v1/")  # doctest: +SKIP

    Args:
        auth: the :class:`CAVETokenAuth` whose token and rules apply
            (default: ``CAVETokenAuth()``).
        **pool_kwargs: for :class:`urllib3.PoolManager` (``num_pools``,
            ``headers``, ``retries``, ``ca_certs``, …).
    """

    def __init__(self, auth: CAVETokenAuth | None = None, **pool_kwargs: Any) -> None:
        super().__init__(**pool_kwargs)
        self.auth = auth if auth is not None else CAVETokenAuth()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.auth!r})"

    def _attach(self, kw: dict[str, Any], attachment: Attachment | None) -> None:
        """Set ``kw["headers"]`` to a copy holding ``attachment``'s headers and no older ones."""
        header = cookie = None
        if attachment is not None and attachment.header is not None:
            header = attachment.header
            cookie = attachment.cookie if self.auth.cookie else None
        given = kw.get("headers", self.headers)
        if not given:  # the common case: no headers of the caller's, nothing to merge
            if header is not None:
                kw["headers"] = {"Authorization": header}
                if cookie is not None:
                    kw["headers"]["Cookie"] = cookie
            return
        headers = HTTPHeaderDict(given)
        first = _first.get()
        if first is not None:
            _without(headers, first[1])
        if header is not None:
            headers["Authorization"] = header
            if cookie is not None:
                headers["Cookie"] = merge_cookie(headers.get("Cookie"), cookie)
        kw["headers"] = headers

    def urlopen(  # type: ignore[override]
        self, method: str, url: str, redirect: bool = True, **kw: Any
    ) -> BaseHTTPResponse:
        """Send with the token where the rules allow it; follow redirects as urllib3 does."""
        first = _first.get()
        if first is not None:  # a redirect hop of the request below
            self._attach(kw, first[1] if same_origin(origin_key(url), first[0]) else None)
            return super().urlopen(method, url, redirect, **kw)

        attachment = self.auth.attachment_for(url)
        given = kw.get("headers", self.headers)
        body: Any = kw.get("body")
        position = body.tell() if hasattr(body, "tell") and hasattr(body, "seek") else None
        response = self._send(method, url, redirect, kw, attachment)
        newer = self._newer_token(url, response, attachment, body, position)
        if newer is None:
            return response
        response.drain_conn()
        response.release_conn()
        if position is not None:
            body.seek(position)
        kw["headers"] = given
        return self._send(method, url, redirect, kw, newer)

    def _send(
        self, method: str, url: str, redirect: bool, kw: dict[str, Any], attachment: Attachment
    ) -> BaseHTTPResponse:
        """Send with ``attachment``, remembering it for the redirect hops that follow."""
        self._attach(kw, attachment)
        reset = _first.set((origin_key(url), attachment))
        try:
            return super().urlopen(method, url, redirect, **kw)
        finally:
            _first.reset(reset)

    def _newer_token(
        self,
        url: str,
        response: BaseHTTPResponse,
        attachment: Attachment,
        body: Any,
        position: int | None,
    ) -> Attachment | None:
        """Where a ``401 invalid_token`` came back and the source now has another token."""
        if response.status != 401 or attachment.source is None:
            return None
        if response.retries is not None and response.retries.history:
            return None  # the 401 came from a redirect hop
        if body is not None and not isinstance(body, (bytes, str)) and position is None:
            return None  # a one-shot body cannot be sent again
        content_type = response.headers.get("Content-Type", "")
        if error_code(content_type, response.data) != "invalid_token":
            return None
        return self.auth.reloaded(url, attachment)
