"""Saving and deleting CAVE tokens, in the files CAVEclient and CloudVolume read. No HTTP.

Every write goes through :func:`.files.edit_secret_file` (atomic, locked, 0600).
Before a token is saved it is checked as a pasted value: the placeholder of the
examples, a leading ``"Bearer "`` and a JSON blob are refused with a hint, and a
token that is not 32 hexadecimal characters (CAVE's own shape) gets a warning.
"""

from __future__ import annotations

import glob
import os
import re
import tempfile
import warnings
from functools import partial
from typing import TYPE_CHECKING, Any

from .errors import CAVEAuthWarning, InvalidTokenError, TokenFileError
from .files import edit_secret_file, read_secret_file
from .lookup import TokenPlaces, netloc_file, stored_value
from .tokens import (
    DEFAULT_FILE_NAME,
    DEFAULT_TOKEN_KEY,
    DEPRECATED_FILE_NAME,
    SERVER_FILE_SUFFIX,
    check_token,
)
from .urls import server_netloc

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "PLACEHOLDER",
    "check_can_save",
    "check_pasted",
    "delete_token",
    "remove_token",
    "save_token",
    "saved_token_files",
    "target_paths",
]

PLACEHOLDER = "PASTE_YOUR_TOKEN_HERE"
"""The stand-in for a token in the examples (CAVEclient's and ours)."""

_CAVE_SHAPE = re.compile(r"[0-9a-fA-F]{32}")
_BEARER_PREFIX = re.compile(r"(authorization\s*:\s*)?bearer\s", re.IGNORECASE)


def check_pasted(value: object, source: object) -> str:
    """A pasted token, checked: :func:`.tokens.check_token`, with hints for common slips.

    Args:
        value: what was given.
        source: where it came from, for the message (never the value).

    Returns:
        The token, surrounding white space stripped.

    Raises:
        InvalidTokenError: the placeholder ``PASTE_YOUR_TOKEN_HERE``, a value
            starting with ``"Bearer "``, JSON or a quoted string, or anything
            :func:`.tokens.check_token` refuses.

    Warns:
        CAVEAuthWarning: the token is not 32 hexadecimal characters (it is
            still accepted: other deployments use other formats).
    """
    if isinstance(value, str):
        text = value.strip()
        if text.strip("\"'") == PLACEHOLDER:
            raise InvalidTokenError(
                f"The token is the placeholder {PLACEHOLDER} of the example (from {source}); "
                "put your own token, from the create-token page, in its place."
            )
        if _BEARER_PREFIX.match(text):
            raise InvalidTokenError(
                f"The token starts with 'Bearer ' (from {source}); give the token alone, "
                "without 'Bearer ' (that word belongs to the Authorization header)."
            )
        if text[:1] in ("{", "[", '"', "'"):
            raise InvalidTokenError(
                f"The token looks like JSON or a quoted string (from {source}); give the "
                "token alone, the characters between the quotes, without quotes or braces."
            )
    token = check_token(value, source)
    if not _CAVE_SHAPE.fullmatch(token):
        warnings.warn(
            f"The token is {len(token)} characters long and not the 32 hexadecimal "
            "characters of a CAVE token; it is accepted (other deployments use other "
            "formats), but check that it was copied whole.",
            CAVEAuthWarning,
            stacklevel=3,
        )
    return token


def target_paths(places: TokenPlaces, write_server_file: bool) -> list[str]:
    """The files ``save`` writes: the token file (or the default file), and the server's."""
    folder = places.folder
    paths = [places.token_file or os.path.join(folder, DEFAULT_FILE_NAME)]
    if write_server_file:
        server_file = netloc_file(folder, server_netloc(places.server_address))
        if server_file is not None:
            paths.append(server_file)
    return list(dict.fromkeys(paths))


def saved_token_files(folder: str) -> list[str]:
    """Every CAVE token file in ``folder``: ``*-cave-secret.json``, the default, the deprecated.

    Server files first (sorted), then ``cave-secret.json``, then
    ``chunkedgraph-secret.json``; only files that exist (or are links).
    """
    servers = sorted(glob.glob(os.path.join(glob.escape(folder), "*" + SERVER_FILE_SUFFIX)))
    paths = [
        *servers,
        os.path.join(folder, DEFAULT_FILE_NAME),
        os.path.join(folder, DEPRECATED_FILE_NAME),
    ]
    return [path for path in dict.fromkeys(paths) if os.path.lexists(path)]


def _read_value(path: str, token_key: str) -> str | None:
    """The string under ``token_key`` in ``path`` (``None``: no file or no key), strictly."""
    try:
        data = read_secret_file(path, check_mode=False)
    except RecursionError:
        raise TokenFileError(
            f"{path} is nested too deeply to be a token file; delete it or save a new token.",
            path,
        ) from None
    return None if data is None else stored_value(data, path, token_key)


def _nearest_folder(folder: str) -> str:
    """``folder``, or the nearest of its parents that exists."""
    current = os.path.abspath(folder)
    while not os.path.isdir(current):
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return current


def check_can_save(places: TokenPlaces, write_server_file: bool = True) -> list[str]:
    """Check, without changing anything, that a token could be saved; the files it would go to.

    Each file must be readable and hold a JSON object (a string, if anything,
    under the key), and its folder (or the nearest parent that exists, where
    the folder is still to be made) must let a file be created in it.

    Raises:
        TokenFileError: a file is corrupt or unreadable, or a folder is not writable.
    """
    paths = target_paths(places, write_server_file)
    for path in paths:
        _read_value(path, places.token_key)
        target = os.path.realpath(path) if os.path.islink(path) else path
        folder = os.path.dirname(target)
        if os.path.isdir(folder):
            try:
                fd, probe = tempfile.mkstemp(prefix=".cave-auth-probe-", dir=folder)
            except OSError as error:
                raise TokenFileError(
                    f"Cannot save a token in {folder}: the folder is not writable "
                    f"({error.strerror or type(error).__name__}).",
                    folder,
                ) from None
            os.close(fd)
            os.unlink(probe)
        else:
            parent = _nearest_folder(folder)
            if not os.access(parent, os.W_OK | os.X_OK):
                raise TokenFileError(
                    f"Cannot save a token in {folder}: it does not exist and {parent} "
                    "is not writable.",
                    folder,
                )
    return paths


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
        InvalidTokenError: ``token`` is not a bearer token, or is the example's
            placeholder ``PASTE_YOUR_TOKEN_HERE``, or starts with ``"Bearer "``,
            or is JSON (see :func:`check_pasted`).
        TokenFileError: a file holds a different token and ``overwrite`` is
            false, a file is corrupt, or a folder is not writable.

    Warns:
        CAVEAuthWarning: the token is not 32 hexadecimal characters, CAVE's shape.
    """
    token = check_pasted(token, "the token given to save_token")
    places = TokenPlaces.of(server_address, token_file, token_key, secrets_dir)
    paths = target_paths(places, write_server_file)

    def put(data: dict[str, Any], path: str) -> dict[str, Any] | None:
        old = stored_value(data, path, token_key)
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
        old = _read_value(path, token_key)
        if old is not None:
            put({token_key: old}, path)
    for path in paths:
        edit_secret_file(path, partial(put, path=path))
    return paths


def remove_token(paths: Iterable[str], token_key: str = DEFAULT_TOKEN_KEY) -> list[str]:
    """Remove ``token_key`` from each of ``paths`` that has it, keeping other keys.

    Every file is read first: a corrupt one stops everything before any change.
    A file left with no key is removed.

    Returns:
        The files that held the token and no longer do.

    Raises:
        TokenFileError: a file is corrupt or its folder is not writable.
    """
    holding = [path for path in dict.fromkeys(paths) if _read_value(path, token_key) is not None]

    def drop(data: dict[str, Any], path: str) -> dict[str, Any] | None:
        if stored_value(data, path, token_key) is None:
            return None
        del data[token_key]
        return data

    return [path for path in holding if edit_secret_file(path, partial(drop, path=path))]


def delete_token(
    server_address: str | None = None,
    *,
    token_file: str | os.PathLike[str] | None = None,
    token_key: str = DEFAULT_TOKEN_KEY,
    secrets_dir: str | os.PathLike[str] | None = None,
    write_server_file: bool = True,
) -> list[str]:
    """Remove the token from the files :func:`save_token` writes.

    Other keys are kept; a file left with no key is removed. (``cave-auth
    logout`` also removes it from every other file a request to the server
    would read, the deprecated ``chunkedgraph-secret.json`` included.)

    Returns:
        The files that held the token and no longer do.

    Raises:
        TokenFileError: a file is corrupt or its folder is not writable.
    """
    places = TokenPlaces.of(server_address, token_file, token_key, secrets_dir)
    return remove_token(target_paths(places, write_server_file), token_key)
