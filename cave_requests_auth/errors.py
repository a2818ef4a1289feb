"""Everything this package raises or warns, in one place.

Exceptions::

    CAVEAuthError                     the root: ``except CAVEAuthError`` catches all
    ├── TokenNotFoundError            no token anywhere (also a LookupError)
    ├── InvalidTokenError             a token that cannot be a bearer token (also a ValueError)
    ├── TokenFileError                a secret file that cannot be read or written (also an OSError)
    ├── InsecureTransportError        the token would go out over plain http (also a ValueError)
    └── AuthResponseError             a CAVE service refused the token (also a requests.HTTPError)

Warnings::

    CAVEAuthWarning                   the root (a UserWarning)
    ├── TokenFileModeWarning          a token file that group or others may read
    └── DeprecatedTokenFileWarning    a token read from chunkedgraph-secret.json (a FutureWarning)

No message here ever holds a token: they name where a token came from (a file
and its key, or the environment), never its value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from requests.exceptions import HTTPError

if TYPE_CHECKING:
    from requests import Response

__all__ = [
    "AuthResponseError",
    "CAVEAuthError",
    "CAVEAuthWarning",
    "DeprecatedTokenFileWarning",
    "InsecureTransportError",
    "InvalidTokenError",
    "TokenFileError",
    "TokenFileModeWarning",
    "TokenNotFoundError",
]


class CAVEAuthError(Exception):
    """The root of every error this package raises."""


class TokenNotFoundError(CAVEAuthError, LookupError):
    """No token was found in any of the places searched.

    ``searched`` lists those places, in order.
    """

    def __init__(self, message: str, searched: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.searched = searched


class InvalidTokenError(CAVEAuthError, ValueError):
    """A token that is not a bearer token (RFC 6750), named by its source."""


class TokenFileError(CAVEAuthError, OSError):
    """A secret file that is corrupt, unreadable or cannot be written.

    ``path`` is the file (or folder) concerned.
    """

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.path = path

    def __str__(self) -> str:
        # OSError formats itself from errno and filename; ours is one sentence.
        return str(self.args[0])

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.args[0], self.path))


class InsecureTransportError(CAVEAuthError, ValueError):
    """The token would be sent over plain ``http://`` to a host that is not loopback."""


class AuthResponseError(CAVEAuthError, HTTPError):
    """A CAVE service answered that the token is missing, invalid or not allowed.

    Attributes:
        code: the service's error code (``"no_token"``, ``"invalid_token"``,
            ``"bad_auth_header"``, ``"missing_tos"``, ``"missing_permission"``,
            ``"missing_role"``), or ``"forbidden"`` for a plain 403.
        tos_form_url: where to accept the terms of service, for ``missing_tos``.
        response: the :class:`requests.Response` that carried the answer.
    """

    response: Response

    def __init__(
        self,
        message: str,
        *,
        code: str,
        response: Response,
        tos_form_url: str | None = None,
    ) -> None:
        super().__init__(message, response=response, request=response.request)
        self.code = code
        self.tos_form_url = tos_form_url


class CAVEAuthWarning(UserWarning):
    """The root of every warning this package gives."""


class TokenFileModeWarning(CAVEAuthWarning):
    """A token file that group or others may read or write."""


class DeprecatedTokenFileWarning(CAVEAuthWarning, FutureWarning):
    """A token read from the deprecated ``chunkedgraph-secret.json``."""
