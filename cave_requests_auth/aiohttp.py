"""CAVE credentials for aiohttp (and fsspec's HTTP file system): ``CAVEAuthMiddleware``.

>>> from cave_requests_auth.aiohttp import CAVEAuthMiddleware
>>> session = aiohttp.ClientSession(middlewares=(CAVEAuthMiddleware(),))  # doctest: +SKIP

aiohttp is an optional dependency: ``pip install 'cave-requests-auth[aiohttp]'``.
What it controls (redirect hops, proxies, the event loop): :doc:`security`.
"""

from __future__ import annotations

try:
    import aiohttp
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "cave_requests_auth.aiohttp needs aiohttp 3.12 or newer: "
        "pip install 'cave-requests-auth[aiohttp]'"
    ) from error

if tuple(int(part) for part in aiohttp.__version__.split(".")[:2] if part.isdigit()) < (3, 12):
    raise ImportError(
        f"cave_requests_auth.aiohttp needs aiohttp 3.12 or newer (client middlewares), "
        f"not {aiohttp.__version__}: pip install 'cave-requests-auth[aiohttp]'"
    )

from .transport.aiohttp import AuthResponseError, CAVEAuthMiddleware, TokenFileError

__all__ = ["AuthResponseError", "CAVEAuthMiddleware", "TokenFileError"]
