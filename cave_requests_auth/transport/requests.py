"""requests: ``CAVETokenAuth`` (``auth=``, ``session.auth``) and ``CAVEAuthAdapter`` (a prefix).

Translation only; every decision is :mod:`cave_requests_auth.core`'s. An auth object
is applied once, as a request is prepared: it sees the environment's proxies only, and
requests makes the hops. An adapter sees each request as it is sent, hops included,
with the session's proxies; it keeps the chain in a response hook the hops share.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, cast

from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from requests.exceptions import InvalidSchema
from requests.utils import select_proxy

from .. import exchange
from ..core import Credentials
from ..urls import origin_key, same_origin
from ..wire import COOKIE_NAME, PROGRAMMATIC, Chain, bearer_of, environment_proxy, no_proxy

if TYPE_CHECKING:
    from collections.abc import Iterable
    from http.cookiejar import Cookie

    from requests import PreparedRequest, Response, Session

    from ..wire import Attachment

__all__ = ["CAVEAuthAdapter", "CAVETokenAuth"]

_RETRIED_ATTRIBUTE = "_cave_retried"
_FIRST_ATTRIBUTE = "_cave_first"  # on a chain's first request: its hook (a hop, a copy, has none)


def _newer(auth: Credentials, response: Response, sent: Attachment, from_hop: bool) -> Any:
    """The token to send a ``401`` request with once more (:meth:`.core.Credentials.retry_with`)."""
    if response.status_code != 401:
        return None
    request, body = response.request, exchange.body_of(response)
    kind, rewindable = response.headers.get("Content-Type", ""), exchange.rewindable(request)
    return auth.retry_with(str(request.url), sent, 401, kind, body, from_hop=from_hop,
                           rewindable=rewindable)  # fmt: skip


def _again(refused: Response, sent: Attachment, send: Callable[[], Response]) -> Response:
    """Read and close the 401 (noting what it refused), send again, keep it in the history."""
    refused.content  # noqa: B018  (read, so that the connection can be reused)
    refused.close()
    setattr(refused, exchange.SENT_ATTRIBUTE, sent)  # the request itself will carry the new one
    response = send()
    response.history.append(refused)
    return response


class CAVETokenAuth(Credentials, AuthBase):
    """Attach a CAVE token to requests: ``requests.get(url, auth=CAVETokenAuth())``.

    Args:
        token: the token itself; otherwise it is looked up for each request's
            host (``CAVE_TOKEN``, ``CAVE_TOKEN_FILE``, then the secret files; see
            :func:`find_token`).
        server_address: the auth server (default :data:`DEFAULT_SERVER_ADDRESS`);
            its ``<netloc>-cave-secret.json`` is searched before the default file,
            and its pages are named in messages.
        token_file: read the token from this file only.
        token_key: the key in the JSON files (default ``"token"``).
        secrets_dir: the folder of the secret files.
        hosts: only these hosts get the token (``"example.org"``, ``"*.example.org"``
            for its subdomains, or an IP address); others go out untouched.
            ``None`` (default): every host the auth is used with.
        cookie: also send the token as the ``middle_auth_token`` cookie of that
            request (default ``False``: CAVE services read the Bearer header first,
            and tools that redact ``Authorization`` do not redact a ``Cookie``).
        allow_insecure_http: allow plain ``http://`` to hosts that are not loopback
            (and to loopback through a proxy).
        required: where no token is found, raise :class:`TokenNotFoundError`
            before sending (default), or send without one, marked ``X-Requested-With:
            XMLHttpRequest`` (a CAVE service then answers 401, not a login redirect).
        raise_on_auth_error: raise :class:`AuthResponseError` from the request
            call when the service refuses the token (otherwise a warning is
            logged once per origin and kind of failure, and the response returned).

    The auth sees the environment's proxies, not a ``proxies=`` argument or
    ``session.proxies``: plain http to loopback through those is seen only by
    :meth:`CAVEAuthAdapter.mount`.

    Raises:
        InvalidTokenError: ``token`` is not a bearer token.
        TypeError, ValueError: ``hosts``, ``token_key`` or ``server_address`` are malformed.
    """

    _UNPICKLED = (*Credentials._UNPICKLED, "_hook", "_marked")

    def _setup(self) -> None:
        super()._setup()
        self._hook, self._marked = self.handle_response, self._handle_marked

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        attachment = self.attachment(request.url, environment_proxy)  # type: ignore[arg-type]
        if attachment is not None:
            header, hook = attachment.header, self._hook
            if header is None:
                exchange.attach(request, attachment)  # no token found: X-Requested-With only
                hook = self._marked
            else:  # attach(), inlined: the hot path
                headers = request.headers
                headers["Authorization"] = header
                if attachment.cookie is not None:
                    exchange.add_cookie(headers, attachment.cookie)
                request._cave_sent = attachment  # type: ignore[attr-defined]  # SENT_ATTRIBUTE
            hooks = request.hooks["response"]
            if hook not in hooks:
                hooks.append(hook)
        return request

    def _handle_marked(self, response: Response, **kwargs: Any) -> Response:
        """A chain marked X-Requested-With: a hop leaving its origin, and later ones, go bare."""
        if exchange.leaves(response.request, response):
            response.request.headers.pop(PROGRAMMATIC[0], None)
        return self.handle_response(response, **kwargs)

    def handle_response(self, response: Response, **kwargs: Any) -> Response:
        """The response hook: retry a ``401 invalid_token`` once, report refusals."""
        status = response.status_code
        if status < 300 or status >= 500 or (status < 400 and not response.is_redirect):
            return response
        request = response.request
        sent = getattr(request, exchange.SENT_ATTRIBUTE, None)  # None on hops requests made
        if sent is not None and status == 401 and not getattr(request, _RETRIED_ATTRIBUTE, False):
            newer = _newer(self, response, sent, from_hop=False)
            if newer is not None:
                # Attached in place: requests copies the hops that follow from this request.
                exchange.attach(request, newer)
                setattr(request, _RETRIED_ATTRIBUTE, True)
                connection = response.connection
                response = _again(response, sent, lambda: connection.send(request, **kwargs))
                response.request = request
        # On a hop requests made (no note of ours): it strips Authorization on a change of host.
        elsewhere = None if sent is not None else "Authorization" not in request.headers
        exchange.report_response(self, response, elsewhere)
        return response


class _ChainHook:
    """A response hook holding a request's chain: it sees where each hop went."""

    __slots__ = ("chain",)

    def __init__(self, chain: Chain, first: PreparedRequest) -> None:
        self.chain = chain
        setattr(first, _FIRST_ATTRIBUTE, self)

    def began(self, request: PreparedRequest) -> bool:
        return getattr(request, _FIRST_ATTRIBUTE, None) is self

    def __call__(self, response: Response, **kwargs: Any) -> Response:
        if not self.began(response.request):  # a hop: where did it go?
            self.chain.saw(str(response.url or response.request.url))
        return response


def _chain_hook(request: PreparedRequest) -> _ChainHook | None:
    return next((h for h in request.hooks["response"] if type(h) is _ChainHook), None)


def _watch(request: PreparedRequest) -> None:
    """Give a chain that began under another adapter a chain without a token."""
    if _chain_hook(request) is None:
        chain = Chain(origin_key(str(request.url)), None)
        request.hooks["response"].append(_ChainHook(chain, request))


def _watching(response: Response, **kwargs: Any) -> Response:
    """In ``session.hooks``: it sees the answers to what the session prepares."""
    _watch(response.request)
    return response


class _WatchedRebuild:
    """In place of ``session.rebuild_auth``, which requests calls for every redirect hop."""

    def __init__(self, rebuild: Callable[[PreparedRequest, Response], None]) -> None:
        self.rebuild = rebuild

    def __call__(self, hop: PreparedRequest, response: Response) -> None:
        _watch(response.request)  # the request before the hop, whose hooks the hop shares
        self.rebuild(hop, response)


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

    def __init__(self, auth: Credentials | None = None, **http_adapter_kwargs: Any) -> None:
        self.auth = auth if auth is not None else CAVETokenAuth()
        super().__init__(**http_adapter_kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.auth!r})"

    @classmethod
    def mount(
        cls, session: Session, prefix: str, auth: Credentials | None = None
    ) -> CAVEAuthAdapter:
        """Mount an adapter for ``prefix`` on a session another library made; return it.

        Keeps the replaced adapter's ``max_retries``, ``pool_maxsize`` and ``pool_block``;
        removes CAVE credentials set for every host (a Bearer ``session.headers``,
        ``middle_auth_token`` jar cookies); ``"https://host"`` gets a ``/``. So that a
        redirect into ``prefix`` from elsewhere gets no token, it watches every chain (a
        ``session.hooks`` hook and a wrapped ``session.rebuild_auth``, which a pickle or
        ``copy.copy`` of the session does not keep: mount again on such a session).
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
            kwargs.update((f"pool_{k}", pool_kw[k]) for k in ("maxsize", "block") if k in pool_kw)
        adapter = cls(auth, **kwargs)
        session.mount(prefix, adapter)
        if bearer_of(session.headers.get("Authorization")) is not None:
            del session.headers["Authorization"]
        for cookie in list(cast("Iterable[Cookie]", session.cookies)):
            if cookie.name == COOKIE_NAME:
                session.cookies.clear(cookie.domain, cookie.path, cookie.name)
        hooks = session.hooks.get("response")
        hooks = [] if hooks is None else [hooks] if callable(hooks) else list(hooks)
        if _watching not in hooks:
            hooks.insert(0, _watching)
        session.hooks["response"] = hooks
        if not isinstance(session.rebuild_auth, _WatchedRebuild):
            session.rebuild_auth = _WatchedRebuild(session.rebuild_auth)  # type: ignore[method-assign]
        return adapter

    def send(self, request: PreparedRequest, *args: Any, **kwargs: Any) -> Response:
        """Send, with the token where the rules and the redirect chain allow it."""
        url = str(request.url)
        proxies = kwargs.get("proxies") or (args[4] if len(args) > 4 else None)
        proxy_of = (lambda url: select_proxy(url, proxies)) if proxies else no_proxy

        hook = _chain_hook(request)
        first = hook is None or hook.began(request)  # the chain's first request?
        if hook is None or first:
            chain = self.auth.start(url, proxy_of)
            if hook is None:
                request.hooks["response"].append(_ChainHook(chain, request))
            else:
                hook.chain = chain
            attachment = chain.attachment
        else:
            chain = hook.chain
            attachment = self.auth.hop(chain, url, proxy_of)
        if attachment is None:
            return super().send(request, *args, **kwargs)
        response = self._carrying(request, attachment, *args, **kwargs)
        newer = _newer(self.auth, response, attachment, not first)
        if newer is not None:
            chain.replace(newer)  # the hops that follow carry the new token
            response = _again(
                response, attachment, lambda: self._carrying(request, newer, *args, **kwargs)
            )
        if response.status_code >= 300:  # a refusal, maybe
            elsewhere = None if first else not same_origin(origin_key(url), chain.key)
            exchange.report_response(self.auth, response, elsewhere)
        return response

    def _carrying(
        self, request: PreparedRequest, attachment: Attachment, *args: Any, **kwargs: Any
    ) -> Response:
        """Send ``request`` carrying ``attachment``: in place, its headers swapped for a
        copy with the token while it is sent. ``response.request`` is the request itself,
        noting what it carried; the hops requests copies from it carry nothing of ours."""
        headers = request.headers
        request.headers = headers.copy()
        exchange.attach(request, attachment)
        try:
            return super().send(request, *args, **kwargs)
        finally:
            request.headers = headers
