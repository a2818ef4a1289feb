"""pandas: fetch with a session, then parse the bytes.

``pd.read_json(url, storage_options=auth_headers(url))`` works, but pandas fetches
http(s) URLs with urllib, which sends every header again on a redirect, to whatever
host the redirect names: the token goes along. A session with ``CAVETokenAuth``
attaches it only where the rules allow, redirect hops included. Run it with the
URL of a JSON answer in ``CAVE_RECIPE_URL``.
"""

import io
import os

import pandas as pd
import requests

from cave_requests_auth import CAVETokenAuth, raise_for_auth

URL = os.environ.get("CAVE_RECIPE_URL", "https://global.daf-apis.com/auth/api/v1/user/cache")

session = requests.Session()
session.auth = CAVETokenAuth()

# Not: pd.read_json(URL, storage_options=auth_headers(URL)) -- see above.
response = session.get(URL, timeout=60)
raise_for_auth(response)  # a CAVE refusal, explained (token, terms of service, permission)
response.raise_for_status()

# A JSON object reads as a Series; a list of records (a table) as a DataFrame, without
# typ=. CSV likewise: pd.read_csv(io.BytesIO(response.content)).
answer = pd.read_json(io.BytesIO(response.content), typ="series")
print("fetched", response.url, "after", len(response.history), "redirect(s)")
print(answer.to_string())
