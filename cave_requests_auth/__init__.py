"""CAVE credentials for plain requests and urllib3.

>>> import requests
>>> from cave_requests_auth import CAVETokenAuth
>>> requests.get(url, auth=CAVETokenAuth())  # doctest: +SKIP

The token is found as CAVEclient and CloudVolume find it (``~/.cloudvolume/secrets``),
or in ``CAVE_TOKEN``; see :func:`find_token` for the order.
"""

from ._version import __version__
from .account import whoami
from .errors import (
    AuthResponseError,
    CAVEAuthError,
    CAVEAuthWarning,
    DeprecatedTokenFileWarning,
    InsecureTransportError,
    InvalidTokenError,
    TokenFileError,
    TokenFileModeWarning,
    TokenNotFoundError,
)
from .exchange import raise_for_auth
from .login import get_new_token, login
from .lookup import find_token, load_token, token_file_paths
from .store import delete_token, save_token
from .tokens import TokenSource
from .transport.requests import CAVEAuthAdapter, CAVETokenAuth
from .transport.urllib3 import CAVEPoolManager, CAVEProxyManager, auth_headers
from .urls import DEFAULT_SERVER_ADDRESS, new_token_url, token_page_url

__all__ = [
    "DEFAULT_SERVER_ADDRESS", "AuthResponseError", "CAVEAuthAdapter", "CAVEAuthError",
    "CAVEAuthWarning", "CAVEPoolManager", "CAVEProxyManager", "CAVETokenAuth",
    "DeprecatedTokenFileWarning", "InsecureTransportError", "InvalidTokenError",
    "TokenFileError", "TokenFileModeWarning", "TokenNotFoundError", "TokenSource",
    "__version__", "auth_headers", "delete_token", "find_token", "get_new_token",
    "load_token", "login", "new_token_url", "raise_for_auth", "save_token",
    "token_file_paths", "token_page_url", "whoami",
]  # fmt: skip
