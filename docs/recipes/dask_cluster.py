"""Dask: a session with CAVETokenAuth in every task, and no token in the task graph.

A ``requests.Session`` pickles with its auth, and ``CAVETokenAuth`` pickles without
the token: only where to look for it. Each worker then finds its own token, as any
program on its machine would: ``CAVE_TOKEN`` in its environment, else the secret
files under its home. On one machine (``LocalCluster``) workers inherit both.

Workers on other machines need a token there, given by their deployment, never
through the graph:

- a shared home (most HPC clusters, dask-jobqueue): the files already are there;
- Kubernetes (dask-kubernetes, dask-gateway): a Secret mounted in the worker
  containers as a file named by ``CAVE_TOKEN_FILE`` (the Kubernetes recipe), or
  exposed as the environment variable ``CAVE_TOKEN``;
- anywhere else: ``cave-auth save -`` once on each machine, or ``CAVE_TOKEN`` in the
  environment of the service that starts ``dask worker``.

Do not pass ``CAVETokenAuth(token=...)`` or the token itself to a task, nor put it in
Dask's config (some deployments copy that config to the workers): it would be
pickled into the graph, sent through the scheduler and possibly logged. Run it with
the server in ``CAVE_RECIPE_URL``.
"""

import os
import pickle

import requests
from dask.distributed import Client, LocalCluster

from cave_requests_auth import CAVETokenAuth, load_token

SERVER = os.environ.get("CAVE_RECIPE_URL", "https://global.daf-apis.com")
URL = SERVER.rstrip("/") + "/auth/api/v1/user/cache"


def whose_token(session, url):
    """On a worker: the session arrived without a token; its auth finds the worker's."""
    return os.getpid(), session.get(url, timeout=60).json()["name"]


if __name__ == "__main__":  # worker processes import this file: start the cluster once
    session = requests.Session()
    session.auth = CAVETokenAuth()
    session.get(URL, timeout=60)  # the auth now holds the token in memory, and yet:
    print("token in the pickled session:", load_token(URL).encode() in pickle.dumps(session))

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        futures = [client.submit(whose_token, session, URL, pure=False) for _ in range(4)]
        for pid, name in client.gather(futures):
            print(f"worker process {pid} (not {os.getpid()}): the server knows its token as {name}")
