"""``CAVETokenAuth``: the token on the requests it applies to, and on no other.

For each request the auth decides, once per origin (scheme, host and port):

- whether it applies: ``hosts=`` (an allow-list) lets others go out untouched;
- whether the transport is safe: plain ``http://`` only to loopback, unless
  ``allow_insecure_http=True`` (otherwise :class:`InsecureTransportError`);
- which token: the lookup of :mod:`cave_requests_auth.tokens`, for that host.

The decision is cached, so a steady stream of requests reads no file. The token
goes in ``Authorization: Bearer …`` and, with ``cookie=True``, as
``middle_auth_token`` merged into that request's ``Cookie`` header (never into
a cookie jar, which would send it to every host).

A response hook reads the answer: on a ``401 invalid_token`` the token source is
looked at again and, where it now holds another token, the request is sent once
more (as requests' ``HTTPDigestAuth.handle_401`` does); other auth failures are
logged once per host and code, or raised with ``raise_on_auth_error=True``.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
from typing import TYPE_CHECKING, Any

from requests.auth import AuthBase
from requests.exceptions import UnrewindableBodyError
from requests.structures import CaseInsensitiveDict
from requests.utils import rewind_body

from .answers import SENT_ATTRIBUTE, Attachment, describe_failure, error_code
from .errors import CAVEAuthError, InsecureTransportError, TokenNotFoundError
from .lookup import TokenPlaces, lookup, secrets_folder
from .tokens import DEFAULT_TOKEN_KEY, check_token
from .urls import Origin, normalize_server_address, origin_key, parse_origin

if TYPE_CHECKING:
    from collections.abc import Iterable

    from requests import PreparedRequest, Response

__all__ = ["CAVETokenAuth"]

logger = logging.getLogger("cave_requests_auth")

COOKIE_NAME = "middle_auth_token"
_MAX_CACHED_ORIGINS = 256
_SKIP = Attachment(None, None)  # the auth does not apply: leave the request alone
_RETRIED_ATTRIBUTE = "_cave_retried"  # on the one re-send a request may get
_NOT_CAVE_ANSWERS = ("forbidden", "unauthorized")  # a 401/403 without CAVE's JSON


def _host_patterns(hosts: Iterable[str] | None) -> tuple[frozenset[str], tuple[str, ...]] | None:
    """``(exact names, wildcard suffixes)`` from ``hosts=``, checked."""
    if hosts is None:
        return None
    exact: set[str] = set()
    suffixes: list[str] = []
    for entry in hosts:
        if not isinstance(entry, str):
            raise TypeError(f"hosts entries must be strings, not {type(entry).__name__}.")
        name = entry.strip().lower().rstrip(".")
        if name.startswith("[") and name.endswith("]"):
            name = name[1:-1]
        wildcard = name.startswith("*.")
        bare = name[2:] if wildcard else name
        try:
            is_ip = ipaddress.ip_address(bare) is not None
        except ValueError:
            is_ip = False
        if not bare or (not is_ip and any(c in bare for c in "/:@*?#[] ")):
            raise ValueError(
                f"hosts entry {entry!r} is not a host name; give names such as "
                "'minnie.example.org' or '*.example.org' (no scheme, port or path)."
            )
        if wildcard:
            suffixes.append("." + bare)
        else:
            exact.add(bare)
    return frozenset(exact), tuple(suffixes)


def merge_cookie(existing: str | None, cookie: str) -> str:
    """A ``Cookie`` header value with ``cookie`` replacing any ``middle_auth_token``."""
    if not existing:
        return cookie
    kept = [
        part.strip()
        for part in existing.split(";")
        if part.strip() and part.split("=", 1)[0].strip() != COOKIE_NAME
    ]
    return "; ".join([*kept, cookie])


class CAVETokenAuth(AuthBase):
    """Attach a CAVE token to requests: ``requests.get(url, auth=CAVETokenAuth())``.

    Args:
        token: the token itself; otherwise it is looked up for each request's
            host (``CAVE_TOKEN``, then the secret files; see :func:`find_token`).
        server_address: the auth server (default :data:`DEFAULT_SERVER_ADDRESS`);
            its ``<netloc>-cave-secret.json`` is searched before the default file,
            and its pages are named in messages.
        token_file: read the token from this file only.
        token_key: the key in the JSON files (default ``"token"``).
        secrets_dir: the folder of the secret files.
        hosts: only these hosts get the token (``"example.org"``, or
            ``"*.example.org"`` for its subdomains); others go out untouched.
            ``None`` (default): every host the auth is used with.
        cookie: also send the token as the ``middle_auth_token`` cookie of
            that request.
        allow_insecure_http: allow plain ``http://`` to hosts that are not loopback.
        required: where no token is found, raise :class:`TokenNotFoundError`
            before sending (default), or send the request without one.
        raise_on_auth_error: raise :class:`AuthResponseError` from the request
            call when the service refuses the token (otherwise a warning is
            logged once per host and kind of failure, and the response returned).

    Raises:
        InvalidTokenError: ``token`` is not a bearer token.
        TypeError, ValueError: ``hosts``, ``token_key`` or ``server_address`` are malformed.
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
        cookie: bool = True,
        allow_insecure_http: bool = False,
        required: bool = True,
        raise_on_auth_error: bool = False,
    ) -> None:
        if token is not None:
            token = check_token(token, "the token= argument")
        if server_address is not None:
            server_address = normalize_server_address(server_address)
        self._places = TokenPlaces.of(server_address, token_file, token_key, secrets_dir)
        self.token = token
        self.server_address = server_address
        self.token_file = None if token_file is None else os.fspath(token_file)
        self.token_key = token_key
        self.secrets_dir = None if secrets_dir is None else os.fspath(secrets_dir)
        if isinstance(hosts, (str, bytes)):
            raise TypeError(
                f"hosts must be a list of host names, such as [{hosts!r}], not a string."
            )
        self.hosts = None if hosts is None else list(hosts)
        self._patterns = _host_patterns(self.hosts)
        self.cookie = bool(cookie)
        self.allow_insecure_http = bool(allow_insecure_http)
        self.required = bool(required)
        self.raise_on_auth_error = bool(raise_on_auth_error)
        self._setup()

    def _setup(self) -> None:
        """The state that is not pickled: lock, caches, the bound hook."""
        self._lock = threading.Lock()
        self._attachments: dict[str, Attachment] = {}
        self._warned: set[tuple[str, str]] = set()
        self._hook = self.handle_response

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for name in ("_lock", "_attachments", "_warned", "_hook"):
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

    # -- deciding, per origin ------------------------------------------------

    def _applies_to(self, origin: Origin) -> bool:
        if self._patterns is None:
            return True
        exact, suffixes = self._patterns
        host = origin.name.strip("[]")
        if host in exact:
            return True
        return not origin.is_ip and any(  # "*.0.0.1" is no pattern for 127.0.0.1
            host.endswith(suffix) and len(host) > len(suffix) for suffix in suffixes
        )

    def _decide(self, key: str) -> Attachment:
        """The attachment for a ``scheme://authority`` key, cached where settled."""
        origin = parse_origin(key)
        if origin is None:
            raise InsecureTransportError(
                "Refusing to attach a CAVE token to a URL without a host; give a full https:// URL."
            )
        if not self._applies_to(origin):
            attachment = _SKIP
        else:
            secure = origin.scheme == "https" or (origin.scheme == "http" and origin.is_loopback)
            if not secure and not self.allow_insecure_http:
                raise InsecureTransportError(
                    f"Refusing to send a CAVE token to {origin} over plain "
                    f"{origin.scheme}: use https:// (or allow_insecure_http=True "
                    "for a trusted network)."
                )
            attachment = self._find(origin)
        with self._lock:
            if len(self._attachments) >= _MAX_CACHED_ORIGINS:
                self._attachments.clear()
            self._attachments[key] = attachment
        return attachment

    def _find(self, origin: Origin) -> Attachment:
        try:
            source = lookup(origin, self._places, self.token)
        except TokenNotFoundError:
            if self.required:
                raise
            logger.debug("No CAVE token for %s; sending without one.", origin)
            return Attachment(None, self.server_address)
        logger.debug("CAVE token for %s from %s.", origin, source)
        return Attachment(source, self.server_address)

    def attachment_for(self, url: str) -> Attachment:
        """What this auth attaches to a request to ``url`` (cached per origin).

        Raises:
            InsecureTransportError, TokenNotFoundError, InvalidTokenError,
            TokenFileError: as a request to ``url`` would.
        """
        key = origin_key(url)
        return self._attachments.get(key) or self._decide(key)

    def headers_for(self, url: str) -> dict[str, str]:
        """The headers this auth adds to a request to ``url``: ``{}`` where none."""
        attachment = self.attachment_for(url)
        headers = {}
        if attachment.header is not None:
            headers["Authorization"] = attachment.header
            if self.cookie and attachment.cookie is not None:
                headers["Cookie"] = attachment.cookie
        return headers

    # -- attaching -------------------------------------------------------------

    def _attach(self, request: PreparedRequest, attachment: Attachment) -> None:
        header, cookie = attachment.header, attachment.cookie
        if header is not None and cookie is not None:
            headers = request.headers
            if type(headers) is CaseInsensitiveDict:
                # The hot path: requests' own store (lower-cased name -> (name, value)),
                # without the KeyError that Mapping.get raises and catches for a
                # missing header. Same effect as the public calls below.
                store = headers._store  # type: ignore[attr-defined]
                authorization_item, cookie_item = attachment.items
                store["authorization"] = authorization_item
                if self.cookie:
                    old = store.get("cookie")
                    store["cookie"] = (
                        cookie_item if old is None else ("Cookie", merge_cookie(old[1], cookie))
                    )
            else:
                headers["Authorization"] = header
                if self.cookie:
                    headers["Cookie"] = merge_cookie(headers.get("Cookie"), cookie)
        setattr(request, SENT_ATTRIBUTE, attachment)  # not via __dict__, which would build one
        hooks = request.hooks["response"]
        if self._hook not in hooks:
            hooks.append(self._hook)

    def __call__(self, request: PreparedRequest) -> PreparedRequest:
        key = origin_key(request.url)  # type: ignore[arg-type]
        attachment = self._attachments.get(key) or self._decide(key)
        if attachment is not _SKIP:
            self._attach(request, attachment)
        return request

    # -- reading the answer ------------------------------------------------------

    def reloaded(self, url: str, sent: Attachment) -> Attachment | None:
        """After ``sent`` was refused: the token source's newer token for ``url``, if any.

        Looks at the source again (another process may have saved a new token),
        unless another thread already has. ``None`` where the token is unchanged
        or can no longer be found.
        """
        key = origin_key(url)
        current = self._attachments.get(key)
        if current is None or current.header == sent.header:
            try:
                current = self._decide(key)
            except CAVEAuthError as error:
                logger.warning("Cannot reload the CAVE token: %s", error)
                return None
        return None if current.header in (None, sent.header) else current

    def _retry(self, response: Response, sent: Attachment, **kwargs: Any) -> Response | None:
        """Send the request once more with a reloaded token, as the spec's rules allow."""
        request = response.request
        if (
            response.status_code != 401
            or sent.source is None
            or sent.source.kind == "explicit"
            or getattr(request, _RETRIED_ATTRIBUTE, False)
        ):
            return None
        content_type = response.headers.get("Content-Type", "")
        if error_code(content_type, response.content) != "invalid_token":
            return None
        body = request.body
        if body is not None and not isinstance(body, (bytes, str)):
            try:
                rewind_body(request)  # a seekable body, back to where it started
            except UnrewindableBodyError:
                return None  # a generator or other one-shot body
        newer = self.reloaded(str(request.url), sent)
        if newer is None:
            return None
        logger.info("CAVE token from %s was refused; retrying with %s.", sent.source, newer.source)
        response.content  # noqa: B018  (read the 401, so the connection can be reused)
        response.close()
        retry = request.copy()
        self._attach(retry, newer)
        setattr(retry, _RETRIED_ATTRIBUTE, True)
        assert response.connection is not None
        new_response: Response = response.connection.send(retry, **kwargs)
        new_response.history.append(response)
        new_response.request = retry
        return new_response

    def handle_response(self, response: Response, **kwargs: Any) -> Response:
        """The response hook: retry a ``401 invalid_token`` once, report auth failures."""
        status = response.status_code
        if status < 300 or status >= 500 or (status < 400 and not response.is_redirect):
            return response
        # The hook is registered on requests this auth prepared; requests copies
        # it onto their redirect hops, which do not carry SENT_ATTRIBUTE.
        sent = getattr(response.request, SENT_ATTRIBUTE, None)
        if sent is not None:
            retried = self._retry(response, sent, **kwargs)
            if retried is not None:
                response = retried
        failure = describe_failure(response)
        if failure is None or (sent is None and failure.code in _NOT_CAVE_ANSWERS):
            return response  # a hop elsewhere (say, a pre-signed URL) refused: not ours
        if self.raise_on_auth_error:
            raise failure
        origin = parse_origin(str(response.request.url))
        key = (str(origin), failure.code)
        with self._lock:
            first = key not in self._warned
            self._warned.add(key)
        if first:
            logger.warning("%s", failure)
        return response
