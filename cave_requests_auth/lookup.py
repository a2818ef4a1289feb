"""Finding a CAVE token: where tokens live, and the lookup as a chain of steps. No HTTP.

For a request to a URL with host ``h`` and netloc ``n``, the first step that
gives a token wins (this list is the order; :func:`lookup` is it in code):

1. ``token=`` given;
2. the environment variable ``CAVE_TOKEN`` (blank counts as unset);

   2b. the file ``$CAVE_TOKEN_FILE`` names: the bare token on one line, as Docker and
   Kubernetes mount secrets; missing, empty, of several lines or unreadable is an
   error naming the variable and the path, not a fall-through;

3. ``token_file=`` given (that file only: missing or keyless is an error);
4. ``<secrets>/<n>-cave-secret.json``, then ``<secrets>/<h>-cave-secret.json``;
5. ``<secrets>/<server netloc>-cave-secret.json`` of ``server_address``, by default
   ``global.daf-apis.com-cave-secret.json``, as CAVEclient does;
6. ``<secrets>/cave-secret.json``;
7. ``<secrets>/chunkedgraph-secret.json``, with a deprecation warning (once per file);
8. in Google Colab only (``google.colab`` already imported; never imported here):
   the notebook secret ``CAVE_TOKEN``, asked at most once per process.

``<secrets>`` is ``secrets_dir=``, else ``$CLOUD_VOLUME_DIR/secrets``, else
``~/.cloudvolume/secrets``. Steps 4 to 7 are :meth:`.TokenPlaces.search_paths`.
Files are read by :mod:`.secretjson`: bounded, from their owner, once while unchanged.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
import warnings
from typing import Any

from .errors import DeprecatedTokenFileWarning, TokenFileError, TokenNotFoundError
from .secretjson import json_type, read_file, read_secret_file
from .text import printable
from .tokens import (
    CAVE_TOKEN_ENV,
    CAVE_TOKEN_FILE_ENV,
    COLAB_SECRET,
    DEFAULT_FILE_NAME,
    DEFAULT_TOKEN_KEY,
    DEPRECATED_FILE_NAME,
    TokenPlaces,
    TokenSource,
    check_token,
    named_token_file,
    netloc_file,
    secrets_folder,
    variable,
)
from .urls import Origin, new_token_url, parse_origin

__all__ = [
    "TokenPlaces", "checked", "environment", "environment_file", "find_token",
    "load_token", "lookup", "netloc_file", "origin_of", "read_value", "secrets_folder",
    "stored_value", "token_file_paths",
]  # fmt: skip

COLAB_PLACE = f"the Colab secret {COLAB_SECRET}"
"""Step 8 as ``TokenNotFoundError.searched`` lists it."""

_warned_deprecated: set[str] = set()
_colab_answer: dict[str, str | None] = {}  # {"value": what Colab gave}, once asked
_lock = threading.Lock()  # guards both


def origin_of(url_or_server: str | None) -> Origin | None:
    """The origin of a URL, or of a bare server name (``https://`` assumed)."""
    if url_or_server is None:
        return None
    if not isinstance(url_or_server, str):
        raise TypeError(f"url_or_server must be a URL string, not {type(url_or_server).__name__}.")
    if "://" not in url_or_server:
        url_or_server = "https://" + url_or_server.strip()
    return parse_origin(url_or_server)


def stored_value(data: dict[str, Any], path: str, key: str) -> str | None:
    """The string under ``key`` (``None`` if there is no such key).

    Raises:
        TokenFileError: anything but a string is there (the file is corrupt).
    """
    if key not in data:
        return None
    value = data[key]
    if not isinstance(value, str):
        raise TokenFileError(
            f"{path} holds {json_type(value)} under key {key!r}, not a token string; "
            "fix it, or delete it and save the token again.",
            path,
        )
    return value


def read_value(path: str, key: str, *, check_mode: bool = True) -> str | None:
    """The string under ``key`` in the secret file ``path`` (``None``: no file, or no key)."""
    data = read_secret_file(path, check_mode=check_mode)
    return None if data is None else stored_value(data, path, key)


def checked(
    value: str | None, kind: str, path: str | None = None, key: str | None = None
) -> TokenSource | None:
    """``value`` as a token from the source ``kind``, or ``None`` for no value."""
    if value is None:
        return None
    source = TokenSource(value, kind, path, key)
    source.token = check_token(value, source)
    return source


def _bare_token(raw: bytes, path: str) -> str:
    """The token in a ``$CAVE_TOKEN_FILE`` file: its one line, stripped."""
    text = raw.decode("utf-8", "replace").strip()
    if not text:
        problem = "is empty; put the token in it"
    elif len(text.splitlines()) > 1:
        problem = "has more than one line; leave the token alone in it"
    elif text.startswith("{"):
        problem = "holds JSON, not the bare token; name a JSON file with token_file= instead"
    else:
        return text
    raise TokenFileError(f"{path} {problem}, or unset ${CAVE_TOKEN_FILE_ENV}.", path)


def _warn_deprecated(path: str) -> None:
    with _lock:
        if path in _warned_deprecated:
            return
        _warned_deprecated.add(path)
    warnings.warn(
        f"The token was read from {path}, a deprecated file name; move it to "
        f"{os.path.join(os.path.dirname(path), DEFAULT_FILE_NAME)} "
        "(or run `cave-auth save`).",
        DeprecatedTokenFileWarning,
        stacklevel=5,
    )


def _ask_colab() -> str | None:
    try:
        userdata = importlib.import_module("google.colab.userdata")
        value = userdata.get(COLAB_SECRET)
    except Exception:  # SecretNotFoundError, NotebookAccessError, a timeout: no token here
        return None
    return value if isinstance(value, str) and value.strip() else None


# -- the steps: each gives a token, or None and notes what it searched -----------


def environment(searched: list[str] | None = None) -> TokenSource | None:
    """Step 2: ``CAVE_TOKEN`` (blank counts as unset: CI sets it empty for a missing secret)."""
    if searched is not None:
        searched.append(f"${CAVE_TOKEN_ENV}")
    return checked(variable(CAVE_TOKEN_ENV), "environment")


def environment_file() -> TokenSource | None:
    """Step 2b: the bare token in the file ``$CAVE_TOKEN_FILE`` names."""
    path = named_token_file()
    if path is None:
        return None
    shown = str(TokenSource("", "file", path))
    try:
        value = read_file(path, _bare_token)
    except TokenFileError as error:  # the reader's message, naming the variable too
        said = str(error)
        said = shown + said[len(path) :] if said.startswith(path) else f"{said} ({shown})"
        raise TokenFileError(printable(said), path) from None
    if value is None:
        raise TokenFileError(
            f"${CAVE_TOKEN_FILE_ENV} names {path}, which does not exist; point it to the "
            "file that holds the token, or unset it.",
            path,
        )
    return checked(value, "file", path)


def _files(places: TokenPlaces, origin: Origin | None, searched: list[str]) -> TokenSource | None:
    """Step 3, ``token_file=`` alone (missing or keyless is an error), else steps 4 to 7."""
    key, named = places.token_key, places.token_file
    for path in [named] if named is not None else places.search_paths(origin):
        searched.append(path)
        found = checked(read_value(path, key), "file", path, key)
        if found is not None:
            if named is None and os.path.basename(path) == DEPRECATED_FILE_NAME:
                _warn_deprecated(path)
            return found
    if named is None:
        return None
    problem = f"has no key {key!r}" if os.path.lexists(named) else "does not exist"
    raise TokenNotFoundError(
        f"No CAVE token found: ${CAVE_TOKEN_ENV} is not set and the token file {named} "
        f"{problem}. Create a token at {new_token_url(places.server_address)} and save "
        f"it with `cave-auth login --token-file {named}`.",
        tuple(searched),
    )


def _colab(searched: list[str]) -> TokenSource | None:
    """Step 8: the Colab notebook secret, where ``google.colab`` is imported; asked once."""
    if "google.colab" not in sys.modules:
        return None
    searched.append(COLAB_PLACE)
    with _lock:
        if "value" not in _colab_answer:
            _colab_answer["value"] = _ask_colab()
        value = _colab_answer["value"]
    return checked(value, "colab")


def lookup(origin: Origin | None, places: TokenPlaces, token: object = None) -> TokenSource:
    """The token for a request to ``origin``: the steps of this module's docstring, in order.

    Raises:
        TokenNotFoundError: no step gave one (the message lists every place searched).
        InvalidTokenError, TokenFileError: a step found something that is not a token.
    """
    if token is not None:
        return TokenSource(check_token(token, "the token= argument"), "explicit")
    searched: list[str] = []
    found = (
        environment(searched)
        or environment_file()
        or _files(places, origin, searched)
        or _colab(searched)
    )
    if found is not None:
        return found
    where = f" for {origin}" if origin is not None else ""
    files = ", ".join(place for place in searched[1:] if place != COLAB_PLACE)
    colab = f", and asked for {COLAB_PLACE}" if COLAB_PLACE in searched else ""
    raise TokenNotFoundError(
        f"No CAVE token found{where}: looked in ${CAVE_TOKEN_ENV} and under key "
        f"{places.token_key!r} in {files}{colab}. Create a token at "
        f"{new_token_url(places.server_address)} and save it with `cave-auth login`.",
        tuple(searched),
    )


def find_token(
    url_or_server: str | None = None,
    *,
    token: object = None,
    server_address: str | None = None,
    token_file: str | os.PathLike[str] | None = None,
    token_key: str = DEFAULT_TOKEN_KEY,
    secrets_dir: str | os.PathLike[str] | None = None,
) -> TokenSource:
    """The token a request to ``url_or_server`` would use, and where it is (see :mod:`.lookup`).

    ``url_or_server``'s own files are searched first (``None`` skips them); the
    keywords are :class:`CAVETokenAuth`'s.

    Raises:
        TokenNotFoundError: no token in any place searched (the message lists them).
        InvalidTokenError: the token found is not a bearer token.
        TokenFileError: a file searched (or named by ``$CAVE_TOKEN_FILE``) is
            missing, corrupt or unreadable.
    """
    places = TokenPlaces.of(server_address, token_file, token_key, secrets_dir)
    return lookup(origin_of(url_or_server), places, token)


def load_token(url_or_server: str | None = None, **token_kwargs: Any) -> str | None:
    """The token :func:`find_token` finds, or ``None`` where there is none.

    Raises:
        InvalidTokenError, TokenFileError: as :func:`find_token`.
    """
    try:
        return find_token(url_or_server, **token_kwargs).token
    except TokenNotFoundError:
        return None


def token_file_paths(
    server_address: str | None = None,
    *,
    secrets_dir: str | os.PathLike[str] | None = None,
) -> list[str]:
    """The files searched for a request to ``server_address``, in order.

    Without ``server_address``: the default server's file
    (``global.daf-apis.com-cave-secret.json``), the default file, the deprecated one.
    """
    places = TokenPlaces.of(server_address, None, DEFAULT_TOKEN_KEY, secrets_dir)
    origin = None if server_address is None else origin_of(places.server_address)
    return places.search_paths(origin)
