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
from .files import edit_secret_file, missing_folders, read_secret_file, write_target
from .lookup import read_value, stored_value
from .secretjson import reason
from .tokens import (
    CAVE_TOKEN_ENV,
    CAVE_TOKEN_FILE_ENV,
    DEFAULT_FILE_NAME,
    DEFAULT_TOKEN_KEY,
    DEPRECATED_FILE_NAME,
    SERVER_FILE_SUFFIX,
    TokenPlaces,
    check_token,
    named_token_file,
    netloc_file,
    variable,
)
from .urls import server_netloc

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "PLACEHOLDER", "check_can_save", "check_pasted", "delete_token", "remove_token",
    "save_token", "saved_token_files", "target_paths", "warn_if_environment_wins",
]  # fmt: skip

PLACEHOLDER = "PASTE_YOUR_TOKEN_HERE"
"""The stand-in for a token in the examples (CAVEclient's and ours)."""

_CAVE_SHAPE = re.compile(r"[0-9a-fA-F]{32}")
_SLIPS = (  # (what a pasted value starts with, what it is and what to do), tried in order
    (
        re.compile(rf"[\"']*{re.escape(PLACEHOLDER)}[\"']*\Z"),
        f"is the placeholder {PLACEHOLDER} of the example (from {{}}); put your own token, "
        "from the create-token page, in its place",
    ),
    (
        re.compile(r"(authorization\s*:\s*)?bearer\s", re.IGNORECASE),
        "starts with 'Bearer ' (from {}); give the token alone, without 'Bearer ' (that "
        "word belongs to the Authorization header)",
    ),
    (
        re.compile(r"[{\[\"']"),
        "looks like JSON or a quoted string (from {}); give the token alone, the "
        "characters between the quotes, without quotes or braces",
    ),
)


def check_pasted(value: object, source: object) -> str:
    """A pasted token, checked: :func:`.tokens.check_token`, with hints for common slips.

    Returns:
        The token, surrounding white space stripped.

    Raises:
        InvalidTokenError: the placeholder ``PASTE_YOUR_TOKEN_HERE``, a value
            starting with ``"Bearer "``, JSON or a quoted string, or anything
            :func:`.tokens.check_token` refuses; named by ``source``, never the value.

    Warns:
        CAVEAuthWarning: not 32 hexadecimal characters (accepted: other
            deployments use other formats).
    """
    text = value.strip() if isinstance(value, str) else ""
    for slip, problem in _SLIPS:
        if slip.match(text):
            raise InvalidTokenError(f"The token {problem.format(source)}.")
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
    """The files ``save`` writes: the token file (or the default file), and the server's.

    Raises:
        TokenFileError: one is the file ``$CAVE_TOKEN_FILE`` names (its bare token
            is never written).
    """
    folder = places.folder
    paths = [places.token_file or os.path.join(folder, DEFAULT_FILE_NAME)]
    if write_server_file:
        server_file = netloc_file(folder, server_netloc(places.server_address))
        if server_file is not None:
            paths.append(server_file)
    named = named_token_file()
    for path in paths:
        if named is not None and os.path.realpath(path) == os.path.realpath(named):
            raise TokenFileError(
                f"{path} is the file ${CAVE_TOKEN_FILE_ENV} names, which holds the bare "
                "token and is never written here; replace the token in it yourself.",
                path,
            )
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


def check_can_save(places: TokenPlaces, write_server_file: bool = True) -> list[str]:
    """Check, changing nothing, that a token could be saved; the files it would go to.

    Each file must hold a JSON object (a string, if anything, under the key), and
    its folder (or the nearest that exists) must let a file be created in it.

    Raises:
        TokenFileError: a file is corrupt or unreadable, or a folder is not writable.
    """
    paths = target_paths(places, write_server_file)
    for path in paths:
        read_value(path, places.token_key, check_mode=False)
        folder = os.path.dirname(write_target(path))
        missing = missing_folders(folder)
        if missing:
            parent = os.path.dirname(missing[0])
            if not os.access(parent, os.W_OK | os.X_OK):
                raise TokenFileError(
                    f"Cannot save a token in {folder}: it does not exist and {parent} "
                    "is not writable.",
                    folder,
                )
            continue
        try:
            fd, probe = tempfile.mkstemp(prefix=".cave-auth-probe-", dir=folder)
        except OSError as error:
            raise TokenFileError(
                f"Cannot save a token in {folder}: the folder is not writable ({reason(error)}).",
                folder,
            ) from None
        os.close(fd)
        os.unlink(probe)
    return paths


def warn_if_environment_wins(paths: list[str]) -> None:
    """Warn where ``$CAVE_TOKEN`` or ``$CAVE_TOKEN_FILE`` is set: requests use it, not ``paths``."""
    for name in (CAVE_TOKEN_ENV, CAVE_TOKEN_FILE_ENV):
        if variable(name) is not None:
            warnings.warn(
                f"{name} is set, so requests use it, not the token saved in "
                f"{', '.join(paths)}; unset {name} to use the saved token.",
                CAVEAuthWarning,
                stacklevel=3,
            )
            return


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
    """Save a token where CAVEclient and CloudVolume find it; the files that hold it now.

    Writes ``token_file`` (default ``<secrets>/cave-secret.json``) and, with
    ``write_server_file``, ``<secrets>/<server netloc>-cave-secret.json``, as
    CAVEclient's ``AuthClient.save_token`` does, keeping other keys; never the file
    ``$CAVE_TOKEN_FILE`` names. ``overwrite`` replaces a different token under
    ``token_key``; without it such a file is refused before any file is written.

    Raises:
        InvalidTokenError: ``token`` is not a bearer token (see :func:`check_pasted`).
        TokenFileError: a file holds a different token and ``overwrite`` is
            false, a file is corrupt, or a folder is not writable.

    Warns:
        CAVEAuthWarning: the token is not 32 hexadecimal characters, CAVE's shape;
            or ``$CAVE_TOKEN`` or ``$CAVE_TOKEN_FILE`` is set, so requests use it.
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
        put(read_secret_file(path, check_mode=False) or {}, path)
    for path in paths:
        edit_secret_file(path, partial(put, path=path))
    warn_if_environment_wins(paths)
    return paths


def remove_token(paths: Iterable[str], token_key: str = DEFAULT_TOKEN_KEY) -> list[str]:
    """Remove ``token_key`` from each of ``paths``, keeping other keys; the files that had it.

    Every file is read first: a corrupt one stops everything before any change.
    A file left with no key is removed.

    Raises:
        TokenFileError: a file is corrupt or its folder is not writable.
    """
    paths = list(dict.fromkeys(paths))
    holding = [p for p in paths if read_value(p, token_key, check_mode=False) is not None]

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
    """Remove the token from the files :func:`save_token` writes; the files that had it.

    Other keys are kept; a file left with no key is removed. (``cave-auth logout``
    also removes it from every other file a request to the server would read.)

    Raises:
        TokenFileError: a file is corrupt or its folder is not writable.
    """
    places = TokenPlaces.of(server_address, token_file, token_key, secrets_dir)
    return remove_token(target_paths(places, write_server_file), token_key)
