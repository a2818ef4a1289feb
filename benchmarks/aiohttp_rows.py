"""aiohttp rows for the benchmarks: what ``CAVEAuthMiddleware`` costs a GET.

``measure(url, rounds, per_round)`` times sequential GETs to ``url`` (a loopback
server, keep-alive) from one ``aiohttp.ClientSession`` per variant, all on one
event loop:

- ``aiohttp.ClientSession``: no auth, the reference;
- ``aiohttp.ClientSession(auth=BasicAuth)``: aiohttp's own auth, one header per
  request (``auth=`` is deprecated from aiohttp 3.14; its warning is silenced);
- ``aiohttp.ClientSession(middlewares=(CAVEAuthMiddleware,))``: an explicit token.

Within a round the variants take turns, in an order rotated every round; each
result is the median over rounds of the µs per GET (body read).
"""

from __future__ import annotations

import asyncio
import statistics
import time
import warnings
from typing import TYPE_CHECKING

import aiohttp

from cave_requests_auth.aiohttp import CAVEAuthMiddleware

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

TOKEN = "0123456789abcdef0123456789abcdef"
PLAIN = "aiohttp.ClientSession"
BASIC = "aiohttp.ClientSession(auth=BasicAuth)"
CAVE = "aiohttp.ClientSession(middlewares=(CAVEAuthMiddleware,))"
VARIANTS = (PLAIN, BASIC, CAVE)


def measure(url: str, rounds: int, per_round: int) -> dict[str, float]:
    """The median µs per GET of ``url`` for each variant (keys: :data:`VARIANTS`)."""
    return asyncio.run(_measure(url, rounds, per_round))


async def _measure(url: str, rounds: int, per_round: int) -> dict[str, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # auth= in aiohttp >= 3.14
        basic = aiohttp.ClientSession(auth=aiohttp.BasicAuth("user", "pass"))
    sessions = {
        PLAIN: aiohttp.ClientSession(),
        BASIC: basic,
        CAVE: aiohttp.ClientSession(middlewares=(CAVEAuthMiddleware(token=TOKEN),)),
    }
    try:
        gets = {name: _getter(session, url) for name, session in sessions.items()}
        for get in gets.values():  # connect, and decide the origin, before timing
            await get()
        times: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for number in range(rounds):
            turn = number % len(VARIANTS)
            for name in VARIANTS[turn:] + VARIANTS[:turn]:
                get = gets[name]
                start = time.perf_counter_ns()
                for _ in range(per_round):
                    await get()
                times[name].append((time.perf_counter_ns() - start) / per_round / 1000)
        return {name: statistics.median(values) for name, values in times.items()}
    finally:
        for session in sessions.values():
            await session.close()


def _getter(session: aiohttp.ClientSession, url: str) -> Callable[[], Awaitable[bytes]]:
    async def get() -> bytes:
        async with session.get(url) as response:
            response.raise_for_status()
            return await response.read()

    return get


if __name__ == "__main__":
    import sys

    for variant, micros in measure(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])).items():
        print(f"{micros:8.0f} µs/GET  {variant}")
