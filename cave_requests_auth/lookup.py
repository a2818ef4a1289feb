"""Finding a CAVE token: where tokens live, and the lookup as a chain of steps. No HTTP.

The lookup for a request to a URL with host ``h`` and netloc ``n``; the first
step that gives a token wins (this list is the order; :func:`lookup` is it in code):

1. ``token=`` given;
2. the environment variable ``CAVE_TOKEN``;
3. ``token_file=`` given (that file only: missing or keyless is an error);
4. ``<secrets>/<n>-cave-secret.json``, then ``<secrets>/<h>-cave-secret.json``;
5. ``<secrets>/<server netloc>-cave-secret.json`` of ``server_address``, by default
   ``global.daf-apis.com-cave-secret.json``, as CAVEclient does (its ``save_token``
   replaces the token there alone once that file exists);
6. ``<secrets>/cave-secret.json``;
7. ``<secrets>/chunkedgraph-secret.json``, with a deprecation warning.

``<secrets>`` is ``secrets_dir=``, else ``$CLOUD_VOLUME_DIR/secrets``, else
``~/.cloudvolume/secrets``: the files CAVEclient and CloudVolume read and write.
Steps 4 to 7 are :meth:`TokenPlaces.search_paths`.
"""

from __future__ import annotations

import os
import threading
import warnings
from typing import Any, NamedTuple

from .errors import DeprecatedTokenFileWarning, TokenFileError, TokenNotFoundError
from .files import json_type, read_secret_file
from .tokens import (
    CAVE_TOKEN_ENV,
    CLOUD_VOLUME_DIR_ENV,
    DEFAULT_FILE_NAME,
    DEFAULT_TOKEN_KEY,
    DEPRECATED_FILE_NAME,
    MAX_FILE_NAME,
    SERVER_FILE_SUFFIX,
    TokenSource,
    check_token,
)
from .urls import Origin, new_token_url, normalize_server_address, parse_origin, server_netloc

__all__ = [
    "TokenPlaces",
    "find_token",
    "load_token",
    "lookup",
    "origin_of",
    "secrets_folder",
    "stored_value",
    "token_file_paths",
]

_warned_deprecated: set[str] = set()
_warned_lock = threading.Lock()


def secrets_folder(secrets_dir: str | os.PathLike[str] | None = None) -> str:
    """The folder of the secret files, read from the environment each call.

    ``secrets_dir`` if given, else ``$CLOUD_VOLUME_DIR/secrets``, else
    ``~/.cloudvolume/secrets``.
    """
    if secrets_dir is not None:
        return os.path.abspath(os.path.expanduser(os.fspath(secrets_dir)))
    base = os.environ.get(CLOUD_VOLUME_DIR_ENV) or os.path.join("~", ".cloudvolume")
    return os.path.abspath(os.path.join(os.path.expanduser(base), "secrets"))


def netloc_file(folder: str, netloc: str) -> str | None:
    """``<folder>/<netloc>-cave-secret.json``, or ``None`` for a netloc that is no file name."""
    name = netloc + SERVER_FILE_SUFFIX
    if not netloc or "\x00" in netloc or "/" in netloc or "\\" in netloc:
        return None
    if len(name.encode("utf-8", "surrogatepass")) > MAX_FILE_NAME:
        return None  # a long (valid) host name: no file can have its name
    path = os.path.join(folder, name)
    return path if os.path.dirname(path) == folder else None


class TokenPlaces(NamedTuple):
    """Where tokens live: the one value the lookup, ``save`` and ``delete`` take.

    Build it with :meth:`of`, which checks and normalises the values.
    """

    server_address: str | None = None
    """The auth server, normalised (``None``: the default server)."""
    token_file: str | None = None
    """An absolute path: read (and write) this file only."""
    token_key: str = DEFAULT_TOKEN_KEY
    """The key of the token in the JSON files."""
    secrets_dir: str | None = None
    """The folder given (``None``: ``$CLOUD_VOLUME_DIR/secrets`` or the home's)."""

    @classmethod
    def of(
        cls,
        server_address: str | None = None,
        token_file: str | os.PathLike[str] | None = None,
        token_key: str = DEFAULT_TOKEN_KEY,
        secrets_dir: str | os.PathLike[str] | None = None,
    ) -> TokenPlaces:
        """The places for these arguments, checked.

        Raises:
            TypeError: ``token_key`` is not a non-empty string.
            ValueError: ``server_address`` is not an http(s) URL with a host.
        """
        if not isinstance(token_key, str) or not token_key:
            raise TypeError("token_key must be a non-empty string, such as 'token'.")
        return cls(
            None if server_address is None else normalize_server_address(server_address),
            None
            if token_file is None
            else os.path.abspath(os.path.expanduser(os.fspath(token_file))),
            token_key,
            None if secrets_dir is None else os.fspath(secrets_dir),
        )

    @property
    def folder(self) -> str:
        """The secrets folder, read from the environment now."""
        return secrets_folder(self.secrets_dir)

    def search_paths(self, origin: Origin | None) -> list[str]:
        """Steps 4 to 7 of the lookup: the files, in order, without repeats."""
        netlocs = [] if origin is None else [origin.file_netloc, origin.name]
        netlocs.append(server_netloc(self.server_address))
        folder = self.folder
        paths = [netloc_file(folder, netloc) for netloc in netlocs]
        paths += [
            os.path.join(folder, DEFAULT_FILE_NAME),
            os.path.join(folder, DEPRECATED_FILE_NAME),
        ]
        return list(dict.fromkeys(path for path in paths if path is not None))


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


def _token_in_file(path: str, key: str) -> TokenSource | None:
    """The token under ``key`` in ``path``, checked; ``None`` without file or key."""
    data = read_secret_file(path)
    value = None if data is None else stored_value(data, path, key)
    if value is None:
        return None
    source = TokenSource(value, "file", path, key)
    source.token = check_token(value, source)
    return source


def _warn_deprecated(path: str) -> None:
    with _warned_lock:
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


# -- the steps: each gives a token, or None and notes what it searched -----------


def _explicit(token: object) -> TokenSource | None:
    """Step 1: ``token=``."""
    if token is None:
        return None
    return TokenSource(check_token(token, "the token= argument"), "explicit")


def _environment(searched: list[str]) -> TokenSource | None:
    """Step 2: ``CAVE_TOKEN`` (blank counts as unset: CI sets it empty for a missing secret)."""
    searched.append(f"${CAVE_TOKEN_ENV}")
    value = os.environ.get(CAVE_TOKEN_ENV, "")
    if not value.strip():
        return None
    source = TokenSource(value, "environment")
    source.token = check_token(value, source)
    return source


def _token_file(places: TokenPlaces, searched: list[str]) -> TokenSource | None:
    """Step 3: ``token_file=``; where it is given, it is the last step."""
    path = places.token_file
    if path is None:
        return None
    searched.append(path)
    found = _token_in_file(path, places.token_key)
    if found is None:
        problem = (
            "does not exist" if not os.path.lexists(path) else (f"has no key {places.token_key!r}")
        )
        raise TokenNotFoundError(
            f"No CAVE token found: ${CAVE_TOKEN_ENV} is not set and the token file {path} "
            f"{problem}. Create a token at {new_token_url(places.server_address)} and save "
            f"it with `cave-auth login --token-file {path}`.",
            tuple(searched),
        )
    return found


def _secret_files(
    places: TokenPlaces, origin: Origin | None, searched: list[str]
) -> TokenSource | None:
    """Steps 4 to 7: the files of :meth:`TokenPlaces.search_paths`, in order."""
    for path in places.search_paths(origin):
        searched.append(path)
        found = _token_in_file(path, places.token_key)
        if found is not None:
            if os.path.basename(path) == DEPRECATED_FILE_NAME:
                _warn_deprecated(path)
            return found
    return None


def lookup(origin: Origin | None, places: TokenPlaces, token: object = None) -> TokenSource:
    """The token for a request to ``origin``: the steps of this module's docstring, in order.

    Raises:
        TokenNotFoundError: no step gave one (the message lists every place searched).
        InvalidTokenError, TokenFileError: a step found something that is not a token.
    """
    searched: list[str] = []
    found = (
        _explicit(token)
        or _environment(searched)
        or _token_file(places, searched)
        or _secret_files(places, origin, searched)
    )
    if found is not None:
        return found
    where = f" for {origin}" if origin is not None else ""
    raise TokenNotFoundError(
        f"No CAVE token found{where}: looked in ${CAVE_TOKEN_ENV} and under key "
        f"{places.token_key!r} in {', '.join(searched[1:])}. Create a token at "
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
    """Find the token a request to ``url_or_server`` would use, and where it is.

    Args:
        url_or_server: the URL (or server address) a request goes to; its own
            files, ``<netloc>-cave-secret.json`` and ``<host>-cave-secret.json``,
            are searched first. ``None`` skips them.
        token: a token given directly; wins over everything.
        server_address: the auth server (default :data:`DEFAULT_SERVER_ADDRESS`);
            its ``<netloc>-cave-secret.json`` is searched before the default file.
        token_file: read this file only.
        token_key: the key in the JSON files (default ``"token"``).
        secrets_dir: the folder of the files (default ``$CLOUD_VOLUME_DIR/secrets``
            or ``~/.cloudvolume/secrets``).

    Returns:
        The token and its source.

    Raises:
        TokenNotFoundError: no token in any place searched (the message lists them).
        InvalidTokenError: the token found is not a bearer token.
        TokenFileError: a file searched is corrupt or unreadable.
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
    places = TokenPlaces.of(server_address, secrets_dir=secrets_dir)
    origin = None if server_address is None else origin_of(places.server_address)
    return places.search_paths(origin)
