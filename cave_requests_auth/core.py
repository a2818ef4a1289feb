"""The rules, decided here once for every way in. No HTTP library is imported.

A binding translates its library's request and response into these values and
does what the answer says. What each rule decides:

- **Which token goes to a URL** (:meth:`Credentials.attachment`): none outside
  ``hosts=``; ``https``, or plain ``http`` only to a loopback host, and never
  where a proxy would see it (unless ``allow_insecure_http=True``); then the
  token of :func:`.lookup.lookup`, cached per origin (steady state reads no file).
- **Which redirect hop carries it** (:class:`Chain`): the first request's, on
  hops to that same origin, while no hop has left it (once a chain has been
  elsewhere, the other origin chose the method, path and body of what follows).
- **When a 401 is retried** (:meth:`Credentials.retry_with`): once, for a
  ``401 invalid_token`` to the first request, never for an explicit token, and
  only where the source now holds another token.
- **How often a refusal is reported** (:meth:`Credentials.first_report`).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from .errors import CAVEAuthError, InsecureTransportError, TokenNotFoundError
from .lookup import TokenPlaces, lookup
from .tokens import DEFAULT_TOKEN_KEY, TokenSource, check_token
from .urls import HostPatterns, Origin, origin_key, parse_origin
from .wire import Attachment, Chain, ProxyOf, environment_proxy, error_object, no_proxy

if TYPE_CHECKING:
    import os
    from collections.abc import Iterable

__all__ = ["Chain", "Credentials"]  # Chain: from .wire, where the bindings hold it

logger = logging.getLogger("cave_requests_auth")

MAX_CACHED_ORIGINS = 1024  # origins whose decision is kept (files are cached below it)
MAX_REPORTED = 1024  # (origin, code) pairs already warned about
MAX_REFUSED = 16  # tokens a retry replaced, kept to be masked in later messages


def _insecure(origin: Origin, proxy: str | None) -> InsecureTransportError:
    if proxy is None:
        return InsecureTransportError(
            f"Refusing to send a CAVE token to {origin} over plain {origin.scheme}: "
            "use https:// (or allow plain http for a trusted network)."
        )
    return InsecureTransportError(
        f"Refusing to send a CAVE token to {origin} through the proxy "
        f"{parse_origin(proxy) or '(configured)'}, which would see it: use https:// (through "
        f"a CONNECT tunnel), or connect without the proxy (with requests, NO_PROXY={origin.name})."
    )


def _put_bounded(table: dict[Any, Any], key: Any, value: Any, limit: int) -> None:
    """``table[key] = value``, the oldest entry going first where ``table`` is full."""
    table.pop(key, None)
    if len(table) >= limit:
        table.pop(next(iter(table)))
    table[key] = value


_UNDECIDED = Attachment(None, None)  # not in the cache (None there: does not apply)


class Credentials:
    """A token configuration and every decision about it; the bindings subclass it.

    Arguments as :class:`cave_requests_auth.CAVETokenAuth` documents them.
    """

    def __init__(
        self,
        token: str | None = None,
        *,
        server_address: str | None = None,
        token_file: str | os.PathLike[str] | None = None,
        token_key: str = DEFAULT_TOKEN_KEY,
        secrets_dir: str | os.PathLike[str] | None = None,
        hosts: Iterable[str] | None = None,
        cookie: bool = False,
        allow_insecure_http: bool = False,
        required: bool = True,
        raise_on_auth_error: bool = False,
    ) -> None:
        if token is not None:
            token = check_token(token, "the token= argument")
        if isinstance(hosts, (str, bytes)):
            raise TypeError(
                f"hosts must be a list of host names, such as [{hosts!r}], not a string."
            )
        self.places = TokenPlaces.of(server_address, token_file, token_key, secrets_dir)
        self.token = token
        self.server_address = self.places.server_address
        self.token_file = self.places.token_file
        self.token_key = token_key
        self.secrets_dir = self.places.secrets_dir
        self.hosts = None if hosts is None else list(hosts)
        self.patterns = None if self.hosts is None else HostPatterns(self.hosts)
        self.cookie = bool(cookie)
        self.allow_insecure_http = bool(allow_insecure_http)
        self.required = bool(required)
        self.raise_on_auth_error = bool(raise_on_auth_error)
        self._setup()

    _UNPICKLED: tuple[str, ...] = ("_lock", "_decisions", "_reported", "_refused")

    def _setup(self) -> None:
        """The state that is not pickled: the lock and the caches."""
        self._lock = threading.Lock()
        self._decisions: dict[str, Attachment | None] = {}
        self._reported: dict[tuple[str, str], None] = {}
        self._refused: dict[str, None] = {}  # tokens a retry replaced, newest last

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in self._UNPICKLED}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._setup()

    def __bool__(self) -> bool:
        return True  # requests skips an auth that is false

    def __repr__(self) -> str:
        where = "token=<hidden>" if self.token is not None else str(self.places)
        hosts = "" if self.hosts is None else f", hosts={self.hosts!r}"
        return f"{type(self).__name__}({where}{hosts})"

    # -- which token goes to a URL ---------------------------------------------

    def attachment(
        self, url: str, proxy_of: ProxyOf = no_proxy, *, forwards_https: bool = False
    ) -> Attachment | None:
        """What a request to ``url`` carries; ``None`` where these credentials do not apply.

        ``proxy_of`` names the proxy that would see a plain ``http`` request;
        ``forwards_https``: the binding sends ``https`` through one that sees it too.
        Raises :class:`InsecureTransportError` (plain http to a host that is not
        loopback, where a proxy would see the token, a URL without a host), and the
        lookup's errors.
        """
        # First a probe of the cache with the URL up to its first "/" past "https://":
        # a key found there holds its whole authority, so it is this URL's origin.
        end = url.find("/", 8)
        attachment = self._decisions.get(url[:end] if end > 0 else url, _UNDECIDED)
        if attachment is _UNDECIDED:
            key = origin_key(url)
            attachment = self._decisions.get(key, _UNDECIDED)
            if attachment is _UNDECIDED:
                attachment = self._decide(key)
        if attachment is None or not (attachment.direct_only or forwards_https):
            return attachment
        if self._seen_by_proxy(attachment, url, proxy_of, forwards_https):
            origin = parse_origin(url)
            assert origin is not None  # _decide checked it
            raise _insecure(origin, proxy_of(url))
        return attachment

    def attachment_for(self, url: str, source: TokenSource | None = None) -> Attachment | None:
        """:meth:`attachment`, with the environment's proxies as requests applies them.

        ``source``: a token to send in place of the one found (to check a token
        before it is saved), named in any refusal. Raises as a request would.
        """
        found = self.attachment(url, environment_proxy)
        if source is None or found is None or found.source is None:
            return found
        return Attachment(source, found.server, direct_only=found.direct_only)

    def headers_for(self, url: str) -> dict[str, str]:
        """The headers a request to ``url`` gets (:meth:`attachment_for`): ``{}`` where none."""
        return attachment.headers() if (attachment := self.attachment_for(url)) else {}

    def _seen_by_proxy(self, sent: Attachment, url: str, proxy_of: ProxyOf, https: bool) -> bool:
        """Whether a proxy would see the token ``sent`` carries to ``url``."""
        direct = sent.direct_only
        if proxy_of is no_proxy or not (direct or (sent.header and not self.allow_insecure_http)):
            return False
        return (direct or https) and proxy_of(url) is not None

    def _decide(self, key: str) -> Attachment | None:
        origin = parse_origin(key)
        if origin is None:
            raise InsecureTransportError(
                "Refusing to attach a CAVE token to a URL without a host; give a full https:// URL."
            )
        attachment = None
        if self.patterns is None or self.patterns.matches(origin):
            plain = origin.scheme != "https" and not self.allow_insecure_http
            if plain and (origin.scheme != "http" or not origin.is_loopback):
                raise _insecure(origin, None)
            try:
                source = lookup(origin, self.places, self.token)
                searched: tuple[str, ...] = ()
                logger.debug("CAVE token for %s from %s.", origin, source)
            except TokenNotFoundError as error:
                if self.required:
                    raise
                source, searched = None, error.searched
                logger.debug("No CAVE token for %s; sending without one.", origin)
            direct_only = source is not None and plain
            attachment = Attachment(source, self.server_address, cookie=self.cookie,
                                    direct_only=direct_only, searched=searched)  # fmt: skip
        with self._lock:
            _put_bounded(self._decisions, key, attachment, MAX_CACHED_ORIGINS)
        return attachment

    def decided(self, url: str) -> bool:
        """Whether what a request to ``url`` carries is known without reading a file."""
        return self.token is not None or origin_key(url) in self._decisions

    def sent_with(self, url: str, authorization: str | None) -> Attachment | None:
        """Which attachment of these credentials a request to ``url`` carried, if any."""
        found = self._decisions.get(origin_key(url))
        return found if found and authorization and found.header == authorization else None

    def start(
        self, url: str, proxy_of: ProxyOf = no_proxy, *, forwards_https: bool = False
    ) -> Chain:
        """A chain for a request to ``url``, holding what that request carries."""
        attachment = self.attachment(url, proxy_of, forwards_https=forwards_https)
        return Chain(origin_key(url), attachment)

    def hop(
        self, chain: Chain, url: str, proxy_of: ProxyOf = no_proxy, *, forwards_https: bool = False
    ) -> Attachment | None:
        """What a redirect hop of ``chain`` to ``url`` carries: the first request's, on
        its origin while the chain never left it; none through a proxy that would see it."""
        hop = chain.hop(url)
        return None if hop and self._seen_by_proxy(hop, url, proxy_of, forwards_https) else hop

    # -- a 401: retry once with a reloaded token --------------------------------

    def reloaded(self, url: str, sent: Attachment) -> Attachment | None:
        """After ``sent`` was refused: the source's newer token for ``url``, if any (read
        again, another process may have saved one, unless another thread already has)."""
        key = origin_key(url)
        current = self._decisions.get(key)
        if current is None or current.header == sent.header:
            with self._lock:
                self._decisions.pop(key, None)
            try:
                current = self._decide(key)
            except CAVEAuthError as error:
                logger.warning("Cannot reload the CAVE token: %s", error)
                return None
        if current is None or current.header in (None, sent.header):
            return None
        return current

    def retry_with(
        self,
        url: str,
        sent: Attachment | None,
        status: int,
        content_type: str,
        body: bytes,
        *,
        from_hop: bool,
        rewindable: bool,
    ) -> Attachment | None:
        """The token to send the request (to ``url``, with ``sent``) once more with, or
        ``None``. ``from_hop``: the answer came from a redirect hop; ``rewindable``: the
        body can be sent again (none, bytes, or a seekable file)."""
        if status != 401 or from_hop or not rewindable:
            return None
        if sent is None or sent.source is None or sent.source.kind == "explicit":
            return None
        error = error_object(content_type, body)
        if error is None or error["error"] != "invalid_token":
            return None
        newer = self.reloaded(url, sent)
        if newer is not None:
            with self._lock:
                _put_bounded(self._refused, sent.source.token, None, MAX_REFUSED)
            logger.info(
                "CAVE token from %s was refused; retrying with %s.", sent.source, newer.source
            )
        return newer

    def known_tokens(self) -> set[str]:
        """Every token these credentials hold or have replaced: masked in any message."""
        with self._lock:
            known = {a.source.token for a in self._decisions.values() if a and a.source}
            known.update(self._refused)
        if self.token is not None:
            known.add(self.token)
        return known

    def first_report(self, url: str, code: str) -> bool:
        """Whether a refusal ``code`` from ``url``'s origin is new (warn once each)."""
        key = (origin_key(url), code)
        with self._lock:
            if key in self._reported:
                return False
            _put_bounded(self._reported, key, None, MAX_REPORTED)
        return True
