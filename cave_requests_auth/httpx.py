"""``CAVEHttpxAuth``: CAVE tokens for ``httpx.Client`` and ``httpx.AsyncClient``.

>>> import httpx
>>> from cave_requests_auth.httpx import CAVEHttpxAuth
>>> with httpx.Client(auth=CAVEHttpxAuth()) as client:  # doctest: +SKIP
...     client.get("https://minnie.example.org/segmentation/api/v1/table")

httpx is an optional dependency: ``pip install cave-requests-auth[httpx]``.
What the auth controls, and what it leaves to httpx (the redirects it follows
itself, a proxy given to the client): :doc:`security`.
"""

from __future__ import annotations

try:
    import httpx  # noqa: F401
except ImportError as error:
    raise ImportError(
        "cave_requests_auth.httpx needs httpx, an optional dependency: "
        f"pip install cave-requests-auth[httpx] ({error})"
    ) from error

from .transport.httpx import CAVEHttpxAuth

__all__ = ["CAVEHttpxAuth"]
