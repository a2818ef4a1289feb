"""Google Colab: the notebook secret ``CAVE_TOKEN``, else ``login()`` in a cell.

In Colab, add a secret named ``CAVE_TOKEN`` (the key icon on the left) and give
the notebook access to it: requests then find it (lookup step 8), with no code
for it. Where there is no such secret, ``cave_requests_auth.login()`` shows the
steps, asks for the token in a password field, checks it and saves it in the
runtime's home, which lasts as long as the runtime.

Outside Colab, where the tests run this script, a stand-in for
``google.colab.userdata`` answers from the JSON file ``CAVE_RECIPE_COLAB_SECRETS``.
In a notebook, leave the stand-in out and run the cells below it.
"""

import json
import os
import sys
import types

# -- The test's stand-in for Colab's secrets; not part of a notebook. -------------
# In Colab, google.colab is imported before the first cell runs, and
# userdata.get(name) asks for the secret (the first time, Colab may ask you to
# grant the notebook access).
if "google.colab" not in sys.modules:

    class SecretNotFoundError(Exception):
        """Colab's exception for a secret that does not exist."""

    def get(name):
        with open(os.environ["CAVE_RECIPE_COLAB_SECRETS"]) as file:
            secrets = json.load(file)
        if name not in secrets:
            raise SecretNotFoundError(f"Secret {name} does not exist.")
        return secrets[name]

    userdata = types.ModuleType("google.colab.userdata")
    userdata.get, userdata.SecretNotFoundError = get, SecretNotFoundError
    colab = types.ModuleType("google.colab")
    colab.userdata = userdata
    sys.modules.update({"google.colab": colab, "google.colab.userdata": userdata})
# -- End of the stand-in. ---------------------------------------------------------

# Cell 1 (in Colab, first: %pip install cave-requests-auth)
import requests

import cave_requests_auth
from cave_requests_auth import CAVETokenAuth

SERVER = os.environ.get("CAVE_RECIPE_URL", "https://global.daf-apis.com").rstrip("/")

# Cell 2: no secret, nor a token saved in this runtime? Paste one in (hidden).
if cave_requests_auth.load_token(SERVER) is None:
    cave_requests_auth.login(SERVER)

# Cell 3: requests look the token up themselves.
print("the token comes from:", cave_requests_auth.find_token(SERVER))
session = requests.Session()
session.auth = CAVETokenAuth()
user = session.get(f"{SERVER}/auth/api/v1/user/cache", timeout=60).json()
print("the server knows the token as:", user["name"])
