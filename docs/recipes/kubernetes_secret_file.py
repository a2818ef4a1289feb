"""Kubernetes: a Secret mounted as a file, named by ``CAVE_TOKEN_FILE``.

The Pod spec on this recipe's page mounts the Secret's ``token`` key as
``/var/run/secrets/cave/token`` and sets ``CAVE_TOKEN_FILE`` to that path. The
program names no token: each request looks it up, and ``CAVE_TOKEN_FILE`` comes
before every saved file (only ``CAVE_TOKEN`` comes before it). Run it with the
server in ``CAVE_RECIPE_URL`` and ``CAVE_TOKEN_FILE`` set.
"""

import os
from urllib.parse import urlsplit

import requests

from cave_requests_auth import CAVETokenAuth, find_token, raise_for_auth

SERVER = os.environ.get("CAVE_RECIPE_URL", "https://global.daf-apis.com").rstrip("/")

# Where a request to the server takes its token from: the file, named by the variable.
# A missing, empty or unreadable file is an error naming both, not another token.
print("the token comes from:", find_token(SERVER))

session = requests.Session()
session.auth = CAVETokenAuth(hosts=[urlsplit(SERVER).hostname])
response = session.get(f"{SERVER}/auth/api/v1/user/cache", timeout=60)
raise_for_auth(response)  # a refused token: which file it came from, and what to do
print("the server knows the token as:", response.json()["name"])
