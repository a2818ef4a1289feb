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
and its key, or the environment), never its value. Every error pickles and
copies (a worker process can raise one through ``concurrent.futures``), and its
pickle holds no token: ``AuthResponseError`` leaves its ``response`` (whose
request carries the token) behind.
"""

from __future__ import annotations

from typing import Any

from requests.exceptions import HTTPError

__all__ = [
    "AuthResponseError", "CAVEAuthError", "CAVEAuthWarning", "DeprecatedTokenFileWarning",
    "InsecureTransportError", "InvalidTokenError", "TokenFileError", "TokenFileModeWarning",
    "TokenNotFoundError",
]  # fmt: skip


class CAVEAuthError(Exception):
    """The root of every error this package raises."""


class TokenNotFoundError(CAVEAuthError, LookupError):
    """No token was found in any of the places searched.

    ``searched`` lists those places, in order.
    """

    def __init__(self, message: str, searched: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.searched = tuple(searched)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.args[0], self.searched))


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
        response: the response that carried the answer (a :class:`requests.Response`,
            or the response of the library it came from); ``None`` once unpickled,
            since its request carries the token.
    """

    response: Any

    def __init__(
        self,
        message: str,
        *,
        code: str,
        response: Any = None,
        tos_form_url: str | None = None,
    ) -> None:
        super().__init__(message, response=response, request=getattr(response, "request", None))
        self.code = code
        self.tos_form_url = tos_form_url

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_response_error, (type(self), self.args[0], self.code, self.tos_form_url))

    def __copy__(self) -> AuthResponseError:
        return type(self)(
            self.args[0], code=self.code, response=self.response, tos_form_url=self.tos_form_url
        )


def _rebuild_response_error(
    cls: type[AuthResponseError], message: str, code: str, tos_form_url: str | None
) -> AuthResponseError:
    """Unpickle an :class:`AuthResponseError`, without the response it was raised for."""
    return cls(message, code=code, tos_form_url=tos_form_url)


class CAVEAuthWarning(UserWarning):
    """The root of every warning this package gives."""


class TokenFileModeWarning(CAVEAuthWarning):
    """A token file that group or others may read or write."""


class DeprecatedTokenFileWarning(CAVEAuthWarning, FutureWarning):
    """A token read from the deprecated ``chunkedgraph-secret.json``."""
