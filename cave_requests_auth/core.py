"""The rules, decided here once for every way in. No HTTP library is imported.

A binding (requests, urllib3, …) translates its library's request and response
into the small values below and does what the answer says; it decides nothing.

- **Which token goes to a URL** (:meth:`Credentials.attachment`): ``hosts=``
  (others are left alone), then the transport: ``https``, or plain ``http``
  only to a loopback host, and in either case never where a proxy would see
  the request (``https`` through a CONNECT tunnel is fine), unless
  ``allow_insecure_http=True``; then the token of :func:`.lookup.lookup`.
  Cached per origin; a steady stream of requests reads no file.
- **Which redirect hop may carry it** (:class:`Chain`): the one the chain's first
  request got, only on hops to that same origin, and only while no hop has
  left it: once a chain has been elsewhere, the other origin chose the method,
  path and body of what follows.
- **When a 401 is retried** (:meth:`Credentials.retry_with`): once, for a
  ``401 invalid_token`` to the first request, never for an explicit token, and
  only where the token source now holds another token.
- **Which refusals are reported, and how often**: :mod:`.refusals` says what an
  answer means; :meth:`Credentials.first_report` bounds the warnings.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from .errors import CAVEAuthError, InsecureTransportError, TokenNotFoundError
from .lookup import TokenPlaces, lookup, secrets_folder
from .tokens import DEFAULT_TOKEN_KEY, TokenSource, check_token
from .urls import HostPatterns, Origin, origin_key, parse_origin, same_origin
from .wire import Attachment, ProxyOf, error_object, no_proxy

if TYPE_CHECKING:
    import os
    from collections.abc import Iterable

__all__ = ["Chain", "Credentials"]

logger = logging.getLogger("cave_requests_auth")

MAX_CACHED_ORIGINS = 1024
"""Origins whose decision is kept; past that the oldest goes (files are cached below it)."""
MAX_REPORTED = 1024
"""(origin, code) pairs already warned about; past that the oldest goes."""
MAX_REFUSED = 16
"""Tokens a retry replaced, kept to be masked in later messages."""


class Chain:
    """One request and its redirect hops: where it began, what it got, whether it left.

    A binding makes one per request it sends (``Credentials.start``) and asks
    it about every hop (:meth:`hop`), and tells it of hops it did not send
    itself (:meth:`saw`), so the rule holds whatever sent them.
    """

    __slots__ = ("attachment", "hops", "key", "last", "left", "replaced")

    def __init__(self, key: str, attachment: Attachment | None) -> None:
        self.key = key
        self.attachment = attachment
        self.left = False
        self.hops = 0
        self.last: str | None = None
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
        self.last = url
        if not self.left and not same_origin(origin_key(url), self.key):
            self.left = True

    def hop(self, url: str) -> Attachment | None:
        """The attachment for a hop to ``url``: the first request's, or none."""
        self.hops += 1
        self.saw(url)
        return None if self.left else self.attachment

    def __repr__(self) -> str:
        return f"Chain({self.key!r}, left={self.left})"


def _insecure(origin: Origin, proxy: str | None) -> InsecureTransportError:
    if proxy is not None:
        through = parse_origin(proxy)  # never its user info
        return InsecureTransportError(
            f"Refusing to send a CAVE token to {origin} through the proxy "
            f"{through or '(configured)'}, which would see it: use https:// (through a "
            "CONNECT tunnel), or connect without the proxy (with requests, "
            f"NO_PROXY={origin.name})."
        )
    return InsecureTransportError(
        f"Refusing to send a CAVE token to {origin} over plain {origin.scheme}: "
        "use https:// (or allow plain http for a trusted network)."
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
        self.places = TokenPlaces.of(server_address, token_file, token_key, secrets_dir)
        self.token = token
        self.server_address = self.places.server_address
        self.token_file = self.places.token_file
        self.token_key = token_key
        self.secrets_dir = self.places.secrets_dir
        if isinstance(hosts, (str, bytes)):
            raise TypeError(
                f"hosts must be a list of host names, such as [{hosts!r}], not a string."
            )
        self.hosts = None if hosts is None else list(hosts)
        self.patterns = None if self.hosts is None else HostPatterns(self.hosts)
        self.cookie = bool(cookie)
        self.allow_insecure_http = bool(allow_insecure_http)
        self.required = bool(required)
        self.raise_on_auth_error = bool(raise_on_auth_error)
        self._setup()

    def _setup(self) -> None:
        """The state that is not pickled: the lock and the caches."""
        self._lock = threading.Lock()
        self._decisions: dict[str, Attachment | None] = {}
        self._reported: dict[tuple[str, str], None] = {}
        self._refused: dict[str, None] = {}  # tokens a retry replaced, newest last

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for name in ("_lock", "_decisions", "_reported", "_refused"):
            del state[name]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._setup()

    def __bool__(self) -> bool:
        return True  # requests skips an auth that is false

    def __repr__(self) -> str:
        if self.token is not None:
            where = "token=<hidden>"
        elif self.token_file is not None:
            where = f"token_file={self.token_file!r}, token_key={self.token_key!r}"
        else:
            where = f"secrets_dir={secrets_folder(self.secrets_dir)!r}"
            if self.token_key != DEFAULT_TOKEN_KEY:
                where += f", token_key={self.token_key!r}"
            if self.server_address is not None:
                where += f", server_address={self.server_address!r}"
        if self.hosts is not None:
            where += f", hosts={self.hosts!r}"
        return f"{type(self).__name__}({where})"

    # -- which token goes to a URL ---------------------------------------------

    def attachment(
        self,
        url: str,
        proxy_of: ProxyOf = no_proxy,
        *,
        key: str | None = None,
        forwards_https: bool = False,
    ) -> Attachment | None:
        """What a request to ``url`` carries; ``None`` where these credentials do not apply.

        Args:
            url: where the request goes.
            proxy_of: the proxy that would see a plain ``http`` request to a URL.
            key: ``origin_key(url)``, where the caller has it already.
            forwards_https: the binding sends ``https`` through a proxy that sees
                it (urllib3's ``use_forwarding_for_https``): ask ``proxy_of`` for
                ``https`` too.

        Raises:
            InsecureTransportError: plain http to a host that is not loopback, or
                where a proxy would see the token; a URL without a host.
            TokenNotFoundError, InvalidTokenError, TokenFileError: from the lookup.
        """
        if key is None:
            key = origin_key(url)
        attachment = self._decisions.get(key, _UNDECIDED)
        if attachment is _UNDECIDED:
            attachment = self._decide(key)
        if attachment is None or not (attachment.direct_only or forwards_https):
            return attachment
        if attachment.direct_only or (
            attachment.header is not None and not self.allow_insecure_http
        ):
            proxy = proxy_of(url)
            if proxy is not None:
                origin = parse_origin(key)
                assert origin is not None  # _decide checked it
                raise _insecure(origin, proxy)
        return attachment

    def _decide(self, key: str) -> Attachment | None:
        origin = parse_origin(key)
        if origin is None:
            raise InsecureTransportError(
                "Refusing to attach a CAVE token to a URL without a host; give a full https:// URL."
            )
        if self.patterns is not None and not self.patterns.matches(origin):
            attachment = None
        else:
            plain = origin.scheme != "https" and not self.allow_insecure_http
            if plain and (origin.scheme != "http" or not origin.is_loopback):
                raise _insecure(origin, None)
            source = self._find(origin)
            attachment = Attachment(
                source,
                self.server_address,
                cookie=self.cookie,
                direct_only=source is not None and plain,
            )
        with self._lock:
            _put_bounded(self._decisions, key, attachment, MAX_CACHED_ORIGINS)
        return attachment

    def _find(self, origin: Origin) -> TokenSource | None:
        try:
            source = lookup(origin, self.places, self.token)
        except TokenNotFoundError:
            if self.required:
                raise
            logger.debug("No CAVE token for %s; sending without one.", origin)
            return None
        logger.debug("CAVE token for %s from %s.", origin, source)
        return source

    def decided(self, url: str) -> bool:
        """Whether what a request to ``url`` carries is known without reading a file."""
        return self.token is not None or origin_key(url) in self._decisions

    def sent_with(self, url: str, authorization: str | None) -> Attachment | None:
        """Which attachment of these credentials a request to ``url`` carried, if any."""
        if authorization is None:
            return None
        attachment = self._decisions.get(origin_key(url))
        return attachment if attachment is not None and attachment.header == authorization else None

    def start(
        self, url: str, proxy_of: ProxyOf = no_proxy, *, forwards_https: bool = False
    ) -> Chain:
        """A chain for a request to ``url``, holding what that request carries."""
        key = origin_key(url)
        return Chain(key, self.attachment(url, proxy_of, key=key, forwards_https=forwards_https))

    def hop(
        self, chain: Chain, url: str, proxy_of: ProxyOf = no_proxy, *, forwards_https: bool = False
    ) -> Attachment | None:
        """What a redirect hop of ``chain`` to ``url`` carries (see :class:`Chain`)."""
        attachment = chain.hop(url)
        if attachment is None or attachment.header is None:
            return attachment
        checked = attachment.direct_only or (forwards_https and not self.allow_insecure_http)
        return None if checked and proxy_of(url) is not None else attachment

    # -- a 401: retry once with a reloaded token --------------------------------

    def reloaded(self, url: str, sent: Attachment) -> Attachment | None:
        """After ``sent`` was refused: the token source's newer token for ``url``, if any.

        Looks at the source again (another process may have saved a new token),
        unless another thread already has. ``None`` where the token is unchanged
        or can no longer be found.
        """
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
        """The token to send the request with once more, or ``None`` for no retry.

        Args:
            url: the request's URL (the first of its chain).
            sent: what the request carried.
            status, content_type, body: the answer (the body bounded, as
                :data:`.wire.MAX_ERROR_BODY` says).
            from_hop: the answer came from a redirect hop, not the request itself.
            rewindable: the body can be sent again (none, bytes, or a seekable file).
        """
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
