"""The bindings: one module per HTTP library, each only translating for :mod:`..core`.

- :mod:`.requests`: ``CAVETokenAuth`` (``auth=``, ``session.auth``), ``raise_for_auth``;
- :mod:`.requests_adapter`: ``CAVEAuthAdapter`` and its ``mount``;
- :mod:`.urllib3`: ``CAVEPoolManager``, ``CAVEProxyManager``, ``auth_headers``.
"""
