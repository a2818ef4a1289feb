"""The bindings: one module per HTTP library, each only translating for :mod:`..core`.

- :mod:`.requests`: ``CAVETokenAuth`` (``auth=``, ``session.auth``) and ``CAVEAuthAdapter``;
- :mod:`.urllib3`: ``CAVEPoolManager``, ``CAVEProxyManager``, ``auth_headers``;
- :mod:`.httpx`: ``CAVEHttpxAuth``; :mod:`.aiohttp`: ``CAVEAuthMiddleware``.

None imports another: what they share is below them (:mod:`..exchange`, :mod:`..wire`).
"""
