"""``CAVEAuthAdapter``: the token on what a session sends under one mounted prefix.

``session.auth`` is applied once, when a request is prepared; requests then
handles redirects itself, stripping the header on a change of host and, where
``~/.netrc`` has an entry for the new URL, swapping in those credentials even
on the same host. An adapter sees every request at the moment it is sent, each
redirect hop included, so a ``.netrc`` entry cannot replace the token.

Which hops get it: requests makes every hop with ``PreparedRequest.copy()`` of
the request it was first given, and the copies share that request's hooks. The
adapter leaves a no-op hook there holding the first request's origin, and gives
the token to a hop only where it goes to that same scheme, host and port (and
through this adapter, i.e. under the mounted prefix). It attaches the token to a
copy of what it sends, so the request requests copies its hops from never holds
the token: a hop that leaves the prefix goes out bare.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from requests.adapters import HTTPAdapter

from .auth import CAVETokenAuth
from .urls import origin_key, same_origin

if TYPE_CHECKING:
    from requests import PreparedRequest, Response

__all__ = ["CAVEAuthAdapter"]


class _FirstOrigin:
    """A response hook that does nothing: it marks a chain of redirect hops."""

    __slots__ = ("key",)

    def __init__(self, key: str) -> None:
        self.key = key

    def __call__(self, response: Response, **kwargs: Any) -> Response:
        return response


class CAVEAuthAdapter(HTTPAdapter):
    """A transport adapter that attaches a CAVE token to what is sent through it.

    >>> session.mount("https://minnie.example.org/", CAVEAuthAdapter())  # doctest: +SKIP

    Args:
        auth: the :class:`CAVETokenAuth` whose token and rules apply
            (default: ``CAVETokenAuth()``).
        **http_adapter_kwargs: for :class:`requests.adapters.HTTPAdapter`
            (``max_retries``, ``pool_connections``, ``pool_maxsize``, ``pool_block``).
    """

    __attrs__ = [*HTTPAdapter.__attrs__, "auth"]  # noqa: RUF012  (what pickling keeps)

    def __init__(self, auth: CAVETokenAuth | None = None, **http_adapter_kwargs: Any) -> None:
        self.auth = auth if auth is not None else CAVETokenAuth()
        super().__init__(**http_adapter_kwargs)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.auth!r})"

    def send(self, request: PreparedRequest, *args: Any, **kwargs: Any) -> Response:
        """Send, with the token where the auth's rules and the redirect chain allow it."""
        key = origin_key(request.url)  # type: ignore[arg-type]
        hooks = request.hooks["response"]
        for hook in hooks:
            if type(hook) is _FirstOrigin:  # a redirect hop
                if not same_origin(key, hook.key):
                    return super().send(request, *args, **kwargs)  # to another origin
                break
        else:
            hooks.append(_FirstOrigin(key))
        return super().send(self.auth(request.copy()), *args, **kwargs)
