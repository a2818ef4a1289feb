"""Where CAVE tokens live: finding, checking, saving and deleting them. No HTTP.

The lookup for a request to a URL with host ``h`` and netloc ``n``; the first
place that holds a token wins:

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
"""

from __future__ import annotations

import os
import re
import threading
import warnings
from functools import partial
from typing import Any

from .errors import (
    DeprecatedTokenFileWarning,
    InvalidTokenError,
    TokenFileError,
    TokenNotFoundError,
)
from .files import edit_secret_file, json_type, read_secret_file
from .urls import (
    Origin,
    new_token_url,
    normalize_server_address,
    parse_origin,
    server_netloc,
)

__all__ = [
    "CAVE_TOKEN_ENV",
    "CLOUD_VOLUME_DIR_ENV",
    "DEFAULT_TOKEN_KEY",
    "TokenSource",
    "check_token",
    "delete_token",
    "find_token",
    "load_token",
    "mask_token",
    "save_token",
    "secrets_folder",
    "token_file_paths",
]

CAVE_TOKEN_ENV = "CAVE_TOKEN"
"""Environment variable holding a token; it wins over every file."""
CLOUD_VOLUME_DIR_ENV = "CLOUD_VOLUME_DIR"
"""Environment variable naming CloudVolume's folder (default ``~/.cloudvolume``)."""
DEFAULT_TOKEN_KEY = "token"
DEFAULT_FILE_NAME = "cave-secret.json"
DEPRECATED_FILE_NAME = "chunkedgraph-secret.json"
SERVER_FILE_SUFFIX = "-cave-secret.json"
MAX_FILE_NAME = 255  # bytes, NAME_MAX of common file systems
MAX_TOKEN_LENGTH = 4096
"""Longer is not a token (CAVE's are 32 characters) but a pasted file."""

# RFC 6750, section 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_BEARER_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_WHITE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")

_warned_deprecated: set[str] = set()
_warned_lock = threading.Lock()


class TokenSource:
    """A token and where it came from.

    Attributes:
        token: the token itself. Never shown by ``repr`` or ``str``.
        kind: ``"explicit"`` (``token=``), ``"environment"`` (``CAVE_TOKEN``)
            or ``"file"``.
        path: the file, for ``kind == "file"``.
        key: the key in that file, for ``kind == "file"``.
    """

    __slots__ = ("key", "kind", "path", "token")

    def __init__(
        self, token: str, kind: str, path: str | None = None, key: str | None = None
    ) -> None:
        self.token = token
        self.kind = kind
        self.path = path
        self.key = key

    def __str__(self) -> str:
        if self.kind == "explicit":
            return "the token= argument"
        if self.kind == "environment":
            return f"the {CAVE_TOKEN_ENV} environment variable"
        return f"key {self.key!r} of {self.path}"

    def __repr__(self) -> str:
        where = f", path={self.path!r}, key={self.key!r}" if self.kind == "file" else ""
        return f"TokenSource(kind={self.kind!r}{where})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TokenSource):
            return NotImplemented
        return (self.token, self.kind, self.path, self.key) == (
            other.token,
            other.kind,
            other.path,
            other.key,
        )

    def __hash__(self) -> int:
        return hash((self.token, self.kind, self.path, self.key))

    @property
    def masked(self) -> str:
        """The token's first and last four characters, e.g. ``'abcd…7890'``."""
        return mask_token(self.token)


def mask_token(token: str) -> str:
    """``'abcd…7890'``: enough to tell tokens apart, too little to use one.

    A token shorter than 16 characters shows nothing but ``'…'``.
    """
    return f"{token[:4]}…{token[-4:]}" if len(token) >= 16 else "…"


def check_token(value: object, source: object) -> str:
    """The token with surrounding white space stripped, if it is a bearer token.

    Args:
        value: what was given or read.
        source: where it came from, for the message (a :class:`TokenSource`, or
            words such as ``"the token= argument"``).

    Raises:
        InvalidTokenError: not a string, empty, too long, or holding anything
            RFC 6750 does not allow in a bearer token. The message names the
            source, never the value.
    """
    if not isinstance(value, str):
        raise InvalidTokenError(
            f"The token is a {type(value).__name__}, not a string (from {source}); "
            "give the token as text."
        )
    token = value.strip()
    if _BEARER_TOKEN.fullmatch(token) and len(token) <= MAX_TOKEN_LENGTH:
        return token
    if not token:
        problem = "is empty"
    elif len(token) > MAX_TOKEN_LENGTH:
        problem = f"is {len(token)} characters long (a CAVE token has 32)"
    elif not token.isascii():
        problem = "has a character that is not ASCII"
    elif _WHITE_OR_CONTROL.search(token):
        problem = "has white space or a control character inside it"
    else:
        problem = "has a character a bearer token cannot have (such as ';' or ',')"
    raise InvalidTokenError(
        f"The token {problem} (from {source}); copy the token again, exactly as "
        "the create-token page shows it."
    )


def secrets_folder(secrets_dir: str | os.PathLike[str] | None = None) -> str:
    """The folder of the secret files, read from the environment each call.

    ``secrets_dir`` if given, else ``$CLOUD_VOLUME_DIR/secrets``, else
    ``~/.cloudvolume/secrets``.
    """
    if secrets_dir is not None:
        return os.path.abspath(os.path.expanduser(os.fspath(secrets_dir)))
    base = os.environ.get(CLOUD_VOLUME_DIR_ENV) or os.path.join("~", ".cloudvolume")
    return os.path.abspath(os.path.join(os.path.expanduser(base), "secrets"))


def _netloc_file(folder: str, netloc: str) -> str | None:
    """``<folder>/<netloc>-cave-secret.json``, or ``None`` for a netloc that is no file name."""
    name = netloc + SERVER_FILE_SUFFIX
    if not netloc or "\x00" in netloc or "/" in netloc or "\\" in netloc:
        return None
    if len(name.encode("utf-8", "surrogatepass")) > MAX_FILE_NAME:
        return None  # a long (valid) host name: no file can have its name
    path = os.path.join(folder, name)
    return path if os.path.dirname(path) == folder else None


def _search_paths(folder: str, origin: Origin | None, server: str | None) -> list[str]:
    """Steps 4 to 7 of the lookup: the files, in order, without repeats."""
    netlocs = []
    if origin is not None:
        netlocs += [origin.netloc, origin.host]
    if server is not None:
        netlocs.append(server)
    paths = [_netloc_file(folder, netloc) for netloc in netlocs]
    paths += [os.path.join(folder, DEFAULT_FILE_NAME), os.path.join(folder, DEPRECATED_FILE_NAME)]
    return list(dict.fromkeys(path for path in paths if path is not None))


def _origin_of(url_or_server: str | None) -> Origin | None:
    if url_or_server is None:
        return None
    if not isinstance(url_or_server, str):
        raise TypeError(f"url_or_server must be a URL string, not {type(url_or_server).__name__}.")
    if "://" not in url_or_server:
        url_or_server = "https://" + url_or_server.strip()
    return parse_origin(url_or_server)


def _stored(data: dict[str, Any], path: str, key: str) -> str | None:
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


def _token_in(data: dict[str, Any], path: str, key: str) -> TokenSource | None:
    value = _stored(data, path, key)
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
        stacklevel=4,
    )


def lookup(
    origin: Origin | None,
    *,
    token: object = None,
    server_address: str | None = None,
    token_file: str | os.PathLike[str] | None = None,
    token_key: str = DEFAULT_TOKEN_KEY,
    secrets_dir: str | os.PathLike[str] | None = None,
) -> TokenSource:
    """The lookup for an already parsed origin; see :func:`find_token`."""
    if token is not None:
        return TokenSource(check_token(token, "the token= argument"), "explicit")
    environment = os.environ.get(CAVE_TOKEN_ENV, "")
    if environment.strip():
        source = TokenSource(environment, "environment")
        source.token = check_token(environment, source)
        return source
    if token_file is not None:
        path = os.path.abspath(os.path.expanduser(os.fspath(token_file)))
        data = read_secret_file(path)
        found = None if data is None else _token_in(data, path, token_key)
        if found is None:
            problem = "does not exist" if data is None else f"has no key {token_key!r}"
            raise TokenNotFoundError(
                f"No CAVE token found: $CAVE_TOKEN is not set and the token file {path} "
                f"{problem}. Create a token at {new_token_url(server_address)} and save it "
                f"with `cave-auth login --token-file {path}`.",
                (f"${CAVE_TOKEN_ENV}", path),
            )
        return found
    paths = _search_paths(secrets_folder(secrets_dir), origin, server_netloc(server_address))
    for path in paths:
        data = read_secret_file(path)
        found = None if data is None else _token_in(data, path, token_key)
        if found is not None:
            if os.path.basename(path) == DEPRECATED_FILE_NAME:
                _warn_deprecated(path)
            return found
    where = f" for {origin}" if origin is not None else ""
    raise TokenNotFoundError(
        f"No CAVE token found{where}: looked in ${CAVE_TOKEN_ENV} and under key "
        f"{token_key!r} in {', '.join(paths)}. Create a token at "
        f"{new_token_url(server_address)} and save it with `cave-auth login`.",
        (f"${CAVE_TOKEN_ENV}", *paths),
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
        The token and its source. Files are read on each call.

    Raises:
        TokenNotFoundError: no token in any place searched (the message lists them).
        InvalidTokenError: the token found is not a bearer token.
        TokenFileError: a file searched is corrupt or unreadable.
    """
    return lookup(
        _origin_of(url_or_server),
        token=token,
        server_address=server_address,
        token_file=token_file,
        token_key=token_key,
        secrets_dir=secrets_dir,
    )


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
    origin = (
        None if server_address is None else _origin_of(normalize_server_address(server_address))
    )
    return _search_paths(secrets_folder(secrets_dir), origin, server_netloc(server_address))


def _target_paths(
    server_address: str | None,
    token_file: str | os.PathLike[str] | None,
    secrets_dir: str | os.PathLike[str] | None,
    write_server_file: bool,
) -> list[str]:
    folder = secrets_folder(secrets_dir)
    if token_file is not None:
        main = os.path.abspath(os.path.expanduser(os.fspath(token_file)))
    else:
        main = os.path.join(folder, DEFAULT_FILE_NAME)
    paths = [main]
    if write_server_file:
        server_file = _netloc_file(folder, server_netloc(server_address))
        if server_file is not None:
            paths.append(server_file)
    return list(dict.fromkeys(paths))


def save_token(
    token: str,
    server_address: str | None = None,
    *,
    token_file: str | os.PathLike[str] | None = None,
    token_key: str = DEFAULT_TOKEN_KEY,
    secrets_dir: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    write_server_file: bool = True,
) -> list[str]:
    """Save a token where CAVEclient and CloudVolume find it.

    Writes ``token_file`` (default ``<secrets>/cave-secret.json``) and, with
    ``write_server_file``, ``<secrets>/<server netloc>-cave-secret.json`` of
    ``server_address`` (default :data:`DEFAULT_SERVER_ADDRESS`), as CAVEclient's
    ``AuthClient.save_token`` does. Other keys in those files are kept. Each file
    is replaced atomically, mode 0600, in folders made 0700.

    Args:
        overwrite: replace a different token already under ``token_key``.
            Without it such a file is refused (before any file is written); the
            same token already there is left as it is.

    Returns:
        The files that hold the token now.

    Raises:
        InvalidTokenError: ``token`` is not a bearer token.
        TokenFileError: a file holds a different token and ``overwrite`` is
            false, a file is corrupt, or a folder is not writable.
    """
    token = check_token(token, "the token given to save_token")
    paths = _target_paths(server_address, token_file, secrets_dir, write_server_file)

    def put(data: dict[str, Any], path: str) -> dict[str, Any] | None:
        old = _stored(data, path, token_key)
        if old == token:
            return None
        if old is not None and not overwrite:
            raise TokenFileError(
                f"{path} already holds a different token under key {token_key!r}; "
                "pass overwrite=True (or run `cave-auth save`) to replace it.",
                path,
            )
        data[token_key] = token
        return data

    for path in paths:  # refuse before writing anything
        current = read_secret_file(path, check_mode=False)
        if current is not None:
            put(current, path)
    for path in paths:
        edit_secret_file(path, partial(put, path=path))
    return paths


def delete_token(
    server_address: str | None = None,
    *,
    token_file: str | os.PathLike[str] | None = None,
    token_key: str = DEFAULT_TOKEN_KEY,
    secrets_dir: str | os.PathLike[str] | None = None,
    write_server_file: bool = True,
) -> list[str]:
    """Remove the token from the files :func:`save_token` writes.

    Other keys are kept; a file left with no key is removed.

    Returns:
        The files that held the token and no longer do.

    Raises:
        TokenFileError: a file is corrupt or its folder is not writable.
    """
    paths = _target_paths(server_address, token_file, secrets_dir, write_server_file)

    def drop(data: dict[str, Any], path: str) -> dict[str, Any] | None:
        if _stored(data, path, token_key) is None:
            return None
        del data[token_key]
        return data

    removed = []
    for path in paths:
        if os.path.lexists(path) and edit_secret_file(path, partial(drop, path=path)):
            removed.append(path)
    return removed
