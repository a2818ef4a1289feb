"""aiohttp: ``CAVEAuthMiddleware``, a client middleware (aiohttp 3.12 or newer).

Translation only; every decision is :mod:`cave_requests_auth.core`'s. aiohttp runs a
session's middlewares on every request it sends, hops included; nothing public on a
hop names its chain, so after a redirect answer the chain is kept in a context
variable (per task) and the next request seen there is taken as its hop. Finding a
token for a new origin, or after a 401, runs in :func:`asyncio.to_thread`. Redirects,
proxies and errors in detail: ``docs/security.rst``.
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import TYPE_CHECKING

import aiohttp

from .. import errors
from ..core import Credentials
from ..exchange import error_for, wants_body
from ..refusals import Answer, report
from ..urls import origin_key, same_origin
from ..wire import MAX_ERROR_BODY, Attachment, Chain, bearer_of, no_proxy

if TYPE_CHECKING:
    from aiohttp import ClientHandlerType, ClientRequest, ClientResponse

    from ..wire import ProxyOf

__all__ = ["AuthResponseError", "CAVEAuthMiddleware", "TokenFileError"]

REDIRECTS = frozenset((301, 302, 303, 307, 308))
"""The answers aiohttp follows (``ClientSession._request``)."""


class AuthResponseError(errors.AuthResponseError, aiohttp.ClientError):
    """:class:`cave_requests_auth.AuthResponseError`, also an ``aiohttp.ClientError``.

    ``response`` is the ``aiohttp.ClientResponse`` (released; a refusal's body
    was read, so ``await response.read()`` still gives it).
    """


class TokenFileError(errors.TokenFileError, aiohttp.ClientError):
    """:class:`cave_requests_auth.TokenFileError`, also an ``aiohttp.ClientError``."""


class _Exchange:
    """A chain between its hops: what the middleware needs of the hops before.

    ``resend``: the URL of a hop whose sending failed, which aiohttp may send
    again (a dropped connection); ``None`` after a redirect answer.
    """

    __slots__ = ("answers", "chain", "resend")

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.answers: list[Answer] = []
        self.resend: str | None = None

    def __repr__(self) -> str:
        return f"_Exchange({self.chain!r})"


def _proxy_of(request: ClientRequest) -> ProxyOf:
    proxy = request.proxy
    if proxy is None:
        return no_proxy  # which the core skips
    through = str(proxy)

    def proxy_of(url: str) -> str | None:
        return through

    return proxy_of


def _attach(request: ClientRequest, attachment: Attachment) -> None:
    request.headers.update(attachment.headers(request.headers.get("Cookie")))


def _rewindable(request: ClientRequest) -> bool:
    """Whether the body can be sent again (aiohttp rewinds bytes and seekable files itself)."""
    body = request.body
    return not isinstance(body, aiohttp.payload.Payload) or not getattr(body, "consumed", True)


async def _body(response: ClientResponse) -> bytes:
    """The body of a refusal, bounded; nothing for other answers.

    Read whole (aiohttp keeps it: the caller can still read it), or not at all.
    """
    if not wants_body(response.status, response.headers):
        return b""
    return (await response.read())[:MAX_ERROR_BODY]


class CAVEAuthMiddleware(Credentials):
    """An aiohttp client middleware that attaches a CAVE token to each request.

    >>> auth = CAVEAuthMiddleware()  # doctest: +SKIP
    >>> async with aiohttp.ClientSession(middlewares=(auth,)) as session:  # doctest: +SKIP
    ...     async with session.get(url) as response:
    ...         data = await response.json()

    The same object goes to fsspec:
    ``fsspec.filesystem("http", client_kwargs={"middlewares": (auth,)})``.
    Arguments as :class:`cave_requests_auth.CAVETokenAuth` takes them, with the
    same rules, redirect hops included. What aiohttp does not show a middleware
    (how a hop is told from a request, which proxy is seen, the worker thread for
    file reads) is in :doc:`security`.

    Raises:
        InsecureTransportError: (from the request call) plain http to a host that
            is not loopback, or through ``request.proxy``; before anything is sent.
        TokenNotFoundError, InvalidTokenError, TokenFileError: from the lookup.
        AuthResponseError: a refusal, with ``raise_on_auth_error=True``.
    """

    def __repr__(self) -> str:
        # Unique per object: fsspec caches a file system by the str() of its
        # arguments, and two middlewares with other tokens or rules must not share one.
        return f"{super().__repr__()[:-1]}, at {id(self):#x})"

    async def __call__(self, request: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
        """Send ``request`` through ``handler``, with the token where the rules allow it."""
        url = str(request.url)
        proxy_of = _proxy_of(request)
        pending = self._pending
        exchange = pending.get()
        if exchange is not None:
            pending.set(None)
            if exchange.resend is not None and exchange.resend != url:
                exchange = None  # a failed hop's note, and this request is not it sent again
        if exchange is not None:
            exchange.resend = None
            attachment = self.hop(exchange.chain, url, proxy_of)
            first = False
        else:
            exchange = _Exchange(await self._start(url, proxy_of))
            attachment = exchange.chain.attachment
            first = True
        if attachment is not None:
            _attach(request, attachment)
        try:
            response = await handler(request)
        except BaseException:
            if not first:  # aiohttp may send the hop again (a dropped connection): still a hop
                exchange.resend = url
                pending.set(exchange)
            raise
        status = response.status
        if status < 300:
            return response
        if first and status == 401 and attachment is not None:
            attachment, response = await self._retry(request, handler, response, exchange.chain)
            status = response.status
        chain = exchange.chain
        exchange.answers.append(
            Answer.of(
                request.method,
                url,
                status,
                response.headers,
                await _body(response),
                bearer=bearer_of(request.headers.get("Authorization")),
                sent=attachment,
                elsewhere=not first and not same_origin(origin_key(url), chain.key),
            )
        )
        if attachment is not None:
            try:
                report(self, exchange.answers, error_for(response, AuthResponseError))
            except AuthResponseError:
                response.release()
                raise
        headers = response.headers
        if status in REDIRECTS and (headers.get("Location") or headers.get("URI")):
            pending.set(exchange)  # what aiohttp follows (unless told not to)
        return response

    _UNPICKLED = (*Credentials._UNPICKLED, "_pending")

    def _setup(self) -> None:
        super()._setup()
        # This middleware's chain whose last answer was a redirect: its next hop
        # is the next request this middleware sees in the same context.
        self._pending: contextvars.ContextVar[_Exchange | None] = contextvars.ContextVar(
            "cave_requests_auth_aiohttp_chain", default=None
        )

    async def _start(self, url: str, proxy_of: ProxyOf) -> Chain:
        """The chain of a new request; an origin not decided yet is looked up off the loop."""
        try:
            if self.decided(url):  # no file to read
                return self.start(url, proxy_of)
            return await asyncio.to_thread(self.start, url, proxy_of)
        except errors.TokenFileError as error:
            raise TokenFileError(str(error), error.path) from None

    async def _retry(
        self,
        request: ClientRequest,
        handler: ClientHandlerType,
        response: ClientResponse,
        chain: Chain,
    ) -> tuple[Attachment | None, ClientResponse]:
        """A 401 to the chain's first request: send it once more where the core says so."""
        sent = chain.attachment
        newer = await asyncio.to_thread(
            self.retry_with,
            str(request.url),
            sent,
            401,
            response.headers.get("Content-Type", ""),
            await _body(response),
            from_hop=False,
            rewindable=_rewindable(request),
        )
        if newer is None:
            return sent, response
        response.release()
        chain.replace(newer)  # the hops that follow carry the new token
        _attach(request, newer)
        return newer, await handler(request)
