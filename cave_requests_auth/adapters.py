"""``CAVEAuthAdapter``: the token on what a session sends under one mounted prefix.

``session.auth`` is applied once, when a request is prepared; requests then
handles redirects itself, stripping the header on a change of host and, where
``~/.netrc`` has an entry for the new URL, swapping in those credentials even
on the same host. An adapter sees every request at the moment it is sent, each
redirect hop included, so the token goes exactly where the mount says and the
auth's rules allow, hop by hop, and a ``.netrc`` entry cannot replace it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from requests.adapters import HTTPAdapter

from .auth import CAVETokenAuth

if TYPE_CHECKING:
    from requests import PreparedRequest, Response

__all__ = ["CAVEAuthAdapter"]


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
        """Attach the token (by the auth's rules for this URL), then send."""
        return super().send(self.auth(request), *args, **kwargs)
