"""CloudVolume and CloudFiles: the token this library finds.

CloudVolume (12.15) reads ``<netloc>-cave-secret.json`` of the service (port
included), then ``cave-secret.json`` (then ``chunkedgraph-secret.json``); never
``CAVE_TOKEN``, nor the file of the host without its port, nor the auth server's own
file (``global.daf-apis.com-cave-secret.json``, the one that CAVEclient's
``save_token(..., overwrite=True)`` may update alone). Pass it the token a request
would use: ``secrets=load_token(url)``.

CloudFiles (6.4) reads the first two for ``middleauth+https://`` paths (also under
``~/.cloudfiles/secrets``), and ignores ``secrets=`` for them: keep the token in a
file (in CI: ``printenv CAVE_TOKEN | cave-auth save -``). Both read a file once per
process. Run it with the graphene server in ``CAVE_RECIPE_URL``.
"""

import json
import os

from cloudfiles import CloudFiles
from cloudvolume import CloudVolume

from cave_requests_auth import load_token

SERVER = os.environ.get("CAVE_RECIPE_URL", "https://minnie.microns-daf.com")
TABLE = os.environ.get("CAVE_RECIPE_TABLE", "minnie65_public")

# graphene:// asks the chunkedgraph server for the volume's info, with the token.
volume = CloudVolume(
    f"graphene://{SERVER}/segmentation/table/{TABLE}",
    secrets=load_token(SERVER),
    use_https=True,  # the segmentation's files over https, without Google credentials
)
print("CloudVolume:", volume.meta.n_layers, "layers, data in", volume.info["data_dir"])

# middleauth+https:// sends the token it reads from the files to that host.
files = CloudFiles(f"middleauth+{SERVER}/segmentation/table/{TABLE}/")
print("CloudFiles:", json.loads(files.get("info"))["graph"]["n_layers"], "layers")
