"""Getting a token onto this machine by hand: the steps, the hidden prompt, the check, the save.

:func:`login` is ``cave-auth login`` for Python (a script, a notebook): the
command calls it too, so both take the same steps and fail with the same
sentences.
"""

from __future__ import annotations

import shlex
import sys
import warnings
from typing import TYPE_CHECKING, Any, Callable, TypeVar

import requests

from .account import NamedSource, check_token_with, describe_user, user_lines
from .errors import CAVEAuthError, CAVEAuthWarning, InvalidTokenError
from .lookup import TokenPlaces
from .store import check_can_save, check_pasted, save_token
from .tokens import DEFAULT_TOKEN_KEY, mask_token
from .urls import new_token_url, normalize_server_address, token_page_url

if TYPE_CHECKING:
    import os
    from collections.abc import Mapping

__all__ = ["get_new_token", "login", "new_token_steps", "open_in_browser", "read_token"]

PROG = "cave-auth"
MAX_INPUT = 64 * 1024
"""Characters of standard input read for a token; more is no token."""
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


def read_token(prompt: str = "Token: ") -> tuple[str, str]:
    """A pasted token and where it was read: hidden input on a terminal or in a notebook,
    else standard input, which must hold one line (blank lines aside).

    Raises:
        InvalidTokenError: no standard input, not text, too long, or several lines.
        KeyboardInterrupt, EOFError: at the prompt (the prompt's line is ended first).
    """
    stdin: Any = sys.stdin
    if stdin is not None and (stdin.isatty() or "ipykernel" in sys.modules):
        import getpass  # a notebook's kernel puts its own password field in its place

        try:
            return getpass.getpass(prompt), "the terminal"
        except (KeyboardInterrupt, EOFError):
            print(file=sys.stderr)  # end the line of the prompt
            raise
    if stdin is None:
        raise InvalidTokenError(
            "there is no standard input to read the token from; give it as an argument "
            f"(`{PROG} save TOKEN`) or on standard input."
        )
    try:
        text = str(stdin.read(MAX_INPUT + 1))
    except UnicodeDecodeError:
        raise InvalidTokenError(
            f"standard input is not text in {stdin.encoding}; give the token alone, as text."
        ) from None
    if len(text) > MAX_INPUT:
        raise InvalidTokenError(
            f"standard input holds more than {MAX_INPUT} characters: that is no token; "
            "give the token alone."
        )
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) > 1:
        raise InvalidTokenError(
            f"standard input has {len(lines)} lines; give the token alone, on one line "
            "(nothing was saved)."
        )
    return text, "standard input"


def options(given: Mapping[str, object]) -> str:
    """``--server URL --token-key KEY …``: the options of ``given`` as typed, with a
    leading space (``token_key`` only where it is not the default)."""
    words = []
    for name, value in given.items():
        if value is not None and not (name == "token_key" and value == DEFAULT_TOKEN_KEY):
            words += ["--" + name.replace("_", "-"), shlex.quote(str(value))]
    return "".join(" " + word for word in words)


_E = TypeVar("_E", bound=Exception)


def _restated(error: _E, message: str) -> _E:
    """``error`` (its type and attributes kept), saying ``message``."""
    error.args = (message,)
    return error


def login(
    server_address: str | None = None,
    *,
    existing: bool = False,
    open: bool = False,
    verify: bool = True,
    token_file: str | os.PathLike[str] | None = None,
    token_key: str = DEFAULT_TOKEN_KEY,
    secrets_dir: str | os.PathLike[str] | None = None,
    say: Callable[[str], object] = print,
) -> list[str]:
    """Get a token by hand, check it with its auth server, and save it: ``cave-auth login``.

    Checks first that the token can be saved (getting a new one may invalidate
    the old), prints the steps and the page's address (and opens it, with
    ``open``), reads the token with a hidden prompt (in a terminal or a
    notebook; else from standard input), asks its auth server whose it is
    (with ``verify``), and saves it where CAVEclient and CloudVolume read it.

    Args:
        server_address: the auth server (default :data:`DEFAULT_SERVER_ADDRESS`).
        existing: reuse a token you have (show the existing-tokens page).
        open: open the page in a web browser.
        verify: ask the auth server whose the token is before saving it.
        token_file, token_key, secrets_dir: where to save it, as for :func:`save_token`.
        say: where the steps and the outcome are written.

    Returns:
        The files that hold the token now.

    Raises:
        TokenFileError: the token could not be saved (checked before asking for it).
        InvalidTokenError: what was pasted is not a token.
        AuthResponseError, InsecureTransportError: the server refused the token, or
            would get it over plain http; nothing was saved.
        requests.RequestException: the server could not be reached; nothing was saved.
    """
    server = normalize_server_address(server_address)
    given = {"server": server_address and server, "secrets_dir": secrets_dir}
    again = options({**given, "token_file": token_file, "token_key": token_key})
    places = TokenPlaces.of(server_address, token_file, token_key, secrets_dir)
    check_can_save(places, token_file is None)
    url = token_page_url(server) if existing else new_token_url(server)
    step = "Paste it below (it is not shown) and press Enter."
    say(new_token_steps(server, existing=existing, save_step=step).rstrip())
    if open and not open_in_browser(url):
        message = "no web browser could be opened here; open the address above yourself."
        warnings.warn(message, CAVEAuthWarning, stacklevel=2)
    value, where = read_token()
    token = check_pasted(value, where)
    if verify:
        try:
            user, issuer = check_token_with(NamedSource(token, where), server)
        except requests.HTTPError as error:  # a refusal (an AuthResponseError)
            raise _restated(error, f"{error} Nothing was saved.") from None
        except (CAVEAuthError, requests.RequestException) as error:
            raise _restated(
                error,
                f"{str(error).rstrip('.')}. Nothing was saved; to save the token without "
                f"checking it: {PROG} login --no-verify{again}",
            ) from None
        say(f"The token belongs to {describe_user(user)}.")
        for label, text in user_lines(user, issuer)[1:]:
            say(f"{label}: {text}")
    try:
        paths = save_token(
            token, server_address, token_file=token_file, token_key=token_key,
            secrets_dir=secrets_dir, overwrite=True, write_server_file=token_file is None,
        )  # fmt: skip
    except CAVEAuthError as error:
        raise _restated(
            error,
            f"{error} The token was not saved; once that is fixed, save it with "
            f"`{PROG} save -{again}`.",
        ) from None
    say(f"Saved the token ({mask_token(token)}) to:")
    for path in paths:
        say(f"  {path}")
    return paths
