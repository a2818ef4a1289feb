"""urllib3: ``CAVEPoolManager``, ``CAVEProxyManager`` and ``auth_headers``.

Translation only; every decision is :mod:`cave_requests_auth.core`'s. A pool
manager follows a redirect by calling its own ``urlopen`` again, with the
``Retry`` that noted the redirects so far (assumptions ``tests/test_upstream.py``
checks): from those, each hop's call rebuilds the chain the core asks about, and
replaces the headers the hop inherited, removing any of these credentials' tokens.
So a caller's ``Retry(remove_headers_on_redirect=...)`` cannot carry the token
elsewhere. (A ``Retry`` taken from an earlier response makes a new request the
hop of that chain: it then gets the token only where that chain would give it.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from urllib3 import PoolManager, ProxyManager

from ..core import Credentials
from ..errors import CAVEAuthError
from ..exchange import EXCHANGE_ATTRIBUTE, Exchange, redirects_of
from ..urls import origin_key
from ..wire import (
    COOKIE_NAME,
    MAX_ERROR_BODY,
    Attachment,
    Chain,
    ProxyOf,
    bearer_of,
    drop_cookie,
    no_proxy,
)

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping

    from urllib3.response import BaseHTTPResponse

__all__ = ["CAVEPoolManager", "CAVEProxyManager", "auth_headers"]


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
    given: Mapping[str, str],
    remove: Attachment | None,
    add: Attachment | None,
    tokens: Collection[str] = (),
) -> dict[str, str]:
    """``given`` without what ``remove`` put there (nor any of ``tokens``), with ``add``'s."""
    if not given:  # the common case: no headers of the caller's
        return {} if add is None else add.headers()
    ours = {} if remove is None else {name.lower(): v for name, v in remove.fields.items()}
    headers: dict[str, str] = {}
    cookie = None
    for name in given:
        value, lower = given[name], name.lower()
        mine = ours.get(lower) == value or (lower == "authorization" and bearer_of(value) in tokens)
        if mine or (lower == "authorization" and add and add.header):
            continue
        if lower == "cookie":
            cookie = value
            for token in tokens:
                cookie = cookie and drop_cookie(cookie, f"{COOKIE_NAME}={token}")
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

    _proxy_of: ProxyOf = staticmethod(no_proxy)  # a PoolManager connects directly

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.auth!r})"

    def urlopen(self, method: str, url: str, redirect: bool = True, **kw: Any) -> BaseHTTPResponse:
        """Send with the token where the rules allow it; follow redirects as urllib3 does."""
        given, send = kw.get("headers", self.headers), super().urlopen  # type: ignore[misc]
        history = getattr(kw.get("retries"), "history", None)
        if history and history[-1].redirect_location:  # a redirect hop of the request below
            chain = self._chain(redirects_of(kw["retries"]))
            hop = self.auth.hop(chain, url, self._proxy_of, forwards_https=self.forwards_https)
            kw["headers"] = _headers(given, chain.attachment, hop, self.auth.known_tokens())
            return send(method, url, redirect, **kw)  # type: ignore[no-any-return]
        attachment = self.auth.attachment(url, self._proxy_of, forwards_https=self.forwards_https)
        body: Any = kw.get("body")
        position = None if body is None else _position(body)
        kw["headers"] = _headers(given, None, attachment)
        response: Any = send(method, url, redirect, **kw)
        if response.status < 300 and not getattr(response.retries, "history", None):
            return response  # type: ignore[no-any-return]  # the common case: nothing to note
        redirects = redirects_of(response.retries)
        newer = None
        if response.status == 401 and attachment is not None:
            newer = self.auth.retry_with(
                url,
                attachment,
                401,
                response.headers.get("Content-Type", ""),
                response.data[:MAX_ERROR_BODY],
                from_hop=bool(redirects),
                rewindable=body is None or isinstance(body, (bytes, str)) or position is not None,
            )
        replaced: tuple[str, ...] = ()
        if newer is not None:
            response.drain_conn()
            response.release_conn()
            if position is not None:
                body.seek(position)
            replaced = (attachment.source.token,) if attachment and attachment.source else ()
            kw["headers"] = _headers(given, None, newer)
            response = send(method, url, redirect, **kw)
            redirects = redirects_of(response.retries)
        # Noted for raise_for_auth: what the last hop carried, and the token refused.
        last = redirects[-1] if redirects else None
        final = urljoin(str(last.url), str(last.redirect_location)) if last else url
        chain = self._chain(redirects, final)
        sent = None if chain.left else chain.attachment
        setattr(response, EXCHANGE_ATTRIBUTE, Exchange(method, url, final, sent, replaced))
        return response  # type: ignore[no-any-return]

    def _chain(self, redirects: Iterable[Any], *more: str) -> Chain:
        """The chain of the redirects urllib3 noted (:func:`.redirects_of`), then ``more``."""
        urls = [str(entry.url) for entry in redirects] + list(more)
        proxy_of, https = self._proxy_of, self.forwards_https
        try:
            first = self.auth.attachment(urls[0], proxy_of, forwards_https=https)
        except CAVEAuthError:  # the rules changed meanwhile: none
            first = None
        chain = Chain(origin_key(urls[0]), first)
        for url in urls[1:]:
            chain.saw(url)
        return chain


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
