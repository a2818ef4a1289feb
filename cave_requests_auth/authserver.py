"""The auth server: which one a host uses, and asking it with a token.

A CAVE host names the auth server whose tokens it accepts: ``GET <origin>/auth_info``
answers ``{"login_url": "https://<auth server>/sticky_auth", ...}``, and a 401
names it in ``WWW-Authenticate: Bearer realm="https://<auth server>/…/api/v1/authorize"``.
:func:`find_auth_server` asks in that order. :func:`ask` sends a request to one of
its routes (``/auth/api/v1/…``), the token put on it by the core's rules
(:meth:`.core.Credentials.attachment_for`), and reads the answer; a refusal
names where the token came from.
"""

from __future__ import annotations

import json
import logging
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

import requests

from .core import Credentials
from .errors import AuthResponseError, InsecureTransportError
from .exchange import answers_of, attach, error_for
from .refusals import describe
from .text import quote, redact
from .urls import normalize_server_address, parse_origin, user_cache_url

if TYPE_CHECKING:
    from collections.abc import Iterator

    from requests import PreparedRequest, Response

    from .tokens import TokenSource
    from .wire import Attachment

__all__ = [
    "AuthServer", "answer_of", "ask", "carrying", "fetch", "find_auth_server",
    "refused_over_http", "unreachable",
]  # fmt: skip

TIMEOUT = 30.0
DISCOVERY_TIMEOUT = 10.0
MAX_ANSWER = 1024 * 1024
"""Bytes of an answer read; more is no such answer."""

_AUTHORIZE_PATH = "/api/v1/authorize"
_LOGIN_PATH = "/sticky_auth"


class AuthServer(NamedTuple):
    """An auth server, and how it was found."""

    address: str
    """Its origin, e.g. ``https://global.daf-apis.com``: ``/auth/api/v1/…`` lives there."""
    login_url: str
    """Its login service, e.g. ``https://global.daf-apis.com/sticky_auth``."""
    named_by: str = ""
    """How it was found: ``""`` (given), or words such as ``"the /auth_info of …"``."""

    @classmethod
    def at(cls, server_address: str | None, named_by: str = "") -> AuthServer:
        """The auth server at ``server_address`` (default :data:`DEFAULT_SERVER_ADDRESS`)."""
        address = normalize_server_address(server_address)
        return cls(address, address + _LOGIN_PATH, named_by)

    @classmethod
    def of_login_url(cls, login_url: object, named_by: str) -> AuthServer | None:
        """The auth server of a ``login_url`` (or a realm ending ``/api/v1/authorize``)."""
        if not isinstance(login_url, str):
            return None
        login = login_url.strip().split("?", 1)[0].rstrip("/").removesuffix(_AUTHORIZE_PATH)
        origin = parse_origin(login)
        if origin is None or origin.scheme not in ("http", "https"):
            return None
        return cls(str(origin), login, named_by)

    def api(self, route: str) -> str:
        """The URL of ``route`` under ``/auth/api/v1/``."""
        return user_cache_url(self.address).removesuffix("user/cache") + route

    def tos_accept_url(self, tos_id: object) -> str:
        """The page that accepts the terms of service ``tos_id``."""
        return f"{self.login_url}/api/v1/tos/{tos_id}/accept"

    def __str__(self) -> str:
        return self.address


def _json(body: bytes | None) -> Any:
    try:
        return None if body is None else json.loads(body)
    except (ValueError, RecursionError):
        return None


def fetch(
    method: str,
    url: str,
    attachment: Attachment | None = None,
    *,
    session: requests.Session | None = None,
    timeout: float = TIMEOUT,
) -> tuple[Response, bytes | None]:
    """``method url`` (with ``attachment``; a ``session``'s own auth where there is none),
    and its body: at most :data:`MAX_ANSWER` bytes within ``timeout`` seconds, else
    ``None`` (a server that sends without end, or drop by drop, is no auth server)."""
    auth = carrying(attachment) if attachment is not None or session is None else None
    token = "" if attachment is None or attachment.source is None else attachment.source.token
    with _masked(token):  # urllib3 logs a request's path at DEBUG: ttl's holds the token
        response = (session or requests).request(
            method, url, auth=auth, timeout=timeout, allow_redirects=False, stream=True
        )
    deadline, chunks, size = time.monotonic() + timeout, [], 0
    read = getattr(response.raw, "read1", response.raw.read)  # urllib3 2: one recv at most
    with response:
        while chunk := read(1 << 16, decode_content=True):
            size += len(chunk)
            if size > MAX_ANSWER or time.monotonic() > deadline:
                return response, None
            chunks.append(chunk)
    return response, b"".join(chunks)


def find_auth_server(
    url: str, *, session: requests.Session | None = None, timeout: float = DISCOVERY_TIMEOUT
) -> AuthServer:
    """The auth server whose tokens the host of ``url`` accepts.

    Asks, without a token: ``GET <origin>/auth_info`` (its ``login_url``); then,
    where ``url`` has a path, ``HEAD url`` (a 401's realm, or a redirect to the
    login page). Where neither names one, the host is taken to be its own.

    Raises:
        ValueError: ``url`` is not an http(s) URL with a host.
        requests.RequestException: the host could not be reached.
    """
    origin = parse_origin(url)
    if origin is None or origin.scheme not in ("http", "https"):
        raise ValueError(f"{url!r} is not an http(s) URL with a host.")
    http = session or requests
    info, body = fetch("GET", f"{origin}/auth_info", session=session, timeout=timeout)
    data = _json(body) if info.status_code == 200 else None
    if isinstance(data, dict):
        found = AuthServer.of_login_url(data.get("login_url"), f"the /auth_info of {origin}")
        if found is not None:
            return found
    if url.split("://", 1)[-1].strip("/").count("/"):
        probe = http.head(
            url, timeout=timeout, allow_redirects=False, headers={"X-Requested-With": "cave-auth"}
        )
        realm = probe.headers.get("WWW-Authenticate", "")
        if probe.status_code == 401 and 'realm="' in realm:
            named = realm.split('realm="', 1)[1].split('"', 1)[0]
            found = AuthServer.of_login_url(named, f"a 401 from {origin}")
            if found is not None:
                return found
        location = probe.headers.get("Location", "")
        if probe.is_redirect and _AUTHORIZE_PATH in location:
            found = AuthServer.of_login_url(location, f"the login redirect of {origin}")
            if found is not None:
                return found
    return AuthServer.at(str(origin))


def carrying(attachment: Attachment | None) -> Callable[[PreparedRequest], PreparedRequest]:
    """An ``auth=`` for requests that puts ``attachment`` (a core decision) on the request.

    An auth, not ``headers=``: requests would put a ``~/.netrc`` entry in its place.
    """

    def auth(request: PreparedRequest) -> PreparedRequest:
        if attachment is not None:
            attach(request, attachment)
        return request

    return auth


def answer_of(
    response: Response, body: bytes | None, server: AuthServer | str, route: str, token: str = ""
) -> Any:
    """The JSON of the auth server's answer (``body``) to ``route``, or the error that says
    what came instead; its text quoted without control characters or the token."""
    refusal = describe(answers_of(response, body=body or b""), secrets=[token])
    if refusal is not None:
        raise error_for(response)(refusal)
    status = response.status_code
    if status >= 300:
        said = f"{server} answered {status} {quote(response.reason or '', [token])}".rstrip()
        if 300 <= status < 400:
            where = quote(response.headers.get("Location", "?"), [token])
            message = (
                f"{said} (a redirect to {where}) for its user page: is it the CAVE auth "
                "server? Give the address it redirects to."
            )
        elif status >= 500:
            message = f"{said}: the auth server has a problem; try again later."
        else:
            message = (
                f"{said} for /auth/api/v1/{redact(route, [token])}: it was reached, but it is "
                "probably not a CAVE auth server; check the address."
            )
        raise AuthResponseError(message, code="unexpected_answer", response=response)
    return _json(body)


def ask(
    source: TokenSource | None,
    server: AuthServer,
    route: str,
    rules: Credentials | None = None,
    method: str = "GET",
) -> Any:
    """``method`` the auth server's ``route`` with the token of ``source``: its JSON.

    Raises:
        AuthResponseError: the token was refused, or the answer is not the auth server's.
        InsecureTransportError: the server may not get a token (plain http).
        requests.RequestException: the server could not be reached.
    """
    url, attachment, token = server.api(route), None, ""
    if source is not None:
        rules = rules or Credentials(source.token, server_address=server.address)
        attachment, token = rules.attachment_for(url, source), source.token
    return answer_of(*fetch(method, url, attachment), server, route, token)


@contextmanager
def _masked(secret: str) -> Iterator[None]:
    """While it lasts, urllib3's log records show ``secret`` masked."""

    def mask(record: logging.LogRecord) -> bool:
        if secret and secret in str(record.args):
            record.msg, record.args = redact(record.getMessage(), [secret]), ()
        return True

    loggers = [logging.getLogger(f"urllib3.{name}") for name in ("connectionpool", "util.retry")]
    for logger in loggers:
        logger.addFilter(mask)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(mask)


def refused_over_http(origin: object) -> InsecureTransportError:
    """What the command says of a server that would get the token over plain http."""
    return InsecureTransportError(
        f"a request to {origin} gets no CAVE token: plain http is allowed only to this "
        "machine (localhost, 127.0.0.1, ::1) and not through a proxy; use https://."
    )


def unreachable(error: requests.RequestException, doing: str) -> requests.RequestException:
    """``error``, saying in one sentence which server could not be reached to do what."""
    origin = parse_origin(str(error.request.url)) if error.request is not None else None
    error.args = (
        f"cannot reach {origin or 'the server'} to {doing} ({type(error).__name__}); "
        "check the address and the network.",
    )
    error.said = True  # type: ignore[attr-defined]  # the command shows it as it is
    return error
