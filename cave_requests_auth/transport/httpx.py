"""httpx: ``CAVEHttpxAuth``, an ``httpx.Auth`` for ``httpx.Client`` and ``httpx.AsyncClient``.

Translation only; every decision is :mod:`cave_requests_auth.core`'s. httpx calls an
auth flow once per ``client.send``, with the request alone: never its client, proxies
or the hops of ``follow_redirects=True``. A hop sent through the flow
(``client.send(response.next_request)``) carries the :class:`_Link` the flow put in
the request's ``extensions`` (httpx copies them), so the flow knows its chain. In an
``AsyncClient``, what may read files runs in a worker thread (``anyio.to_thread``).
What it controls and what it leaves to httpx: ``docs/security.rst``.
"""

from __future__ import annotations

import os
import weakref
from functools import partial
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Union
from urllib.request import getproxies

import anyio.to_thread
import httpx

from ..core import Credentials
from ..exchange import LINK_EXTENSION, error_for, hops_answers, wants_body
from ..refusals import report
from ..urls import parse_origin
from ..wire import MAX_ERROR_BODY, Attachment, Chain, drop_cookie, environment_proxy

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Generator

__all__ = ["CAVEHttpxAuth", "httpx_environment_proxy"]


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


def httpx_environment_proxy(url: str) -> str | None:
    """The environment's proxy a plain ``http`` request to ``url`` may go through.

    Where requests (:func:`.wire.environment_proxy`) or httpx would use one:
    httpx bypasses its proxy only for a ``NO_PROXY`` entry naming the host
    itself (or ``*``), and reads no CIDR range there. Only loopback hosts are
    ever asked about, so exact names are all that matter.
    """
    through = environment_proxy(url)
    origin = parse_origin(url)
    if (
        through is not None
        or origin is None
        or not any(n.lower() == "no_proxy" for n in os.environ)
    ):
        return through
    proxies = getproxies()
    proxy = proxies.get(origin.scheme) or proxies.get("all")
    host = origin.host.strip("[]")
    for entry in proxies.get("no", "").split(","):
        scheme, _, name = entry.strip().lower().rpartition("://")
        if entry.strip() == "*" or (
            scheme in ("", "all", origin.scheme) and name.strip("[]") == host
        ):
            return None
    return proxy or None


def _rewindable(request: httpx.Request) -> bool:
    """Whether httpx holds the body in memory, so that it can be sent again."""
    try:
        request.content  # noqa: B018
    except httpx.RequestNotRead:
        return False  # a file, an iterator or a multipart stream
    return True


def _put(request: httpx.Request, attachment: Attachment | None, carried: Attachment | None) -> None:
    """Make ``request`` carry ``attachment``'s headers and none of ``carried``'s (httpx
    copies a hop's headers from the request before it)."""
    headers = request.headers
    if carried is not None and carried.header is not None:
        if headers.get("Authorization") == carried.header:
            del headers["Authorization"]
        cookie = headers.get("Cookie")
        if carried.cookie is not None and cookie is not None:
            kept = drop_cookie(cookie, carried.cookie)
            if kept is None:
                del headers["Cookie"]
            else:
                headers["Cookie"] = kept
    if attachment is not None:
        headers.update(attachment.headers(headers.get("Cookie")))


def _wanted(response: httpx.Response) -> bool:
    return wants_body(response.status_code, response.headers)


class _Read(NamedTuple):
    """A step of the flow: read the (refusal's) body of ``response``."""

    response: httpx.Response


class _Blocking(NamedTuple):
    """A step of the flow that may read files: the async flow runs it in a worker thread."""

    call: Callable[[], Any]


_Step = Union[httpx.Request, _Read, _Blocking]


class CAVEHttpxAuth(Credentials, httpx.Auth):
    """Attach a CAVE token to httpx requests: ``httpx.Client(auth=CAVEHttpxAuth())``.

    The same object works for ``httpx.Client`` and ``httpx.AsyncClient``, and may
    be shared between clients and threads. Arguments as for
    :class:`cave_requests_auth.CAVETokenAuth`; what the auth controls and what it
    leaves to httpx (redirects it follows itself, a proxy given to the client)
    is in :doc:`security`.

    Raises:
        InvalidTokenError: ``token`` is not a bearer token.
        TypeError, ValueError: ``hosts``, ``token_key`` or ``server_address`` are malformed.
    """

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """What ``httpx.Client`` runs: the steps of the flow, each where it is."""
        flow = self.steps(request)
        step = next(flow)
        while True:
            if isinstance(step, _Read):
                value: Any = step.response.read() if _wanted(step.response) else b""
            elif isinstance(step, _Blocking):
                value = step.call()
            else:
                value = yield step
            try:
                step = flow.send(value)
            except StopIteration:
                return

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """What ``httpx.AsyncClient`` runs: the same steps, file reads in a worker thread."""
        flow = self.steps(request)
        step = next(flow)
        while True:
            if isinstance(step, _Read):
                value: Any = await step.response.aread() if _wanted(step.response) else b""
            elif isinstance(step, _Blocking):
                value = await anyio.to_thread.run_sync(step.call)
            else:
                value = yield step
            try:
                step = flow.send(value)
            except StopIteration:
                return

    def steps(self, request: httpx.Request) -> Generator[_Step, Any, None]:
        """The flow, once for both clients: it yields the requests to send, and the
        bodies to read and the calls that may read files, for the client's flow to run."""
        url = str(request.url)
        link = request.extensions.get(LINK_EXTENSION)
        if isinstance(link, _Link) and link.leads_to(request):
            first, attachment = False, self.hop(link.chain, url, httpx_environment_proxy)
            _put(request, attachment, link.chain.attachment)
        else:
            start = partial(self.start, url, httpx_environment_proxy)
            chain = start() if self.decided(url) else (yield _Blocking(start))
            old = link.chain.attachment if isinstance(link, _Link) else None
            link = request.extensions[LINK_EXTENSION] = _Link(chain)
            _put(request, chain.attachment, old)
            first, attachment = True, chain.attachment
        response = yield request
        offset, body = 0, b""
        if response.status_code == 401 and attachment is not None and attachment.header:
            body = (yield _Read(response))[:MAX_ERROR_BODY]
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
            newer = yield _Blocking(retry)
            if newer is not None:  # once more, with the reloaded token; its hops carry it too
                link.chain.replace(newer)
                _put(request, newer, attachment)
                attachment, offset = newer, 1
                response = yield request
        if attachment is not None and (response.status_code >= 300 or response.history):
            body = (yield _Read(response))[:MAX_ERROR_BODY]
        self._finish(link, attachment, response, offset, body)

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

            def sent_of(index: int, authorization: str | None) -> Attachment | None:
                return attachment if authorization == attachment.header else None

            answers = hops_answers(hops, link.chain.key, sent_of, body=body)
            report(self, answers, error_for(response))
