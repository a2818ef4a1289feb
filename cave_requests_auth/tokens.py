"""Token values: what a token may look like, where one came from, how to show it.

No I/O. The lookup is in :mod:`.lookup`, saving and deleting in :mod:`.store`.
"""

from __future__ import annotations

import re

from .errors import InvalidTokenError

__all__ = [
    "CAVE_TOKEN_ENV",
    "CLOUD_VOLUME_DIR_ENV",
    "DEFAULT_TOKEN_KEY",
    "TokenSource",
    "check_token",
    "mask_token",
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
