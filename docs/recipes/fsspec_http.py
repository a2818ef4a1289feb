"""fsspec (and what reads through it): files over HTTP with the CAVE token.

fsspec's HTTP file system is aiohttp: give it the middleware through
``client_kwargs``. Not ``headers=auth_headers(url)``: fsspec sends its headers
to every host it touches, redirects included; the middleware decides for each
request and each redirect hop. Run it with a file's URL in ``CAVE_RECIPE_URL``
(and one on another host in ``CAVE_RECIPE_OTHER_URL``).
"""

import os
from urllib.parse import urlsplit

import fsspec

from cave_requests_auth.aiohttp import CAVEAuthMiddleware

URL = os.environ.get("CAVE_RECIPE_URL", "https://minnie.example.org/segmentation/table.json")
ELSEWHERE = os.environ.get("CAVE_RECIPE_OTHER_URL", "https://httpbin.org/headers")

# Only this host gets the token (and a redirect from it only while it stays on
# this origin); the same file system reads public or pre-signed URLs elsewhere
# without it.
auth = CAVEAuthMiddleware(hosts=[urlsplit(URL).hostname])
fs = fsspec.filesystem("http", client_kwargs={"middlewares": (auth,)})

print(fs.cat(URL).decode())
print(fs.cat(ELSEWHERE).decode())
