"""Saving and deleting CAVE tokens, in the files CAVEclient and CloudVolume read. No HTTP.

Every write goes through :func:`.files.edit_secret_file` (atomic, locked, 0600).
"""

from __future__ import annotations

import os
from functools import partial
from typing import Any

from .errors import TokenFileError
from .files import edit_secret_file, read_secret_file
from .lookup import TokenPlaces, netloc_file, stored_value
from .tokens import DEFAULT_FILE_NAME, DEFAULT_TOKEN_KEY, check_token
from .urls import server_netloc

__all__ = ["delete_token", "save_token", "target_paths"]


def target_paths(places: TokenPlaces, write_server_file: bool) -> list[str]:
    """The files ``save`` writes: the token file (or the default file), and the server's."""
    folder = places.folder
    paths = [places.token_file or os.path.join(folder, DEFAULT_FILE_NAME)]
    if write_server_file:
        server_file = netloc_file(folder, server_netloc(places.server_address))
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
    places = TokenPlaces.of(server_address, token_file, token_key, secrets_dir)
    paths = target_paths(places, write_server_file)

    def drop(data: dict[str, Any], path: str) -> dict[str, Any] | None:
        if stored_value(data, path, token_key) is None:
            return None
        del data[token_key]
        return data

    removed = []
    for path in paths:
        if os.path.lexists(path) and edit_secret_file(path, partial(drop, path=path)):
            removed.append(path)
    return removed
