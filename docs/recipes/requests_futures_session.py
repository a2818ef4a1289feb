"""requests-futures: concurrent requests, one auth object shared by its threads.

``FuturesSession`` is a ``requests.Session``: ``session.auth`` works as on any
session. ``hosts=`` keeps the token on the CAVE server, so the same session can
fetch other URLs (public or pre-signed ones) without it. Run it with the server in
``CAVE_RECIPE_URL``.
"""

import os
from concurrent.futures import as_completed
from urllib.parse import urlsplit

from requests_futures.sessions import FuturesSession

from cave_requests_auth import CAVETokenAuth

SERVER = os.environ.get("CAVE_RECIPE_URL", "https://global.daf-apis.com")
ELSEWHERE = os.environ.get("CAVE_RECIPE_OTHER_URL", "https://httpbin.org/headers")

with FuturesSession(max_workers=4) as session:
    session.auth = CAVETokenAuth(hosts=[urlsplit(SERVER).hostname])
    user_cache = SERVER.rstrip("/") + "/auth/api/v1/user/cache"
    futures = [session.get(user_cache, timeout=60) for _ in range(4)]
    for future in as_completed(futures):
        print("the server knows the token as:", future.result().json()["name"])

    headers = session.get(ELSEWHERE, timeout=60).result().json()["headers"]
    print("another host got:", sorted({"Authorization", "Cookie"} & set(headers)) or "nothing")
