"""httpx: ``CAVEHttpxAuth``, an ``httpx.Auth`` for ``httpx.Client`` and ``httpx.AsyncClient``.

Translation only; every decision is :mod:`cave_requests_auth.core`'s. httpx
calls an auth flow once per ``client.send``, with the request alone: it never
shows the flow the client, its proxies or its redirect hops as it makes them.

What the binding controls:

- **The first request of every chain**: the token where the core says
  (``hosts=``, per-host tokens, plain ``http`` only to loopback and not through
  a proxy, else :class:`InsecureTransportError` before any connection), the
  ``middle_auth_token`` cookie merged into that request's ``Cookie`` header
  with ``cookie=True`` (never into the client's jar).
- **Hops sent through the auth flow**: with ``follow_redirects=False`` (httpx's
  default), ``client.send(response.next_request)`` runs the flow again. httpx
  builds ``next_request`` with a shallow copy of the request's ``extensions``,
  so the hop carries the very :class:`_Link` object the flow put there; the flow
  notes which request httpx built next (``response.next_request``), and takes a
  request as a hop only where it is that object. Such a hop gets the token only
  as :class:`.core.Chain` says: never on another origin, nor back on the first
  one after the chain has left it; a header httpx copied is removed.
- **A 401** ``invalid_token`` to the first request: the token source is read
  again, and where it now holds another token, the request is yielded once
  more with it (httpx reads and closes the 401 first, and keeps it in
  ``response.history``). Only a body httpx holds in memory is sent again
  (empty, bytes, str, ``json=``, ``data=`` forms, or a request ``read()``
  before): httpx does not expose a file or iterator body to rewind, so then
  the 401 is returned.
- **Refusals**: explained by :mod:`.refusals`; ``raise_on_auth_error=True``
  raises :class:`AuthResponseError` (with the httpx response) from the call.

What it leaves to httpx:

- **Hops of** ``follow_redirects=True``: httpx sends them inside the client,
  without the auth flow. It copies the headers of the hop before, removes
  ``Authorization`` on a change of origin (except an ``http`` to ``https``
  upgrade of the same host on the default ports 80 and 443), and rebuilds
  ``Cookie`` from the client's jar on every hop. So a same-origin hop keeps the
  Bearer header (not the cookie), a hop to another origin has neither, and
  one back to the first origin has neither either (it is built from the hop
  before): the core's rule, but for that upgrade, which goes to the same host
  over TLS with a token that host already had over plain ``http``. The flow
  sees the hops afterwards, in ``response.history``, for the refusals.
- **Proxies**: the flow cannot see the client's ``proxy=``, ``mounts=`` or
  ``trust_env``. It takes the environment's proxies (``HTTP_PROXY``,
  ``ALL_PROXY``, ``NO_PROXY``) as requests or httpx would apply them — a plain
  ``http`` request to loopback is refused where either would use a proxy
  (httpx reads no CIDR range in ``NO_PROXY``, requests does) — and so refuses
  too where ``trust_env=False`` would have bypassed them. A proxy given to the
  client itself is not seen: with one, use ``https`` (a CONNECT tunnel shows
  the proxy no header), not plain ``http`` to loopback.

In ``AsyncClient``, the token lookup (which may read secret files) runs in a
worker thread (``anyio.to_thread``, so asyncio and trio alike) the first time
an origin is seen, and when a 401 makes the source be read again; once an
origin's decision is cached, and always with ``token=``, the flow runs on the
event loop without a thread.
"""

from __future__ import annotations

import os
import weakref
from functools import partial
from typing import TYPE_CHECKING
from urllib.request import getproxies

import anyio.to_thread
import httpx

from ..core import Chain, Credentials
from ..refusals import Answer, report
from ..urls import origin_key, parse_origin, same_origin
from ..wire import MAX_ERROR_BODY, Attachment, bearer_of
from .requests import environment_proxy, error_for

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Generator

__all__ = ["LINK_EXTENSION", "CAVEHttpxAuth", "answers_of_httpx", "httpx_environment_proxy"]

LINK_EXTENSION = "cave_requests_auth.chain"
"""The key of a request's :class:`_Link` in ``request.extensions`` (transports ignore it)."""


class _Link:
    """A chain, shared by a request and the hops httpx builds from it.

    ``next``: the hop httpx built from the chain's last answer
    (``response.next_request``), the one request taken as a hop of it.
    """

    __slots__ = ("chain", "next")

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.next: weakref.ref[httpx.Request] | None = None

    def leads_to(self, request: httpx.Request) -> bool:
        return self.next is not None and self.next() is request

    def __repr__(self) -> str:
        return f"_Link({self.chain!r})"


def _link_of(request: httpx.Request) -> _Link | None:
    link = request.extensions.get(LINK_EXTENSION)
    return link if isinstance(link, _Link) else None


def httpx_environment_proxy(url: str) -> str | None:
    """The environment's proxy a plain ``http`` request to ``url`` may go through.

    Where requests (:func:`.requests.environment_proxy`) or httpx would use
    one: httpx bypasses its proxy only for a ``NO_PROXY`` entry naming the host
    itself (or ``*``), and reads no CIDR range there. Only loopback hosts are
    ever asked about, so exact names are all that matter.
    """
    for name in os.environ:
        if name[-6:].lower() == "_proxy":
            break
    else:
        return None
    through = environment_proxy(url)
    if through is not None:
        return through
    proxies = getproxies()
    origin = parse_origin(url)
    if origin is None:
        return None
    proxy = proxies.get(origin.scheme) or proxies.get("all")
    if not proxy:
        return None
    host = origin.host.strip("[]")
    for entry in proxies.get("no", "").split(","):
        entry = entry.strip().lower()
        scheme, _, name = entry.rpartition("://")
        if entry == "*" or (scheme in ("", "all", origin.scheme) and name.strip("[]") == host):
            return None
    return proxy


def _rewindable(request: httpx.Request) -> bool:
    """Whether httpx holds the body in memory, so that it can be sent again."""
    try:
        request.content  # noqa: B018
    except httpx.RequestNotRead:
        return False  # a file, an iterator or a multipart stream
    return True


def _put(request: httpx.Request, attachment: Attachment | None, carried: Attachment | None) -> None:
    """Make ``request`` carry ``attachment``'s headers and none of ``carried``'s.

    ``carried``: what the request may hold already (httpx copies a hop's headers
    from the request before it).
    """
    headers = request.headers
    if carried is not None and carried.header is not None:
        if headers.get("Authorization") == carried.header:
            del headers["Authorization"]
        cookie = headers.get("Cookie")
        if carried.cookie is not None and cookie is not None:
            kept = [p.strip() for p in cookie.split(";") if p.strip() not in ("", carried.cookie)]
            if kept:
                headers["Cookie"] = "; ".join(kept)
            else:
                del headers["Cookie"]
    if attachment is not None and attachment.header is not None:
        headers.update(attachment.headers(headers.get("Cookie")))


def _needs_body(response: httpx.Response) -> bool:
    """Whether the answer is a refusal whose (bounded) body says what it is."""
    if response.status_code not in (400, 401, 403):
        return False
    length = response.headers.get("Content-Length", "0")
    return not (length.isdigit() and int(length) > MAX_ERROR_BODY)


def _read(response: httpx.Response) -> bytes:
    return response.read()[:MAX_ERROR_BODY] if _needs_body(response) else b""


async def _aread(response: httpx.Response) -> bytes:
    return (await response.aread())[:MAX_ERROR_BODY] if _needs_body(response) else b""


def _answers(
    hops: list[httpx.Response],
    key: str,
    sent: Attachment | None,
    body: bytes,
    replaced: tuple[str, ...] = (),
) -> list[Answer]:
    """``hops`` (the last one's bounded ``body`` given) as the values :mod:`.refusals` reads."""
    answers = []
    for index, hop in enumerate(hops):
        request = hop.request
        url = str(request.url)
        authorization = request.headers.get("Authorization")
        carried = sent is not None and sent.header is not None and authorization == sent.header
        answers.append(
            Answer(
                method=request.method,
                url=url,
                status=hop.status_code,
                content_type=hop.headers.get("Content-Type", ""),
                www_authenticate=hop.headers.get("WWW-Authenticate", ""),
                location=hop.headers.get("Location") if hop.has_redirect_location else None,
                body=body if index == len(hops) - 1 else b"",
                bearer=bearer_of(authorization),
                sent=sent if carried else None,
                elsewhere=not same_origin(origin_key(url), key),
                replaced=replaced,
            )
        )
    return answers


def answers_of_httpx(response: httpx.Response) -> list[Answer]:
    """An httpx response (its history first) as the values :mod:`.refusals` reads.

    For ``raise_for_auth``: what these credentials attached is known from the
    chain the auth flow left in the request's ``extensions``. The last body is
    read only where the response has been read already.
    """
    link = _link_of(response.request)
    key = link.chain.key if link is not None else origin_key(str(response.request.url))
    try:
        body = response.content[:MAX_ERROR_BODY] if _needs_body(response) else b""
    except httpx.ResponseNotRead:
        body = b""
    sent = link.chain.attachment if link is not None else None
    replaced = link.chain.replaced if link is not None else ()
    return _answers([*response.history, response], key, sent, body, replaced)


class CAVEHttpxAuth(Credentials, httpx.Auth):
    """Attach a CAVE token to httpx requests: ``httpx.Client(auth=CAVEHttpxAuth())``.

    The same object works for ``httpx.Client`` and ``httpx.AsyncClient``, and may
    be shared between clients and threads. Arguments as for
    :class:`cave_requests_auth.CAVETokenAuth`; what the auth controls and what it
    leaves to httpx (redirects it follows itself, a proxy given to the client)
    is in :mod:`cave_requests_auth.transport.httpx`.

    Raises:
        InvalidTokenError: ``token`` is not a bearer token.
        TypeError, ValueError: ``hosts``, ``token_key`` or ``server_address`` are malformed.
    """

    # -- the two flows: the same steps, the async one reads files off the event loop --

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """The flow for ``httpx.Client`` (what :meth:`sync_auth_flow` runs)."""
        url = str(request.url)
        link = _link_of(request)
        if link is not None and link.leads_to(request):
            first, attachment = False, self._hop(request, link, url)
        else:
            first, link = True, self._begin(request, link, self.start(url, httpx_environment_proxy))
            attachment = link.chain.attachment
        response = yield request
        offset, body = 0, b""
        if self._may_retry(attachment, response):
            body = _read(response)
            newer = self.retry_with(
                url,
                attachment,
                401,
                response.headers.get("Content-Type", ""),
                body,
                from_hop=not first or bool(response.history),
                rewindable=_rewindable(request),
            )
            if newer is not None:
                attachment = self._again(request, link, attachment, newer)
                response = yield request
                offset = 1
        if attachment is not None and (response.status_code >= 300 or response.history):
            body = _read(response)
        self._finish(link, attachment, response, offset, body)

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """What ``httpx.Client`` runs: :meth:`auth_flow`."""
        return self.auth_flow(request)

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """What ``httpx.AsyncClient`` runs: :meth:`auth_flow`'s steps, file reads in a thread."""
        url = str(request.url)
        link = _link_of(request)
        if link is not None and link.leads_to(request):
            first, attachment = False, self._hop(request, link, url)
        else:
            start = partial(self.start, url, httpx_environment_proxy)
            chain = start() if self.decided(url) else await anyio.to_thread.run_sync(start)
            first, link = True, self._begin(request, link, chain)
            attachment = link.chain.attachment
        response = yield request
        offset, body = 0, b""
        if self._may_retry(attachment, response):
            body = await _aread(response)
            retry = partial(
                self.retry_with,
                url,
                attachment,
                401,
                response.headers.get("Content-Type", ""),
                body,
                from_hop=not first or bool(response.history),
                rewindable=_rewindable(request),
            )
            newer = await anyio.to_thread.run_sync(retry)
            if newer is not None:
                attachment = self._again(request, link, attachment, newer)
                response = yield request
                offset = 1
        if attachment is not None and (response.status_code >= 300 or response.history):
            body = await _aread(response)
        self._finish(link, attachment, response, offset, body)

    # -- the steps ------------------------------------------------------------------

    @staticmethod
    def _begin(request: httpx.Request, old: _Link | None, chain: Chain) -> _Link:
        """The first request of ``chain``: its headers, and the link its hops will carry."""
        link = _Link(chain)
        request.extensions[LINK_EXTENSION] = link
        _put(request, chain.attachment, old.chain.attachment if old is not None else None)
        return link

    def _hop(self, request: httpx.Request, link: _Link, url: str) -> Attachment | None:
        """A hop httpx built from the chain's last answer: what the core lets it carry."""
        attachment = self.hop(link.chain, url, httpx_environment_proxy)
        _put(request, attachment, link.chain.attachment)
        return attachment

    @staticmethod
    def _may_retry(attachment: Attachment | None, response: httpx.Response) -> bool:
        return (
            response.status_code == 401 and attachment is not None and attachment.header is not None
        )

    @staticmethod
    def _again(
        request: httpx.Request, link: _Link, sent: Attachment | None, newer: Attachment
    ) -> Attachment:
        """Put the reloaded token on ``request`` for its one re-send; its hops carry it too."""
        link.chain.replace(newer)
        _put(request, newer, sent)
        return newer

    def _finish(
        self,
        link: _Link,
        attachment: Attachment | None,
        response: httpx.Response,
        offset: int,
        body: bytes,
    ) -> None:
        """Note where the chain went and the hop httpx built next; report a refusal."""
        hops = [*response.history[offset:], response]
        for hop in hops[1:]:  # hops httpx followed itself
            link.chain.saw(str(hop.request.url))
        if response.next_request is not None:
            link.next = weakref.ref(response.next_request)
        if attachment is not None and (response.status_code >= 300 or len(hops) > 1):
            report(self, _answers(hops, link.chain.key, attachment, body), error_for(response))
