"""What the auth server says of a token: whose it is, how long it lasts; revoking it.

The routes of middle_auth (``neuroglancer_auth/server.py``; all under
``/auth/api/v1``, all taking the token as a Bearer header) used here:

- ``GET user/cache``: the token's user, what the services themselves call;
- ``GET user/token/<token>/ttl``: the seconds a token has left, ``-1`` for an
  API key (which never expires); a token from a browser login lasts 7 days;
- ``GET user/token``: the user's API keys, ``{"id", "token", …}`` each;
  ``DELETE user/token/<id>`` deletes one; ``GET logout`` deletes the login
  token the request carries (``422`` for an API key).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import requests

from .authserver import (
    AuthServer,
    answer_of,
    ask,
    fetch,
    find_auth_server,
    refused_over_http,
    unreachable,
)
from .core import Credentials
from .errors import AuthResponseError, InsecureTransportError
from .text import printable
from .tokens import TokenSource
from .urls import normalize_server_address, parse_origin, user_cache_url

if TYPE_CHECKING:
    from collections.abc import Iterator

_MAX_TTL = 10 * 365 * 86400  # seconds: longer is no answer (login tokens last 7 days)

__all__ = [
    "NamedSource", "check_token_with", "describe_user", "lasts", "revoke", "token_ttl",
    "user_lines", "user_of", "whoami",
]  # fmt: skip


class NamedSource(TokenSource):
    """A token that came from neither a file nor the environment, named in words."""

    __slots__ = ("where",)

    def __init__(self, token: str, where: str) -> None:
        super().__init__(token, "explicit")
        self.where = where

    def __str__(self) -> str:
        return self.where


def _user(user: Any, server: AuthServer | str) -> dict[str, Any]:
    if not isinstance(user, dict) or "id" not in user:
        raise AuthResponseError(
            f"{server} did not answer with a CAVE user; is it the CAVE auth server?",
            code="unexpected_answer",
        )
    return user


def user_of(
    source: TokenSource | None,
    server: AuthServer | str | None = None,
    *,
    rules: Credentials | None = None,
) -> dict[str, Any]:
    """Ask ``server`` whose the token of ``source`` is (``user/cache``): its JSON user.

    ``rules`` decide whether the server may get a token (default: https, or
    http to loopback); a refusal names ``source``.

    Raises:
        AuthResponseError: the token was refused, or the answer is not a user.
        InsecureTransportError: the server may not get a token (plain http).
        requests.RequestException: the server could not be reached.
    """
    server = server if isinstance(server, AuthServer) else AuthServer.at(server)
    return _user(ask(source, server, "user/cache", rules), server)


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
    url, attachment = user_cache_url(server), None
    if auth is not None or session is None:
        rules = auth if auth is not None else Credentials(server_address=server)
        attachment = rules.attachment_for(url)
    token = attachment.source.token if attachment and attachment.source else ""
    response, body = fetch("GET", url, attachment, session=session)
    return _user(answer_of(response, body, server, "user/cache", token), server)


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


def describe_user(user: dict[str, Any]) -> str:
    """``Ada <ada@example.org>, user id 1``, without control characters."""
    name = printable(str(user.get("name") or "(no name)"))
    email = f" <{printable(str(user['email']))}>" if user.get("email") else ""
    return f"{name}{email}, user id {printable(str(user.get('id')))}"


def user_lines(user: dict[str, Any], issuer: AuthServer) -> list[tuple[str, str]]:
    """(label, text) lines about a user: who, groups, terms of service not accepted."""
    lines = [("user", f"{describe_user(user)} (asked {issuer})")]
    groups = user.get("groups")
    if isinstance(groups, list) and groups:
        lines.append(("groups", ", ".join(printable(str(group)) for group in groups)))
    for name, dataset, url in missing_terms(user, issuer):
        text = f"not accepted: '{printable(name)}' (dataset {printable(dataset)}); accept them at "
        lines.append(("terms", text + printable(url)))
    return lines


@contextmanager
def _asking(issuer: AuthServer, doing: str) -> Iterator[None]:
    """The errors of asking ``issuer`` to do something, each in one sentence; a refusal
    (an :class:`AuthResponseError`) stays as it is."""
    try:
        yield
    except InsecureTransportError:
        raise refused_over_http(issuer) from None
    except requests.RequestException as error:
        if isinstance(error, AuthResponseError):
            raise
        raise unreachable(error, doing) from None


def check_token_with(
    source: TokenSource, target: str, issuers: dict[str, AuthServer] | None = None
) -> tuple[dict[str, Any], AuthServer]:
    """Ask the auth server of ``target`` (found, or taken from ``issuers``) whose the
    token of ``source`` is: the user, and the server.

    Raises:
        AuthResponseError: the token was refused, or the server is no auth server.
        InsecureTransportError: the server would get the token over plain http.
        requests.RequestException: a server could not be reached (one sentence).
    """
    issuers = {} if issuers is None else issuers
    key = str(parse_origin(target))
    try:
        issuer = issuers.get(key) or issuers.setdefault(key, find_auth_server(target))
    except requests.RequestException as error:
        raise unreachable(error, "find its auth server") from None
    with _asking(issuer, "check the token"):
        return user_of(source, issuer), issuer


def token_ttl(source: TokenSource, issuer: AuthServer) -> int | None:
    """The seconds the token of ``source`` has left, as its auth server says; ``-1``: it
    never expires (an API key); ``None`` where the server does not say (or says nonsense)."""
    try:
        seconds = ask(source, issuer, f"user/token/{source.token}/ttl")
    except (requests.RequestException, InsecureTransportError):
        return None
    valid = isinstance(seconds, int) and not isinstance(seconds, bool)
    return seconds if valid and -1 <= seconds <= _MAX_TTL else None


def revoke(source: TokenSource, issuer: AuthServer) -> str:
    """Delete the token of ``source`` on its auth server; what was done, in words.

    An API key is deleted by its id (from the list of the user's keys); a
    login token is logged out. Each answer must be the one middle_auth gives.

    Raises:
        AuthResponseError, InsecureTransportError, requests.RequestException: as
            :func:`check_token_with`; the token is then still valid.
    """
    with _asking(issuer, "revoke the token"):
        keys = ask(source, issuer, "user/token")
        if not isinstance(keys, list):
            raise _unexpected(issuer, "user/token", "the list of API keys")
        ids = [k.get("id") for k in keys if isinstance(k, dict) and k.get("token") == source.token]
        if ids and (not isinstance(ids[0], int) or isinstance(ids[0], bool)):
            raise _unexpected(issuer, "user/token", "an id of the API key")
        route = f"user/token/{ids[0]}" if ids else "logout"
        if ask(source, issuer, route, method="DELETE" if ids else "GET") != "success":
            raise _unexpected(issuer, "user/token/<id>" if ids else route, '"success"')
        return f"deleted the API key on {issuer}" if ids else f"logged the token out of {issuer}"


def _unexpected(issuer: AuthServer, route: str, what: str) -> AuthResponseError:
    return AuthResponseError(
        f"{issuer} did not answer /auth/api/v1/{route} with {what}; is it the CAVE auth server?",
        code="unexpected_answer",
    )


def lasts(seconds: int) -> str:
    """``in 6 days (2026-12-10 09:00 UTC)``: when a token with ``seconds`` left expires."""
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(time.time() + seconds))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"in {count} {unit}{'s' if count > 1 else ''} ({when})"
    return f"in under a minute ({when})"
