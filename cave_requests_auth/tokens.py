"""Tokens and their places: what a token may look like, where one came from, how to
show it, and where tokens live (:class:`TokenPlaces`).

No file is read here. The lookup is in :mod:`.lookup`, saving and deleting in :mod:`.store`.
"""

from __future__ import annotations

import os
import re
from typing import NamedTuple

from .errors import InvalidTokenError
from .urls import Origin, normalize_server_address, server_netloc

__all__ = [
    "CAVE_TOKEN_ENV", "CAVE_TOKEN_FILE_ENV", "CLOUD_VOLUME_DIR_ENV", "COLAB_SECRET",
    "DEFAULT_TOKEN_KEY", "TokenPlaces", "TokenSource", "check_token", "mask_token",
    "named_token_file", "netloc_file", "secrets_folder", "variable",
]  # fmt: skip

CAVE_TOKEN_ENV = "CAVE_TOKEN"
"""Environment variable holding a token; it wins over every file."""
CAVE_TOKEN_FILE_ENV = "CAVE_TOKEN_FILE"
"""Environment variable naming a file that holds the bare token (Docker and Kubernetes secrets)."""
COLAB_SECRET = "CAVE_TOKEN"
"""The Google Colab notebook secret asked for last."""
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
_SOURCE_NAMES = {
    "explicit": "the token= argument",
    "environment": f"the {CAVE_TOKEN_ENV} environment variable",
    "colab": f"the Colab notebook secret {COLAB_SECRET}",
}


class TokenSource:
    """A token and where it came from.

    Attributes:
        token: the token itself. Never shown by ``repr`` or ``str``.
        kind: ``"explicit"`` (``token=``), ``"environment"`` (``CAVE_TOKEN``),
            ``"file"`` or ``"colab"`` (the Colab notebook secret).
        path: the file, for ``kind == "file"``.
        key: the key in that file; ``None`` for the bare token of ``$CAVE_TOKEN_FILE``.
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
        if self.kind != "file":
            return _SOURCE_NAMES.get(self.kind, self.kind)
        if self.key is None:
            return f"{self.path} (named by ${CAVE_TOKEN_FILE_ENV})"
        return f"key {self.key!r} of {self.path}"

    def __repr__(self) -> str:
        where = f", path={self.path!r}, key={self.key!r}" if self.kind == "file" else ""
        return f"TokenSource(kind={self.kind!r}{where})"

    def _fields(self) -> tuple[str, str, str | None, str | None]:
        return (self.token, self.kind, self.path, self.key)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TokenSource):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    @property
    def variable(self) -> str | None:
        """The environment variable that gave the token (``CAVE_TOKEN``, ``CAVE_TOKEN_FILE``)."""
        if self.kind == "environment":
            return CAVE_TOKEN_ENV
        return CAVE_TOKEN_FILE_ENV if self.kind == "file" and self.key is None else None

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


def variable(name: str) -> str | None:
    """The environment variable ``name``, or ``None`` where it is unset or blank."""
    value = os.environ.get(name, "")
    return value if value.strip() else None


def named_token_file() -> str | None:
    """The absolute path ``$CAVE_TOKEN_FILE`` names (``~`` expanded), or ``None`` where unset."""
    named = variable(CAVE_TOKEN_FILE_ENV)
    return None if named is None else os.path.abspath(os.path.expanduser(named))


def secrets_folder(secrets_dir: str | os.PathLike[str] | None = None) -> str:
    """``secrets_dir``, else ``$CLOUD_VOLUME_DIR/secrets``, else ``~/.cloudvolume/secrets``."""
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
        server_address: str | None,
        token_file: str | os.PathLike[str] | None,
        token_key: str,
        secrets_dir: str | os.PathLike[str] | None,
    ) -> TokenPlaces:
        """The places for these arguments, checked.

        Raises:
            TypeError: ``token_key`` is not a non-empty string.
            ValueError: ``server_address`` is not an http(s) URL with a host.
        """
        if not isinstance(token_key, str) or not token_key:
            raise TypeError("token_key must be a non-empty string, such as 'token'.")
        if server_address is not None:
            server_address = normalize_server_address(server_address)
        if token_file is not None:
            token_file = os.path.abspath(os.path.expanduser(os.fspath(token_file)))
        return cls(
            server_address,
            token_file,
            token_key,
            None if secrets_dir is None else os.fspath(secrets_dir),
        )

    @property
    def folder(self) -> str:
        """The secrets folder, read from the environment now."""
        return secrets_folder(self.secrets_dir)

    def __str__(self) -> str:
        """Where the files are, as keyword arguments (for a ``repr``)."""
        if self.token_file is not None:
            return f"token_file={self.token_file!r}, token_key={self.token_key!r}"
        where = f"secrets_dir={self.folder!r}"
        if self.token_key != DEFAULT_TOKEN_KEY:
            where += f", token_key={self.token_key!r}"
        if self.server_address is not None:
            where += f", server_address={self.server_address!r}"
        return where

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
