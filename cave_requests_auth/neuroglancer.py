"""CAVE tokens for the ``middleauth+https://`` sources of a Python-run neuroglancer viewer.

>>> from cave_requests_auth.neuroglancer import register
>>> register(hosts=["minnie.microns-daf.com"])  # doctest: +SKIP

A ``neuroglancer.Viewer`` page asks its Python server for the credentials of each
``middleauth+`` source (key ``"middleauthapp"``, the source's origin); the server
asks the provider registered under that key, none until :func:`register`. The
token for an origin is :class:`~cave_requests_auth.core.Credentials`' decision.
Where it refuses the origin or finds no token, the provider fails with this
package's error: neuroglancer prints it in Python and answers the page a bare 401.
``pip install 'cave-requests-auth[neuroglancer]'``.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

try:
    import neuroglancer.credentials_provider  # type: ignore[import-untyped,import-not-found,unused-ignore]
    import neuroglancer.default_credentials_manager  # type: ignore[import-untyped,import-not-found,unused-ignore]
except ImportError as error:
    raise ImportError(
        "cave_requests_auth.neuroglancer needs neuroglancer: "
        f"pip install 'cave-requests-auth[neuroglancer]' ({error})"
    ) from error

from .core import Credentials

if TYPE_CHECKING:
    from .wire import Attachment

__all__ = ["KEY", "MiddleauthCredentialsProvider", "MiddleauthProviders", "register"]

KEY = "middleauthapp"  # what the page asks by (neuroglancer src/kvstore/middleauth/common.ts)
ANONYMOUS = {"tokenType": "", "accessToken": ""}  # the page then sends no Authorization


class MiddleauthCredentialsProvider(neuroglancer.credentials_provider.CredentialsProvider):  # type: ignore[misc]
    """The CAVE token for one origin, looked up each time neuroglancer calls :meth:`get_new`:
    the first time, and again only after the page was refused with what it was given."""

    def __init__(self, auth: Credentials, origin: str) -> None:
        super().__init__()
        self.auth, self.origin, self.failed = auth, origin, False
        self._given: Attachment | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.origin!r}, {self.auth!r})"

    def get_new(self) -> Future[dict[str, str]]:
        """``{"tokenType": "Bearer", "accessToken": ...}``, found off the server's event loop."""
        future: Future[dict[str, str]] = Future()
        threading.Thread(target=self._look_up, args=(future,), daemon=True).start()
        return future

    def _look_up(self, future: Future[dict[str, str]]) -> None:
        try:
            if self._given is not None:  # refused: read the source again
                self.auth.reloaded(self.origin, self._given)
            given = self._given = self.auth.attachment_for(self.origin)
            credentials = dict(ANONYMOUS)  # outside hosts=, or none found with required=False
            if given is not None and given.source is not None:
                credentials = {"tokenType": "Bearer", "accessToken": given.source.token}
        except Exception as error:  # a CAVEAuthError names the source, never the token
            self.failed = True
            future.set_exception(error)
            return
        future.set_result(credentials)


class MiddleauthProviders:
    """What :func:`register` registers: ``providers(origin)`` gives that origin's provider,
    the same each time (neuroglancer caches in it), a new one after one failed."""

    def __init__(self, auth: Credentials) -> None:
        self.auth = auth
        self._providers: dict[str, MiddleauthCredentialsProvider] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.auth!r})"

    def __call__(self, origin: object) -> MiddleauthCredentialsProvider | None:
        if not isinstance(origin, str):
            return None  # neuroglancer answers 400
        with self._lock:
            provider = self._providers.get(origin)
            if provider is None or provider.failed:
                provider = MiddleauthCredentialsProvider(self.auth, origin)
                self._providers[origin] = provider
            return provider


def register(
    auth: Credentials | None = None, *, manager: Any = None, **token_kwargs: Any
) -> MiddleauthProviders:
    """Give the ``middleauth+`` sources of neuroglancer viewers the CAVE token the rules allow.

    Args:
        auth: a :class:`~cave_requests_auth.CAVETokenAuth` (any ``Credentials``) with
            ``hosts=``; by default one made of ``token_kwargs`` (``hosts=`` required:
            a viewer's state, say from a shared link, can name any origin).
        manager: a ``neuroglancer.credentials_provider.CredentialsManager``; by default
            the one a ``neuroglancer.Viewer``'s server asks.

    Returns:
        The :class:`MiddleauthProviders` registered under :data:`KEY` (replacing any other).
    """
    if auth is None:
        auth = Credentials(**token_kwargs)
    elif token_kwargs:
        raise TypeError("register() takes auth= or the keywords of CAVETokenAuth, not both.")
    if auth.hosts is None:
        raise TypeError(
            "register() needs hosts=[...], the hosts whose middleauth+ sources get the token: "
            "a viewer's state can name any origin."
        )
    if manager is None:
        manager = neuroglancer.default_credentials_manager.default_credentials_manager
    providers = MiddleauthProviders(auth)
    manager.register(KEY, providers)
    return providers
