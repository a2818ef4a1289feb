"""httpx: a Client and an AsyncClient whose requests carry the CAVE token.

Needs ``pip install 'cave-requests-auth[httpx]'``.
Run it with the URL of a CAVE service in ``CAVE_RECIPE_URL``.
"""

import asyncio
import os
from urllib.parse import urlsplit

import httpx

from cave_requests_auth.httpx import CAVEHttpxAuth

URL = os.environ.get("CAVE_RECIPE_URL", "https://minnie.example.org/segmentation/api/v1/")

# One auth object for both clients, with the keywords of CAVETokenAuth. The
# token is found as for requests (CAVE_TOKEN, then ~/.cloudvolume/secrets) and
# sent only where the rules allow: https (or http to loopback), only the hosts
# listed, never to another origin on a redirect. raise_on_auth_error: a refused
# token raises AuthResponseError, saying why and what to do (never the token).
auth = CAVEHttpxAuth(hosts=[urlsplit(URL).hostname], raise_on_auth_error=True)

with httpx.Client(auth=auth) as client:
    response = client.get(URL)
    response.raise_for_status()
    print(response.json())


async def main() -> None:
    # The same auth; here the secret files are read in a worker thread, off the
    # event loop, the first time a host is seen.
    async with httpx.AsyncClient(auth=auth) as client:
        response = await client.get(URL)
        response.raise_for_status()
        print(response.json())


asyncio.run(main())
