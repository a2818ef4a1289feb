"""urllib3: ``CAVEPoolManager``, ``CAVEProxyManager`` and ``auth_headers``.

Translation only; every decision is :mod:`cave_requests_auth.core`'s. A pool
manager follows a redirect by calling its own ``urlopen`` again (an assumption
``tests/test_upstream.py`` checks): the outer call opens a :class:`.core.Chain`
in a context variable, and each inner call asks it what its hop may carry,
replacing the headers the hop inherited. So a caller's
``Retry(remove_headers_on_redirect=...)`` cannot carry the token elsewhere.
"""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING, Any

from urllib3 import PoolManager, ProxyManager

from ..core import Credentials
from ..exchange import EXCHANGE_ATTRIBUTE, Exchange
from ..wire import MAX_ERROR_BODY, Attachment, Chain, drop_cookie

if TYPE_CHECKING:
    from collections.abc import Mapping

    from urllib3.response import BaseHTTPResponse

__all__ = ["CAVEPoolManager", "CAVEProxyManager", "auth_headers"]

_chain: contextvars.ContextVar[Chain | None] = contextvars.ContextVar(
    "cave_requests_auth_chain", default=None
)


def auth_headers(url: str, **token_kwargs: Any) -> dict[str, str]:
    """The headers that carry a CAVE token to ``url``, for urllib3 or any client.

    >>> urllib3.request("GET", url, headers=auth_headers(url))  # doctest: +SKIP

    These are plain headers: the client decides where they go next. urllib3,
    requests, httpx and aiohttp drop ``Authorization`` on a redirect to another
    host; Python's ``urllib`` (so pandas' ``storage_options``) and fsspec's
    ``headers=`` send them to every host. Prefer a binding that sees redirects.

    Args:
        url: where the request goes; its host picks the token file, and decides
            whether a token may go there at all (plain http only to loopback,
            and not through a proxy of the environment).
        **token_kwargs: as for :class:`CAVETokenAuth` (with ``cookie=True`` a
            ``Cookie`` header is included: merge it with yours).

    Returns:
        ``{"Authorization": "Bearer …"}`` (and ``"Cookie"`` where asked); ``{}`` for a
        host outside ``hosts=``; with ``required=False`` and no token,
        ``{"X-Requested-With": "XMLHttpRequest"}``, so that a CAVE service answers
        ``401 no_token`` rather than redirect to its login page.

    Raises:
        InsecureTransportError, TokenNotFoundError, InvalidTokenError,
        TokenFileError: as a request through :class:`CAVETokenAuth` would.
    """
    return Credentials(**token_kwargs).headers_for(url)


def _headers(
    given: Mapping[str, str], remove: Attachment | None, add: Attachment | None
) -> dict[str, str]:
    """``given`` without what ``remove`` put there, with ``add``'s headers."""
    if not given:  # the common case: no headers of the caller's
        return {} if add is None else add.headers()
    ours = {} if remove is None else {name.lower(): v for name, v in remove.fields.items()}
    headers: dict[str, str] = {}
    cookie = None
    for name in given:
        value, lower = given[name], name.lower()
        if ours.get(lower) == value or (lower == "authorization" and add and add.header):
            continue
        if lower == "cookie":
            cookie = value
            if remove is not None and remove.cookie is not None:
                cookie = drop_cookie(value, remove.cookie)
            continue
        headers[name] = value
    if add is not None:
        new = add.headers(cookie)
        headers.update(new)
        cookie = new.get("Cookie", cookie)
    if cookie:
        headers["Cookie"] = cookie
    return headers


def _position(body: Any) -> int | None:
    """Where a seekable body starts, or ``None`` (a pipe or socket cannot seek)."""
    if not (hasattr(body, "seek") and hasattr(body, "tell")):
        return None
    try:
        return int(body.tell())
    except (OSError, ValueError):
        return None


class _CAVEManager:
    """``urlopen`` for a pool manager: the chain's rules on every hop, a 401 retried once."""

    auth: Credentials
    headers: Mapping[str, str]

    forwards_https = False

    def _proxy_of(self, url: str) -> str | None:
        return None  # a PoolManager connects directly

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.auth!r})"

    def urlopen(self, method: str, url: str, redirect: bool = True, **kw: Any) -> BaseHTTPResponse:
        """Send with the token where the rules allow it; follow redirects as urllib3 does."""
        chain = _chain.get()
        if chain is not None:  # a redirect hop of the request below
            given = kw.get("headers", self.headers)
            kw["headers"] = _headers(
                given,
                chain.attachment,
                self.auth.hop(chain, url, self._proxy_of, forwards_https=self.forwards_https),
            )
            return super().urlopen(method, url, redirect, **kw)  # type: ignore[misc,no-any-return]

        chain = self.auth.start(url, self._proxy_of, forwards_https=self.forwards_https)
        given = kw.get("headers", self.headers)
        body: Any = kw.get("body")
        position = None if body is None else _position(body)
        response = self._send(method, url, redirect, kw, given, chain)
        if response.status < 300 and not chain.hops:  # the common case: nothing to note
            return response
        if response.status != 401 or chain.attachment is None:
            return self._noted(response, method, url, chain)
        newer = self.auth.retry_with(
            url,
            chain.attachment,
            401,
            response.headers.get("Content-Type", ""),
            response.data[:MAX_ERROR_BODY],
            from_hop=chain.hops > 0,
            rewindable=body is None or isinstance(body, (bytes, str)) or position is not None,
        )
        if newer is None:
            return self._noted(response, method, url, chain)
        response.drain_conn()
        response.release_conn()
        if position is not None:
            body.seek(position)
        chain.replace(newer)  # no hop happened (a retry is never for a hop's 401)
        return self._noted(self._send(method, url, redirect, kw, given, chain), method, url, chain)

    @staticmethod
    def _noted(response: BaseHTTPResponse, method: str, url: str, chain: Chain) -> BaseHTTPResponse:
        """``response``, noting what ``raise_for_auth`` needs (the last hop's token) where
        it may be a refusal: a 2xx answer to a request that was not redirected is none."""
        if response.status >= 300 or chain.hops:
            sent = None if chain.left else chain.attachment
            exchange = Exchange(method, url, chain.last or url, sent, chain.replaced)
            setattr(response, EXCHANGE_ATTRIBUTE, exchange)
        return response

    def _send(
        self,
        method: str,
        url: str,
        redirect: bool,
        kw: dict[str, Any],
        given: Mapping[str, str],
        chain: Chain,
    ) -> BaseHTTPResponse:
        kw["headers"] = _headers(given, None, chain.attachment)
        reset = _chain.set(chain)
        try:
            return super().urlopen(method, url, redirect, **kw)  # type: ignore[misc,no-any-return]
        finally:
            _chain.reset(reset)


class CAVEPoolManager(_CAVEManager, PoolManager):  # type: ignore[misc]
    """A :class:`urllib3.PoolManager` that attaches a CAVE token to each request.

    >>> http = CAVEPoolManager()  # doctest: +SKIP
    >>> http.request("GET", "https://minnie.example.org/segmentation/api/v1/")  # doctest: +SKIP

    Args:
        auth: the :class:`CAVETokenAuth` (or other binding of this package) whose
            token and rules apply (default: one with the default arguments).
        **pool_kwargs: for :class:`urllib3.PoolManager` (``num_pools``,
            ``headers``, ``retries``, ``ca_certs``, …). For a proxy, use
            :class:`CAVEProxyManager`.
    """

    def __init__(self, auth: Credentials | None = None, **pool_kwargs: Any) -> None:
        if "proxy_url" in pool_kwargs:
            raise TypeError(
                "CAVEPoolManager takes no proxy_url; use CAVEProxyManager(proxy_url, auth=...)."
            )
        super().__init__(**pool_kwargs)
        self.auth = auth if auth is not None else Credentials()


class CAVEProxyManager(_CAVEManager, ProxyManager):  # type: ignore[misc]
    """A :class:`urllib3.ProxyManager` that attaches a CAVE token to each request.

    ``https`` goes through a CONNECT tunnel, so only the service sees the token;
    plain ``http`` (and ``https`` with ``use_forwarding_for_https=True``) would be
    seen by the proxy, so it gets none (:class:`InsecureTransportError`), unless
    ``allow_insecure_http=True``.

    Args:
        proxy_url: the proxy, as for :class:`urllib3.ProxyManager`.
        auth: as for :class:`CAVEPoolManager`.
        **kwargs: for :class:`urllib3.ProxyManager`.
    """

    def __init__(self, proxy_url: str, auth: Credentials | None = None, **kwargs: Any) -> None:
        super().__init__(proxy_url, **kwargs)
        self.auth = auth if auth is not None else Credentials()
        config = self.proxy_config
        self.forwards_https = bool(config and config.use_forwarding_for_https)

    def _proxy_of(self, url: str) -> str | None:
        if url[:6].lower() == "https:" and not self.forwards_https:
            return None  # a CONNECT tunnel: the proxy sees no header
        return str(self.proxy)
