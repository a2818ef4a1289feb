"""CAVEclient: the same token, and its sessions scoped to its server.

CAVEclient reads neither ``CAVE_TOKEN`` nor ``CLOUD_VOLUME_DIR``: hand it the token
this library finds, with ``auth_token=``. Each of its sub-clients (``client.info``,
``client.schema``, ``client.state``; with a datastack also ``chunkedgraph``,
``materialize``, ``annotation``, ``l2cache``, ``skeleton``) has a
``requests.Session`` that sends the token to every host: an ``Authorization``
header in ``session.headers`` and a ``middle_auth_token`` cookie in the jar.
``CAVEAuthAdapter.mount`` removes both and attaches the token to the server's URLs
only, keeping CAVEclient's retries. Run it with the server in ``CAVE_RECIPE_URL``.
"""

import os

from caveclient import CAVEclient

from cave_requests_auth import CAVEAuthAdapter, load_token

SERVER = os.environ.get("CAVE_RECIPE_URL", "https://global.daf-apis.com")
ELSEWHERE = os.environ.get("CAVE_RECIPE_OTHER_URL", "https://httpbin.org/headers")
PREFIX = SERVER.rstrip("/") + "/"

# The token any other way in would use: CAVE_TOKEN, the server's file, the default file.
client = CAVEclient(server_address=SERVER, auth_token=load_token(SERVER))

# Sub-clients make their sessions on first use, and client.change_auth() replaces them
# all: mount after both. With a datastack, mount client.local_server's prefix too.
for subclient in (client.info, client.schema, client.state):
    CAVEAuthAdapter.mount(subclient.session, PREFIX)

session = client.info.session
adapter = session.get_adapter(PREFIX)
retries = adapter.max_retries  # CAVEclient's Retry(total=3, status_forcelist=(502, 503, 504))
print(type(adapter).__name__, "keeps the retries:", retries.total, tuple(retries.status_forcelist))
print("Authorization in session.headers:", "Authorization" in session.headers)
print("middle_auth_token in the cookie jar:", "middle_auth_token" in session.cookies)

# Under the prefix: the token. The answer says whose it is.
user = session.get(PREFIX + "auth/api/v1/user/cache", timeout=60).json()
print("the server knows the token as:", user["name"])

# Anywhere else (a redirect included): neither header nor cookie.
headers = session.get(ELSEWHERE, timeout=60).json()["headers"]
print("another host got:", sorted({"Authorization", "Cookie"} & set(headers)) or "nothing")
