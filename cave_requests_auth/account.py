"""Talking to the auth server: the token pages, ``whoami``, and which auth server a host uses.

A CAVE host names the auth server whose tokens it accepts: ``GET <origin>/auth_info``
answers ``{"login_url": "https://<auth server>/sticky_auth", ...}``, and a 401
names it in ``WWW-Authenticate: Bearer realm="https://<auth server>/…/api/v1/authorize"``.
:func:`find_auth_server` asks in that order. :func:`user_of` asks an auth server
whose a token is (``<server>/auth/api/v1/user/cache``, what the services
themselves call), naming the token's source in any refusal.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

import requests

from .core import Credentials
from .errors import AuthResponseError
from .exchange import attach, raise_for_auth
from .tokens import TokenSource
from .urls import (
    new_token_url,
    normalize_server_address,
    parse_origin,
    token_page_url,
    user_cache_url,
)

if TYPE_CHECKING:
    from requests import PreparedRequest, Response

    from .wire import Attachment

__all__ = [
    "AuthServer",
    "NamedSource",
    "find_auth_server",
    "get_new_token",
    "missing_terms",
    "new_token_steps",
    "user_of",
    "whoami",
]

WHOAMI_TIMEOUT = 30.0
DISCOVERY_TIMEOUT = 10.0
MAX_ANSWER = 1024 * 1024
"""Bytes of an ``/auth_info`` or user answer read; more is no such answer."""

_AUTHORIZE_PATH = "/api/v1/authorize"
_LOGIN_PATH = "/sticky_auth"

_SAVE_STEP = (
    "Copy it and save it with:  cave-auth save -   (then paste it and press Enter)\n"
    '     or, in Python:  cave_requests_auth.save_token("PASTE_YOUR_TOKEN_HERE")'
)


def new_token_steps(
    server_address: str | None = None, *, existing: bool = False, save_step: str = _SAVE_STEP
) -> str:
    """The steps to get a token by hand, as text (what :func:`get_new_token` prints).

    Args:
        existing: the steps to reuse a token from the existing-tokens page instead.
        save_step: the last step, how to save the copied token.
    """
    if existing:
        return (
            "To use a token you already have:\n"
            f"  1. Go to {token_page_url(server_address)}\n"
            "  2. Log in; the page lists your tokens.\n"
            f"  3. {save_step}\n"
        )
    return (
        "To get a new CAVE token:\n"
        f"  1. Go to {new_token_url(server_address)}\n"
        "  2. Log in with your Google account; the page then shows a new token.\n"
        f"  3. {save_step}\n"
        "Creating a new token may invalidate your previous one. To reuse a token\n"
        f"you already have, see {token_page_url(server_address)}\n"
    )


def open_in_browser(url: str) -> bool:
    """Open ``url`` in a web browser; whether one took it."""
    import webbrowser

    try:
        return bool(webbrowser.open(url))
    except webbrowser.Error:
        return False


def get_new_token(server_address: str | None = None, *, open: bool = False) -> str:
    """Print how to get a new token by hand, and return the create-token URL.

    Args:
        server_address: the auth server (default :data:`DEFAULT_SERVER_ADDRESS`).
        open: also open the page in a web browser (where there is none, it says so).
    """
    url = new_token_url(server_address)
    print(new_token_steps(server_address), end="")
    if open and not open_in_browser(url):
        print("No web browser could be opened here; open the address above yourself.")
    return url


class NamedSource(TokenSource):
    """A token that came from neither a file nor the environment, named in words.

    >>> str(NamedSource("0123…", "standard input"))  # doctest: +SKIP
    'standard input'
    """

    __slots__ = ("where",)

    def __init__(self, token: str, where: str) -> None:
        super().__init__(token, "explicit")
        self.where = where

    def __str__(self) -> str:
        return self.where


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
        login = login_url.strip().split("?", 1)[0].rstrip("/")
        if login.endswith(_AUTHORIZE_PATH):
            login = login[: -len(_AUTHORIZE_PATH)]
        origin = parse_origin(login)
        if origin is None or origin.scheme not in ("http", "https"):
            return None
        return cls(str(origin), login, named_by)

    @property
    def user_cache_url(self) -> str:
        """Where a token's user is described."""
        return user_cache_url(self.address)

    def tos_accept_url(self, tos_id: object) -> str:
        """The page that accepts the terms of service ``tos_id``."""
        return f"{self.login_url}/api/v1/tos/{tos_id}/accept"

    def __str__(self) -> str:
        return self.address


def _json_of(response: Response) -> Any:
    """The JSON of a small answer, or ``None``."""
    if len(response.content) > MAX_ANSWER:
        return None
    try:
        return json.loads(response.content)
    except (ValueError, RecursionError):
        return None


def find_auth_server(
    url: str, *, session: requests.Session | None = None, timeout: float = DISCOVERY_TIMEOUT
) -> AuthServer:
    """The auth server whose tokens the host of ``url`` accepts.

    Asks, without a token: ``GET <origin>/auth_info`` (its ``login_url``); then,
    where ``url`` has a path, ``HEAD url`` (a 401's realm, or a redirect to the
    login page). Where neither names one, the host is taken to be its own
    auth server.

    Raises:
        ValueError: ``url`` is not an http(s) URL with a host.
        requests.RequestException: the host could not be reached.
    """
    origin = parse_origin(url)
    if origin is None or origin.scheme not in ("http", "https"):
        raise ValueError(f"{url!r} is not an http(s) URL with a host.")
    http = session or requests
    info = http.get(
        f"{origin}/auth_info",
        timeout=timeout,
        allow_redirects=False,
        headers={"Accept": "application/json"},
    )
    data = _json_of(info) if info.status_code == 200 else None
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


def _user_from(response: Response, server: str) -> dict[str, Any]:
    """The user in a ``user/cache`` answer, or the error that says what came instead."""
    raise_for_auth(response)
    status = response.status_code
    if status >= 300:
        said = f"{server} answered {status} {response.reason or ''}".rstrip()
        if 300 <= status < 400:
            message = (
                f"{said} (a redirect to {response.headers.get('Location', '?')}) for its "
                "user page: is it the CAVE auth server? Give the address it redirects to."
            )
        elif status >= 500:
            message = f"{said}: the auth server has a problem; try again later."
        else:
            message = (
                f"{said} for /auth/api/v1/user/cache: it was reached, but it is probably "
                "not a CAVE auth server; check the address."
            )
        raise AuthResponseError(message, code="unexpected_answer", response=response)
    user = _json_of(response)
    if not isinstance(user, dict) or "id" not in user:
        raise AuthResponseError(
            f"{server} did not answer with a CAVE user; is it the CAVE auth server?",
            code="unexpected_answer",
            response=response,
        )
    return user


def user_of(
    source: TokenSource | None,
    server: AuthServer | str | None = None,
    *,
    session: requests.Session | None = None,
    rules: Credentials | None = None,
) -> dict[str, Any]:
    """Ask ``server`` whose the token of ``source`` is (``<server>/auth/api/v1/user/cache``).

    Args:
        source: the token, and where it came from (a refusal names it);
            ``None`` asks without a token.
        server: the auth server (default :data:`DEFAULT_SERVER_ADDRESS`).
        session: the session to send with.
        rules: whose rules decide whether the server may get a token (default:
            the default rules: https, or http to loopback).

    Returns:
        The server's JSON: ``id``, ``name``, ``email``, ``groups``, ``missing_tos``, ….

    Raises:
        AuthResponseError: the token was refused, or the answer is not a user.
        InsecureTransportError: the server may not get a token (plain http).
        requests.RequestException: the server could not be reached.
    """
    if not isinstance(server, AuthServer):
        server = AuthServer.at(server)
    attachment = None
    if source is not None:
        rules = rules or Credentials(source.token, server_address=server.address)
        attachment = rules.attachment_for(server.user_cache_url, source)
    response = (session or requests).get(
        server.user_cache_url,
        auth=carrying(attachment),
        timeout=WHOAMI_TIMEOUT,
        allow_redirects=False,
    )
    return _user_from(response, server.address)


def missing_terms(user: dict[str, Any], server: AuthServer) -> list[tuple[str, str, str]]:
    """The terms of service ``user`` has not accepted: (name, dataset, accept URL) each.

    The names are the server's text: make them printable before showing them.
    """
    found = []
    entries = user.get("missing_tos")
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict):
            name = str(entry.get("tos_name") or f"terms {entry.get('tos_id', '?')}")
            dataset = str(entry.get("dataset_name") or "?")
            found.append((name, dataset, server.tos_accept_url(entry.get("tos_id", "?"))))
    return found


def whoami(
    auth: Credentials | None = None,
    server_address: str | None = None,
    session: requests.Session | None = None,
) -> dict[str, Any]:
    """The user a token belongs to, from ``<server>/auth/api/v1/user/cache``.

    Args:
        auth: the auth to ask with. Default: the session's own auth where a
            ``session`` is given, else ``CAVETokenAuth(server_address=...)``.
        server_address: the auth server (default: the auth's, else
            :data:`DEFAULT_SERVER_ADDRESS`).
        session: the session to send the request with.

    Returns:
        The server's JSON: ``id``, ``name``, ``email``, ``admin``, ``groups``,
        ``missing_tos`` (terms of service not yet accepted), ….

    Raises:
        AuthResponseError: the server refused the token (the message names
            where it came from), or did not answer with a user (say, a 404:
            not a CAVE auth server).
        TokenNotFoundError, InvalidTokenError, TokenFileError,
        InsecureTransportError: from the token lookup.
        requests.RequestException: the server could not be reached.
    """
    server = normalize_server_address(
        server_address or (auth.server_address if auth is not None else None)
    )
    url = user_cache_url(server)
    if auth is None and session is not None:
        response = session.get(url, timeout=WHOAMI_TIMEOUT, allow_redirects=False)
        return _user_from(response, server)
    rules = auth if auth is not None else Credentials(server_address=server)
    response = (session or requests).get(
        url, auth=carrying(rules.attachment_for(url)), timeout=WHOAMI_TIMEOUT, allow_redirects=False
    )
    return _user_from(response, server)
