"""requests-cache: cached answers, no token on disk, one cache entry per token.

requests-cache replaces ``Authorization`` with ``REDACTED`` before it stores a
request, so with ``CAVETokenAuth()`` (its cookie is off by default) the cache file
holds no token. A ``Cookie`` header is stored as it is: keep ``cookie=False``.

The redaction also drops the token from the cache key: an answer fetched with one
token is served to another token, or to none; ``match_headers=["Authorization"]``
matches ``REDACTED`` and changes nothing, and taking ``Authorization`` out of
``ignored_parameters`` keys per token but stores the token in clear. So hash the
header into the key: ``key_fn`` sees the request with the token attached; the key
stored is a SHA-256 digest. Run it with the server in ``CAVE_RECIPE_URL``.
"""

import hashlib
import os

from requests_cache import CachedSession, create_key

from cave_requests_auth import CAVETokenAuth

SERVER = os.environ.get("CAVE_RECIPE_URL", "https://global.daf-apis.com")


def key_per_token(request, **kwargs):
    """requests-cache's own key, and the request's credentials, hashed together."""
    key = create_key(request, **kwargs)
    credentials = request.headers.get("Authorization", "")
    return hashlib.sha256(f"{key}\n{credentials}".encode()).hexdigest()


# In the user's cache folder (~/.cache on Linux).
session = CachedSession("cave-http-cache", use_cache_dir=True, key_fn=key_per_token)
session.auth = CAVETokenAuth()

for _ in range(2):
    response = session.get(SERVER.rstrip("/") + "/auth/api/v1/user/cache", timeout=60)
    print("from cache:", response.from_cache, "user:", response.json()["name"])
print("cache file:", session.cache.db_path)
