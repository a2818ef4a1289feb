"""End-to-end rows for httpx: what ``CAVEHttpxAuth`` costs a GET, beside no auth and ``BasicAuth``.

For ``benchmarks/run.py``::

    from httpx_rows import measure
    medians = measure(server.url, rounds=sizes.get_rounds, per_round=sizes.gets // sizes.get_rounds)

Each variant is one ``httpx.Client`` (keep-alive, HTTP/1.1) sending GETs to the
given loopback URL; within a round the variants take turns, in an order rotated
every round, so that a noisy neighbour slows them all alike. ``CAVEHttpxAuth``
gets an explicit token, already warmed (its decision for the origin cached), so
the rows show the steady state.
"""

from __future__ import annotations

import statistics
import time
from functools import partial
from typing import Callable

import httpx

from cave_requests_auth.httpx import CAVEHttpxAuth

__all__ = ["NO_AUTH", "WITH_BASIC_AUTH", "WITH_CAVE_AUTH", "measure"]

TOKEN = "0123456789abcdef0123456789abcdef"
NO_AUTH = "httpx.Client, no auth"
WITH_BASIC_AUTH = "httpx.Client, auth=httpx.BasicAuth"
WITH_CAVE_AUTH = "httpx.Client, auth=CAVEHttpxAuth"


def _gets(client: httpx.Client, url: str, count: int) -> float:
    """Nanoseconds for ``count`` GETs (each body read, as ``Client.get`` does)."""
    start = time.perf_counter_ns()
    for _ in range(count):
        client.get(url)
    return time.perf_counter_ns() - start


def measure(url: str, rounds: int, per_round: int) -> dict[str, float]:
    """Median µs per GET to ``url`` (a loopback server), for each variant.

    Args:
        url: a plain-http loopback URL (the auth sends a token there only without
            a proxy: run with no ``HTTP_PROXY`` in the environment).
        rounds: rounds; each variant's result is the median over them.
        per_round: GETs per variant per round.

    Returns:
        ``{NO_AUTH: µs, WITH_BASIC_AUTH: µs, WITH_CAVE_AUTH: µs}``.

    Raises:
        RuntimeError: a warm-up GET did not carry (or carried) ``Authorization``
            as its variant should.
    """
    auths: dict[str, httpx.Auth | None] = {
        NO_AUTH: None,
        WITH_BASIC_AUTH: httpx.BasicAuth("user", "pass"),
        WITH_CAVE_AUTH: CAVEHttpxAuth(token=TOKEN),
    }
    clients = {name: httpx.Client(auth=auth) for name, auth in auths.items()}
    try:
        for name, client in clients.items():
            header = client.get(url).request.headers.get("Authorization", "")
            expected = {NO_AUTH: "", WITH_BASIC_AUTH: "Basic ", WITH_CAVE_AUTH: "Bearer "}[name]
            if not header.startswith(expected) or bool(header) != bool(expected):
                raise RuntimeError(f"{name}: the warm-up GET carried the wrong Authorization.")
        names = list(clients)
        times: dict[str, list[float]] = {name: [] for name in names}
        runs: dict[str, Callable[[], float]] = {
            name: partial(_gets, client, url, per_round) for name, client in clients.items()
        }
        for number in range(rounds):
            turn = number % len(names)
            for name in names[turn:] + names[:turn]:
                times[name].append(runs[name]())
    finally:
        for client in clients.values():
            client.close()
    return {name: statistics.median(values) / per_round / 1000 for name, values in times.items()}


if __name__ == "__main__":  # a quick look: python benchmarks/httpx_rows.py URL
    import sys

    for variant, micros in measure(sys.argv[1], rounds=10, per_round=200).items():
        print(f"{variant:40} {micros:8.1f} µs/GET")
