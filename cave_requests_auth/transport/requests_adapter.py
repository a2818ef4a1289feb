"""requests: ``CAVEAuthAdapter``, the token on what a session sends under one prefix.

Translation only; every decision is :mod:`cave_requests_auth.core`'s. An
adapter sees each request at the moment it is sent (redirect hops included,
after requests has swapped in any ``~/.netrc`` entry), with the proxies the
session really uses. requests makes each hop with ``PreparedRequest.copy()`` of
the one before, and the copies share their ``hooks``: the adapter keeps the
chain's :class:`.core.Chain` there, in a response hook that sees every hop's
answer, whichever adapter sent it. A plainly mounted adapter cannot see a chain
that began under another adapter; :meth:`CAVEAuthAdapter.mount` also puts a
watcher in ``session.hooks`` that opens a chain for every request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from requests.adapters import HTTPAdapter
from requests.exceptions import InvalidSchema
from requests.utils import select_proxy

from ..exchange import SENT_ATTRIBUTE, answers_of, attach, body_of, error_for, rewindable
from ..refusals import report
from ..urls import origin_key, same_origin
from ..wire import COOKIE_NAME, Chain, ProxyOf, bearer_of
from .requests import CAVETokenAuth

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from http.cookiejar import Cookie

    from requests import PreparedRequest, Response, Session

    from ..wire import Attachment

__all__ = ["CAVEAuthAdapter"]


class _ChainHook:
    """A response hook holding a request's chain: it sees where each hop went."""

    __slots__ = ("chain", "first")

    def __init__(self, chain: Chain, first: int) -> None:
        self.chain = chain
        self.first = first  # id() of the request that began it

    def __call__(self, response: Response, **kwargs: Any) -> Response:
        self.chain.saw(str(response.url or response.request.url))
        return response

    def __getstate__(self) -> tuple[Chain, int]:
        return self.chain, self.first

    def __setstate__(self, state: tuple[Chain, int]) -> None:
        self.chain, self.first = state


def _chain_hook(request: PreparedRequest) -> _ChainHook | None:
    for hook in request.hooks["response"]:
        if type(hook) is _ChainHook:
            return hook
    return None


class _Watcher:
    """In ``session.hooks``: gives a chain that began elsewhere a chain without a token."""

    def __call__(self, response: Response, **kwargs: Any) -> Response:
        request = response.request
        if _chain_hook(request) is None:
            chain = Chain(origin_key(str(request.url)), None)
            request.hooks["response"].append(_ChainHook(chain, id(request)))
        return response

    def __eq__(self, other: object) -> bool:
        return type(other) is _Watcher

    def __hash__(self) -> int:
        return hash(_Watcher)


def _proxy_of(proxies: Mapping[str, str] | None) -> ProxyOf:
    def proxy_of(url: str) -> str | None:
        return select_proxy(url, dict(proxies)) if proxies else None

    return proxy_of


class CAVEAuthAdapter(HTTPAdapter):
    """A transport adapter that attaches a CAVE token to what is sent through it.

    >>> CAVEAuthAdapter.mount(session, "https://minnie.example.org/")  # doctest: +SKIP

    Args:
        auth: the :class:`CAVETokenAuth` whose token and rules apply
            (default: ``CAVETokenAuth()``).
        **http_adapter_kwargs: for :class:`requests.adapters.HTTPAdapter`
            (``max_retries``, ``pool_connections``, ``pool_maxsize``, ``pool_block``).
    """

    __attrs__ = [*HTTPAdapter.__attrs__, "auth"]  # noqa: RUF012  (what pickling keeps)

    def __init__(self, auth: CAVETokenAuth | None = None, **http_adapter_kwargs: Any) -> None:
        self.auth = auth if auth is not None else CAVETokenAuth()
        super().__init__(**http_adapter_kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.auth!r})"

    @classmethod
    def mount(
        cls, session: Session, prefix: str, auth: CAVETokenAuth | None = None
    ) -> CAVEAuthAdapter:
        """Mount an adapter for ``prefix`` on a session another library made; return it.

        Keeps ``max_retries``, ``pool_maxsize`` and ``pool_block`` of the adapter it
        replaces; removes CAVE credentials set for the whole session (an
        ``Authorization: Bearer`` in ``session.headers``, ``middle_auth_token``
        cookies in its jar: those go to every host); and watches every request
        of the session, so a redirect into ``prefix`` from another origin gets
        no token. A prefix that ends at the host (``"https://host"``) gets a ``/``:
        requests matches prefixes as strings, and would also match ``host.evil.org``.

        The watcher is a hook in ``session.hooks``: it sees what the session prepares
        (``session.get``, ``session.request``, …). A request prepared elsewhere and
        given to ``session.send``, or one with hooks of its own (``hooks=``, which
        requests puts in place of the session's), is seen only from its first hop
        under ``prefix``: a chain that began at another origin is not known as one.
        """
        rest = prefix.partition("://")[2]
        if rest and "/" not in rest:  # "https://host" would also match https://host.evil.org
            prefix += "/"
        try:
            old = session.get_adapter(prefix)
        except InvalidSchema:  # no adapter for that scheme (ws://, ftp://): nothing to keep
            old = None
        kwargs: dict[str, Any] = {}
        if isinstance(old, HTTPAdapter):
            kwargs["max_retries"] = old.max_retries
            pool_kw = old.poolmanager.connection_pool_kw
            for name in ("maxsize", "block"):
                if name in pool_kw:
                    kwargs[f"pool_{name}"] = pool_kw[name]
        adapter = cls(auth, **kwargs)
        session.mount(prefix, adapter)
        if bearer_of(session.headers.get("Authorization")) is not None:
            del session.headers["Authorization"]
        for cookie in list(cast("Iterable[Cookie]", session.cookies)):
            if cookie.name == COOKIE_NAME:
                session.cookies.clear(cookie.domain, cookie.path, cookie.name)
        hooks = session.hooks.get("response")
        hooks = [] if hooks is None else [hooks] if callable(hooks) else list(hooks)
        if _Watcher() not in hooks:
            hooks.insert(0, _Watcher())
        session.hooks["response"] = hooks
        return adapter

    def send(self, request: PreparedRequest, *args: Any, **kwargs: Any) -> Response:
        """Send, with the token where the rules and the redirect chain allow it."""
        url = str(request.url)
        proxy_of = _proxy_of(kwargs.get("proxies") or (args[4] if len(args) > 4 else None))
        hook = _chain_hook(request)
        if hook is None or hook.first == id(request):  # the chain's first request
            chain = self.auth.start(url, proxy_of)
            if hook is None:
                request.hooks["response"].append(_ChainHook(chain, id(request)))
            else:
                hook.chain = chain
            attachment, first = chain.attachment, True
        else:
            chain, first = hook.chain, False
            attachment = self.auth.hop(chain, url, proxy_of)
        if attachment is None:
            response: Response = super().send(request, *args, **kwargs)
        else:
            response = self._send(request, attachment, chain, first, *args, **kwargs)
        if response.status_code >= 300 and attachment is not None:  # a refusal, maybe
            answers = answers_of(response, self.auth)
            if not first:
                elsewhere = not same_origin(origin_key(url), chain.key)
                answers = [answers[-1]._replace(elsewhere=elsewhere)]
            report(self.auth, answers, error_for(response))
        return response

    def _carrying(
        self, request: PreparedRequest, attachment: Attachment, *args: Any, **kwargs: Any
    ) -> Response:
        """Send ``request`` carrying ``attachment``: in place, its headers swapped for a
        copy with the token while it is sent. ``response.request`` is the request itself,
        noting what it carried; the hops requests copies from it carry nothing of ours."""
        headers = request.headers
        request.headers = headers.copy()
        attach(request, attachment)
        try:
            response: Response = super().send(request, *args, **kwargs)
        finally:
            request.headers = headers
        return response

    def _send(
        self,
        request: PreparedRequest,
        attachment: Attachment,
        chain: Chain,
        first: bool,
        *args: Any,
        **kwargs: Any,
    ) -> Response:
        """Send with ``attachment``; retry a ``401 invalid_token`` once where the rules say so."""
        response = self._carrying(request, attachment, *args, **kwargs)
        if response.status_code != 401:
            return response
        newer = self.auth.retry_with(
            str(request.url),
            attachment,
            401,
            response.headers.get("Content-Type", ""),
            body_of(response),
            from_hop=not first,
            rewindable=rewindable(request),
        )
        if newer is None:
            return response
        response.content  # noqa: B018  (read the 401, so the connection can be reused)
        response.close()
        setattr(response, SENT_ATTRIBUTE, attachment)  # what the 401 refused
        chain.replace(newer)  # the hops that follow carry the new token
        retried = self._carrying(request, newer, *args, **kwargs)
        retried.history.append(response)
        return retried
