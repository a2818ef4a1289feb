"""neuroglancer: a viewer run from Python whose ``middleauth+https://`` sources get the token.

The viewer's page asks Python for the credentials of each ``middleauth+`` source;
``register()`` answers with the token this library finds for that origin, where the
rules allow. Needs ``pip install 'cave-requests-auth[neuroglancer]'``. Run it with
the chunkedgraph server in ``CAVE_RECIPE_URL``. It needs no browser: it asks the
viewer as the page does, and fetches the table's info with what the viewer gave.
"""

import json
import os
from urllib.parse import urljoin, urlsplit

import neuroglancer
import requests

from cave_requests_auth.neuroglancer import KEY, register

SERVER = os.environ.get("CAVE_RECIPE_URL", "https://minnie.microns-daf.com")
TABLE = os.environ.get("CAVE_RECIPE_TABLE", "minnie65_public")
SOURCE = f"{SERVER}/segmentation/table/{TABLE}"
ORIGIN = "://".join(urlsplit(SERVER)[:2])  # what the page names: scheme://host[:port]

# Found as for requests (CAVE_TOKEN, then ~/.cloudvolume/secrets); given only over
# https (or http to loopback) and only to the hosts listed, whatever origins a
# viewer's state names. Read again when the page reports the token refused.
register(hosts=[urlsplit(SERVER).hostname])

neuroglancer.set_server_bind_address("127.0.0.1")  # whoever has the viewer URL gets the token
viewer = neuroglancer.Viewer()
with viewer.txn() as state:
    state.layers["segmentation"] = neuroglancer.SegmentationLayer(
        source=f"graphene://middleauth+{SOURCE}"
    )
print("layer source:", viewer.state.layers["segmentation"].source[0].url)
print("open in a browser to see it:", viewer)

# What the page does: ask the viewer for the origin's credentials, then fetch with them.
asked = requests.post(
    urljoin(viewer.get_viewer_url(), f"/credentials/{viewer.token}"),
    data=json.dumps({"key": KEY, "parameters": ORIGIN}),
    timeout=60,
)
asked.raise_for_status()
credentials = asked.json()["credentials"]
token = credentials["accessToken"]
print(f"the viewer gives the page a {credentials['tokenType']} token: {token[:4]}…{token[-4:]}")
info = requests.get(
    f"{SOURCE}/info",
    headers={"Authorization": f"{credentials['tokenType']} {token}"},
    timeout=60,
)
info.raise_for_status()
print(f"the server accepts it: {info.json()['graph']['n_layers']} layers")
