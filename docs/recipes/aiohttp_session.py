"""aiohttp: a session whose requests carry the CAVE token, redirect hops included.

Needs ``pip install 'cave-requests-auth[aiohttp]'`` (aiohttp 3.12 or newer).
Run it with the URL of a CAVE service in ``CAVE_RECIPE_URL``.
"""

import asyncio
import os
from urllib.parse import urlsplit

import aiohttp

from cave_requests_auth import AuthResponseError
from cave_requests_auth.aiohttp import CAVEAuthMiddleware

URL = os.environ.get("CAVE_RECIPE_URL", "https://minnie.example.org/segmentation/api/v1/")


async def main() -> None:
    # One middleware for the whole session. The token is found as for requests
    # (CAVE_TOKEN, then ~/.cloudvolume/secrets), read off the event loop, and
    # sent only where the rules allow: https (or http to loopback), only the
    # hosts listed, and on a redirect only while it stays on the origin it
    # began at. Not headers={"Authorization": ...}: those go to every host.
    auth = CAVEAuthMiddleware(hosts=[urlsplit(URL).hostname], raise_on_auth_error=True)
    async with aiohttp.ClientSession(middlewares=(auth,)) as session:
        try:
            async with session.get(URL) as response:
                print(await response.json())
        except AuthResponseError as error:
            # What went wrong, which token was used, what to do (never the token).
            print(error)


asyncio.run(main())
