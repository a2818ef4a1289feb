"""Talking to the auth server: getting a new token by hand, and ``whoami``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import requests

from .answers import raise_for_auth
from .auth import CAVETokenAuth
from .errors import AuthResponseError
from .urls import new_token_url, normalize_server_address, token_page_url, user_cache_url

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["get_new_token", "new_token_steps", "whoami"]

WHOAMI_TIMEOUT = 30.0


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


def get_new_token(server_address: str | None = None, *, open: bool = False) -> str:
    """Print how to get a new token by hand, and return the create-token URL.

    Args:
        server_address: the auth server (default :data:`DEFAULT_SERVER_ADDRESS`).
        open: also open the page in a web browser.
    """
    url = new_token_url(server_address)
    print(new_token_steps(server_address), end="")
    if open:
        import webbrowser

        webbrowser.open(url)
    return url


def whoami(
    auth: CAVETokenAuth | None = None,
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
        The server's JSON: ``id``, ``name``, ``email``, ``admin``, ``groups``, ….

    Raises:
        AuthResponseError: the server refused the token, or did not answer
            with a user.
        TokenNotFoundError, InvalidTokenError, TokenFileError,
        InsecureTransportError: from the token lookup.
        requests.RequestException: the server could not be reached.
    """
    server = normalize_server_address(
        server_address or (auth.server_address if auth is not None else None)
    )
    if auth is None and session is None:
        auth = CAVETokenAuth(server_address=server)
    response = (session or requests).get(user_cache_url(server), auth=auth, timeout=WHOAMI_TIMEOUT)
    raise_for_auth(response)
    response.raise_for_status()
    try:
        user: Mapping[str, Any] | Any = response.json()
    except ValueError:
        user = None
    if not isinstance(user, dict) or "id" not in user:
        raise AuthResponseError(
            f"{server} did not answer with a CAVE user; is it the CAVE auth server?",
            code="unexpected_answer",
            response=response,
        )
    return user
