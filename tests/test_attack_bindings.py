"""Attacks from outside on the bindings: where does the token go that it must not?

Each test drives a real client (httpx, aiohttp, fsspec, requests, urllib3)
against loopback servers that record what reaches them (``_loopback.Server``):
``A`` on 127.0.0.1 (also reached as ``localhost``, another host to every
client), ``B`` on 127.0.0.2, ``TLS`` on 127.0.0.1 with a throw-away CA, and a
recording proxy. Tokens are made per test and never appear in a test's
parameters or assertion messages.
"""

from __future__ import annotations

import asyncio
import copy
import io
import json
import logging
import os
import pickle
import re
import shutil
import ssl
import subprocess
import sys
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import fsspec
import httpx
import pytest
import requests
import trustme
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

import cave_requests_auth
from _loopback import Seen, Server, invalid_token_answer, json_answer
from cave_requests_auth import (
    AuthResponseError,
    CAVEAuthAdapter,
    CAVEAuthWarning,
    CAVEPoolManager,
    CAVEProxyManager,
    CAVETokenAuth,
    InsecureTransportError,
    raise_for_auth,
)
from cave_requests_auth.aiohttp import CAVEAuthMiddleware
from cave_requests_auth.httpx import CAVEHttpxAuth

REPO = Path(__file__).resolve().parent.parent
REDIRECTS = (301, 302, 303, 307, 308)
CLIENTS = ("Client", "AsyncClient")


# -- servers and tokens ---------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def servers(ca: trustme.CA) -> Iterator[dict[str, Any]]:
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    names = ("127.0.0.1", "localhost", "cave.invalid", "cave.invalid.attacker.invalid")
    ca.issue_cert(*names).configure_cert(server_tls)
    made = {
        "a": Server("127.0.0.1"),
        "b": Server("127.0.0.2"),
        "tls": Server("127.0.0.1", tls=server_tls),
        "proxy": Server("127.0.0.1", proxy=True),
    }
    yield made
    for server in made.values():
        server.close()


@pytest.fixture
def a(servers: dict[str, Any]) -> Server:
    return servers["a"]


@pytest.fixture
def b(servers: dict[str, Any]) -> Server:
    return servers["b"]


@pytest.fixture
def tls(servers: dict[str, Any]) -> Server:
    return servers["tls"]


@pytest.fixture
def proxy(servers: dict[str, Any]) -> Server:
    return servers["proxy"]


@pytest.fixture(autouse=True)
def _fresh(servers: dict[str, Any]) -> Iterator[None]:
    for server in servers.values():
        server.reset()
    yield
    for server in servers.values():
        server.reset()


@pytest.fixture
def client_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


class Secret(str):
    """A token whose repr never shows it (pytest prints the arguments of a failing assert)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<token>"

    def equals(self, other: str) -> bool:
        return str(self) == str(other)


def new_token() -> Secret:
    return Secret(uuid.uuid4().hex)


def bearer_of(seen: Seen, secret: str) -> bool:
    """Whether ``seen`` carried exactly ``Authorization: Bearer <secret>``."""
    return seen.headers.get("authorization") == f"Bearer {secret}"


def save(home: Path, token: str, name: str = "cave-secret.json") -> Path:
    """A token file as cave-auth would leave it (0600 in a 0700 folder)."""
    base = home / ".cloudvolume"
    folder = base / "secrets"
    folder.mkdir(parents=True, exist_ok=True)
    base.chmod(0o700)
    folder.chmod(0o700)
    path = folder / name
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump({"token": token}, file)
    return path


@pytest.fixture
def token(isolated_home: Path) -> str:
    """The token in the default secret file."""
    value = new_token()
    save(isolated_home, value)
    return value


def leaks(text: str, secret: str) -> bool:
    """Whether ``text`` holds 8 consecutive characters of ``secret``."""
    return any(secret[i : i + 8] in text for i in range(len(secret) - 7))


def carrying(seen: list[Seen], secret: str) -> list[str]:
    """The requests (as ``host path``) that carried ``secret``, in head or body."""
    return [f"{s.headers.get('host')} {s.path}" for s in seen if s.carries(secret)]


def clean(seen: list[Seen], secret: str) -> bool:
    """Nothing in ``seen`` carried the token, nor any Authorization or CAVE cookie."""
    return not carrying(seen, secret) and not any(
        "authorization" in s.headers or "middle_auth_token" in s.headers.get("cookie", "")
        for s in seen
    )


def by_host(server: Server, host: str) -> list[Seen]:
    return [s for s in server.seen if s.headers.get("host", "").split(":")[0] == host]


def rotating(home: Path, new: str, then: Any = None) -> Any:
    """A route: ``401 invalid_token`` after saving ``new`` to the default file, until
    a request carries ``new``; then ``then(seen)`` (200 by default)."""

    def route(seen: Seen) -> Any:
        if seen.carries(new):
            return then(seen) if then is not None else json_answer(200, {"ok": True})
        save(home, new)
        return invalid_token_answer()

    return route


# -- httpx ----------------------------------------------------------------------------


def httpx_get(kind: str, auth: Any, url: str, **client: Any) -> httpx.Response:
    """One GET through ``httpx.Client`` or ``httpx.AsyncClient``, read."""
    if kind == "Client":
        with httpx.Client(auth=auth, **client) as c:
            return c.get(url)

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(auth=auth, **client) as c:
            return await c.get(url)

    return asyncio.run(go())


def httpx_by_hand(kind: str, auth: Any, url: str, **client: Any) -> list[httpx.Response]:
    """A GET, then ``client.send(response.next_request)`` until there is none."""
    if kind == "Client":
        with httpx.Client(auth=auth, **client) as c:
            responses = [c.get(url)]
            while responses[-1].next_request is not None:
                responses.append(c.send(responses[-1].next_request))
            return responses

    async def go() -> list[httpx.Response]:
        async with httpx.AsyncClient(auth=auth, **client) as c:
            responses = [await c.get(url)]
            while responses[-1].next_request is not None:
                responses.append(await c.send(responses[-1].next_request))
            return responses

    return asyncio.run(go())


@pytest.mark.parametrize("code", REDIRECTS)
@pytest.mark.parametrize("kind", CLIENTS)
@pytest.mark.parametrize("other", ["127.0.0.2", "localhost"])
def test_httpx_followed_redirect_to_another_host_carries_neither_header_nor_cookie(
    kind: str, code: int, other: str, token: str, a: Server, b: Server
) -> None:
    target = b.url() if other == "127.0.0.2" else a.url(host="localhost")
    response = httpx_get(
        kind, CAVEHttpxAuth(cookie=True), a.redirect(target, code), follow_redirects=True
    )
    assert response.status_code == 200
    first = by_host(a, "127.0.0.1")
    assert len(first) == 1
    assert first[0].carries(token)
    elsewhere = b.seen if other == "127.0.0.2" else by_host(a, "localhost")
    assert len(elsewhere) == 1
    assert clean(elsewhere, token)


@pytest.mark.parametrize("kind", CLIENTS)
@pytest.mark.parametrize("follow", [True, False], ids=["follow_redirects", "send_next_request"])
def test_httpx_chain_back_to_origin_after_another_origin_carries_no_token(
    kind: str, follow: bool, token: str, a: Server, b: Server
) -> None:
    """origin → origin (token) → other (none) → origin (none: the other origin chose it)."""
    chain = a.redirect(b.redirect(a.url("/back")))
    url = a.redirect(chain)
    auth = CAVEHttpxAuth(cookie=True)
    if follow:
        assert httpx_get(kind, auth, url, follow_redirects=True).status_code == 200
    else:
        assert [r.status_code for r in httpx_by_hand(kind, auth, url)] == [302, 302, 302, 200]
    assert [s.path for s in a.seen] == ["/redirect", "/redirect", "/back"]
    assert a.seen[0].carries(token)
    assert bearer_of(a.seen[1], token)  # a same-origin hop keeps the header
    assert clean(b.seen, token)
    assert clean([a.seen[2]], token)


@pytest.mark.parametrize("kind", CLIENTS)
@pytest.mark.parametrize("follow", [True, False], ids=["follow_redirects", "send_next_request"])
def test_httpx_https_to_http_redirect_of_the_same_host_drops_the_token(
    kind: str,
    follow: bool,
    token: str,
    tls: Server,
    a: Server,
    client_tls: ssl.SSLContext,
) -> None:
    url = tls.redirect(a.url("/plain"))
    auth = CAVEHttpxAuth(cookie=True)
    if follow:
        httpx_get(kind, auth, url, follow_redirects=True, verify=client_tls)
    else:
        httpx_by_hand(kind, auth, url, verify=client_tls)
    assert tls.seen[0].carries(token)
    assert len(a.seen) == 1
    assert clean(a.seen, token)


@pytest.mark.parametrize("kind", CLIENTS)
def test_httpx_hosts_list_leaves_other_hosts_and_hops_into_the_list_untouched(
    kind: str, token: str, a: Server, b: Server
) -> None:
    auth = CAVEHttpxAuth(hosts=["127.0.0.2"])
    httpx_get(kind, auth, a.url("/outside"))
    httpx_get(kind, auth, a.redirect(b.url("/into")), follow_redirects=True)
    httpx_by_hand(kind, auth, a.redirect(b.url("/into-by-hand")))
    httpx_get(kind, auth, b.url("/listed"))
    assert clean(a.seen, token)
    assert [s.path for s in b.seen] == ["/into", "/into-by-hand", "/listed"]
    assert clean(b.seen[:2], token)
    assert b.seen[2].carries(token)


@pytest.mark.parametrize("kind", CLIENTS)
def test_httpx_401_invalid_token_is_sent_once_more_with_the_saved_token_and_its_hops_carry_it(
    kind: str, isolated_home: Path, token: str, a: Server
) -> None:
    new = new_token()
    a.routes["/data"] = rotating(
        isolated_home, new, lambda seen: (302, {"Location": "/moved"}, b"")
    )
    response = httpx_get(kind, CAVEHttpxAuth(), a.url("/data"), follow_redirects=True)
    assert response.status_code == 200
    assert [s.path for s in a.seen] == ["/data", "/data", "/moved"]
    assert a.seen[0].carries(token)
    assert a.seen[1].carries(new)
    assert a.seen[2].carries(new)
    assert not carrying(a.seen[1:], token)


@pytest.mark.parametrize("kind", CLIENTS)
def test_httpx_401_with_an_unchanged_token_file_is_not_resent(
    kind: str, token: str, a: Server
) -> None:
    a.routes["/data"] = lambda seen: invalid_token_answer()
    response = httpx_get(kind, CAVEHttpxAuth(), a.url("/data"))
    assert response.status_code == 401
    assert len(a.seen) == 1


@pytest.mark.parametrize("kind", CLIENTS)
def test_httpx_401_to_a_streamed_body_is_returned_not_resent(
    kind: str, isolated_home: Path, token: str, a: Server
) -> None:
    new = new_token()
    a.routes["/upload"] = rotating(isolated_home, new)
    auth = CAVEHttpxAuth()
    if kind == "Client":

        def chunks() -> Iterator[bytes]:
            yield b"one,"
            yield b"two"

        with httpx.Client(auth=auth) as c:
            response = c.post(a.url("/upload"), content=chunks())
    else:

        async def achunks() -> Any:
            yield b"one,"
            yield b"two"

        async def go() -> httpx.Response:
            async with httpx.AsyncClient(auth=auth) as c:
                return await c.post(a.url("/upload"), content=achunks())

        response = asyncio.run(go())
    assert response.status_code == 401
    assert len(a.seen) == 1
    assert a.seen[0].body == b"one,two"


@pytest.mark.parametrize("kind", CLIENTS)
def test_httpx_401_from_a_host_reached_by_redirect_is_not_retried(
    kind: str, isolated_home: Path, token: str, a: Server, b: Server
) -> None:
    new = new_token()
    b.routes["/data"] = rotating(isolated_home, new)
    response = httpx_get(kind, CAVEHttpxAuth(), a.redirect(b.url("/data")), follow_redirects=True)
    assert response.status_code == 401
    assert len(b.seen) == 1
    assert clean(b.seen, token)
    assert clean(b.seen, new)
    assert len(a.seen) == 1


@pytest.mark.parametrize("kind", CLIENTS)
def test_httpx_environment_proxy_refuses_plain_http_to_loopback_before_sending(
    kind: str, token: str, a: Server, proxy: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.origin())
    with pytest.raises(InsecureTransportError):
        httpx_get(kind, CAVEHttpxAuth(), a.url())
    assert proxy.seen == []
    assert a.seen == []
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    assert httpx_get(kind, CAVEHttpxAuth(), a.url()).status_code == 200
    assert proxy.seen == []
    assert a.seen[0].carries(token)


@pytest.mark.parametrize("kind", CLIENTS)
def test_httpx_no_proxy_cidr_that_httpx_ignores_still_refuses_plain_http_to_loopback(
    kind: str, token: str, a: Server, proxy: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """requests reads ``NO_PROXY=127.0.0.0/8`` as a range, httpx does not: httpx would go
    through the proxy, so the binding refuses."""
    monkeypatch.setenv("HTTP_PROXY", proxy.origin())
    monkeypatch.setenv("NO_PROXY", "127.0.0.0/8")
    try:
        httpx_get(kind, CAVEHttpxAuth(), a.url())
    except InsecureTransportError:
        refused = True
    else:
        refused = False
    assert clean(proxy.seen, token), "the proxy saw the token"
    assert refused


@pytest.mark.parametrize("kind", CLIENTS)
def test_httpx_https_through_a_proxy_shows_the_proxy_no_token(
    kind: str, token: str, tls: Server, proxy: Server, client_tls: ssl.SSLContext
) -> None:
    response = httpx_get(
        kind, CAVEHttpxAuth(), tls.url("/tunnelled"), proxy=proxy.origin(), verify=client_tls
    )
    assert response.status_code == 200
    assert [s.method for s in proxy.seen] == ["CONNECT"]
    assert clean(proxy.seen, token)
    assert tls.seen[0].carries(token)


# -- aiohttp --------------------------------------------------------------------------


async def aio_get(session: aiohttp.ClientSession, url: str, **kwargs: Any) -> int:
    async with session.request(kwargs.pop("method", "GET"), url, **kwargs) as response:
        await response.read()
        return response.status


@pytest.mark.parametrize("code", REDIRECTS)
@pytest.mark.parametrize("other", ["127.0.0.2", "localhost"])
def test_aiohttp_followed_redirect_to_another_host_carries_neither_header_nor_cookie(
    code: int, other: str, token: str, a: Server, b: Server
) -> None:
    target = b.url() if other == "127.0.0.2" else a.url(host="localhost")
    method = "POST" if code in (307, 308) else "GET"

    async def go() -> int:
        async with aiohttp.ClientSession(middlewares=(CAVEAuthMiddleware(cookie=True),)) as s:
            return await aio_get(s, a.redirect(target, code), method=method, data=b"body")

    assert asyncio.run(go()) == 200
    first = by_host(a, "127.0.0.1")
    assert len(first) == 1
    assert first[0].carries(token)
    elsewhere = b.seen if other == "127.0.0.2" else by_host(a, "localhost")
    assert len(elsewhere) == 1
    assert clean(elsewhere, token)


def test_aiohttp_chain_back_to_origin_after_another_origin_carries_no_token(
    token: str, a: Server, b: Server
) -> None:
    async def go() -> int:
        async with aiohttp.ClientSession(middlewares=(CAVEAuthMiddleware(cookie=True),)) as s:
            return await aio_get(s, a.redirect(a.redirect(b.redirect(a.url("/back")))))

    assert asyncio.run(go()) == 200
    assert [s.path for s in a.seen] == ["/redirect", "/redirect", "/back"]
    assert a.seen[0].carries(token)
    assert a.seen[1].carries(token)
    assert clean(b.seen, token)
    assert clean([a.seen[2]], token)


def test_aiohttp_https_to_http_redirect_drops_the_token(
    token: str, tls: Server, a: Server, client_tls: ssl.SSLContext
) -> None:
    async def go() -> int:
        async with aiohttp.ClientSession(middlewares=(CAVEAuthMiddleware(cookie=True),)) as s:
            return await aio_get(s, tls.redirect(a.url("/plain")), ssl=client_tls)

    assert asyncio.run(go()) == 200
    assert tls.seen[0].carries(token)
    assert clean(a.seen, token)


def _mixed(a: Server, b: Server, count: int) -> tuple[list[str], set[str], set[str]]:
    """URLs: plain to A (token), A→A (token), A→B→A (none at B, none back at A)."""
    urls, with_token, without = [], set(), set()
    for n in range(count):
        if n % 3 == 0:
            urls.append(a.url(f"/plain{n}"))
            with_token.add(f"/plain{n}")
        elif n % 3 == 1:
            urls.append(a.redirect(a.url(f"/same{n}")))
            with_token.add(f"/same{n}")
        else:
            urls.append(a.redirect(b.redirect(a.url(f"/back{n}"))))
            without.add(f"/back{n}")
    return urls, with_token, without


def _check_mixed(a: Server, b: Server, token: str, with_token: set, without: set) -> None:
    final = {s.path: s for s in a.seen if s.path != "/redirect"}
    assert set(final) == with_token | without
    assert sorted(p for p in with_token if not final[p].carries(token)) == []
    assert sorted(p for p in without if not clean([final[p]], token)) == []
    assert all(s.carries(token) for s in a.seen if s.path == "/redirect")
    assert clean(b.seen, token)


def test_aiohttp_gathered_requests_through_one_session_each_follow_their_own_chain(
    token: str, a: Server, b: Server
) -> None:
    urls, with_token, without = _mixed(a, b, 45)

    async def go() -> list[int]:
        async with aiohttp.ClientSession(middlewares=(CAVEAuthMiddleware(),)) as s:
            return await asyncio.gather(*(aio_get(s, url) for url in urls))

    assert set(asyncio.run(go())) == {200}
    _check_mixed(a, b, token, with_token, without)


def test_aiohttp_two_sessions_sharing_one_middleware_keep_their_chains_apart(
    token: str, a: Server, b: Server
) -> None:
    urls, with_token, without = _mixed(a, b, 30)
    middleware = CAVEAuthMiddleware()

    async def go() -> list[int]:
        async with (
            aiohttp.ClientSession(middlewares=(middleware,)) as one,
            aiohttp.ClientSession(middlewares=(middleware,)) as two,
        ):
            return await asyncio.gather(
                *(aio_get(one if n % 2 else two, url) for n, url in enumerate(urls))
            )

    assert set(asyncio.run(go())) == {200}
    _check_mixed(a, b, token, with_token, without)


def test_aiohttp_unfollowed_redirect_then_a_new_request_to_the_origin_gets_the_token(
    token: str, a: Server, b: Server
) -> None:
    async def go() -> list[int]:
        async with aiohttp.ClientSession(middlewares=(CAVEAuthMiddleware(),)) as s:
            first = await aio_get(s, a.redirect(b.url("/never")), allow_redirects=False)
            second = await aio_get(s, a.url("/next"))
            third = await asyncio.gather(*(aio_get(s, a.url(f"/g{n}")) for n in range(3)))
            return [first, second, *third]

    assert asyncio.run(go()) == [302, 200, 200, 200, 200]
    assert b.seen == []
    assert [s.path for s in a.seen if not s.carries(token)] == []


@pytest.mark.parametrize("how", ["trust_env", "proxy="])
def test_aiohttp_proxy_refuses_plain_http_to_loopback_before_sending(
    how: str, token: str, a: Server, proxy: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    kwargs: dict[str, Any] = {}
    if how == "trust_env":
        monkeypatch.setenv("HTTP_PROXY", proxy.origin())
    else:
        kwargs["proxy"] = proxy.origin()

    async def go() -> int:
        async with aiohttp.ClientSession(
            middlewares=(CAVEAuthMiddleware(),), trust_env=how == "trust_env"
        ) as s:
            return await aio_get(s, a.url(), **kwargs)

    with pytest.raises(InsecureTransportError):
        asyncio.run(go())
    assert proxy.seen == []
    assert a.seen == []


def test_aiohttp_https_through_a_proxy_shows_the_proxy_no_token(
    token: str, tls: Server, proxy: Server, client_tls: ssl.SSLContext
) -> None:
    async def go() -> int:
        async with aiohttp.ClientSession(middlewares=(CAVEAuthMiddleware(),)) as s:
            return await aio_get(s, tls.url("/tunnelled"), proxy=proxy.origin(), ssl=client_tls)

    assert asyncio.run(go()) == 200
    assert [s.method for s in proxy.seen] == ["CONNECT"]
    assert clean(proxy.seen, token)
    assert tls.seen[0].carries(token)


def test_aiohttp_401_invalid_token_is_sent_once_more_with_the_saved_token_and_its_hops_carry_it(
    isolated_home: Path, token: str, a: Server
) -> None:
    new = new_token()
    a.routes["/data"] = rotating(
        isolated_home, new, lambda seen: (302, {"Location": "/moved"}, b"")
    )

    async def go() -> int:
        async with aiohttp.ClientSession(middlewares=(CAVEAuthMiddleware(),)) as s:
            return await aio_get(s, a.url("/data"), method="POST", data=b"payload")

    assert asyncio.run(go()) == 200
    assert [s.path for s in a.seen] == ["/data", "/data", "/moved"]
    assert a.seen[0].carries(token)
    assert a.seen[1].carries(new)
    assert a.seen[1].body == b"payload"
    assert a.seen[2].carries(new)
    assert not carrying(a.seen[1:], token)


def test_aiohttp_401_to_a_streamed_body_is_returned_not_resent(
    isolated_home: Path, token: str, a: Server
) -> None:
    new = new_token()
    a.routes["/upload"] = rotating(isolated_home, new)

    async def chunks() -> Any:
        yield b"one,"
        yield b"two"

    async def go() -> int:
        async with aiohttp.ClientSession(middlewares=(CAVEAuthMiddleware(),)) as s:
            return await aio_get(s, a.url("/upload"), method="POST", data=chunks())

    assert asyncio.run(go()) == 401
    assert len(a.seen) == 1
    assert a.seen[0].body == b"one,two"


def test_aiohttp_401_from_a_host_reached_by_redirect_is_not_retried_nor_blamed(
    isolated_home: Path, token: str, a: Server, b: Server
) -> None:
    new = new_token()
    b.routes["/data"] = rotating(isolated_home, new)
    middleware = CAVEAuthMiddleware(raise_on_auth_error=True)

    async def go() -> int:
        async with aiohttp.ClientSession(middlewares=(middleware,)) as s:
            return await aio_get(s, a.redirect(b.url("/data")))

    assert asyncio.run(go()) == 401  # not an AuthResponseError: not the CAVE token's fault
    assert len(b.seen) == 1
    assert clean(b.seen, token)
    assert clean(b.seen, new)


@pytest.mark.parametrize("binding", ["httpx", "aiohttp"])
def test_binding_after_use_pickles_and_reprs_without_the_token(
    binding: str, token: str, a: Server
) -> None:
    if binding == "httpx":
        auth: Any = CAVEHttpxAuth()
        assert httpx_get("Client", auth, a.url()).status_code == 200
    else:
        auth = CAVEAuthMiddleware()

        async def go() -> int:
            async with aiohttp.ClientSession(middlewares=(auth,)) as s:
                return await aio_get(s, a.url())

        assert asyncio.run(go()) == 200
    assert a.seen[0].carries(token)
    in_pickle = token.encode() in pickle.dumps(auth)
    in_repr = leaks(repr(auth), token)
    assert not in_pickle, "the token is in the pickle"
    assert not in_repr, "the token is in the repr"
    assert bool(auth)
    if binding == "httpx":  # the copy finds the token again, where it is
        httpx_get("Client", pickle.loads(pickle.dumps(auth)), a.url("/again"))
        assert a.seen[1].carries(token)


def test_aiohttp_hosts_list_leaves_other_hosts_and_hops_into_the_list_untouched(
    token: str, a: Server, b: Server
) -> None:
    async def go() -> None:
        middleware = CAVEAuthMiddleware(hosts=["127.0.0.2"])
        async with aiohttp.ClientSession(middlewares=(middleware,)) as s:
            await aio_get(s, a.url("/outside"))
            await aio_get(s, a.redirect(b.url("/into")))
            await aio_get(s, b.url("/listed"))

    asyncio.run(go())
    assert clean(a.seen, token)
    assert [s.path for s in b.seen] == ["/into", "/listed"]
    assert clean(b.seen[:1], token)
    assert b.seen[1].carries(token)


@pytest.mark.parametrize("client", ["urllib3", "requests", "httpx", "aiohttp"])
def test_auth_headers_with_the_cookie_do_not_follow_a_redirect_to_another_host(
    client: str, token: str, a: Server, b: Server
) -> None:
    """The README: these clients drop the headers of ``auth_headers`` on a change of host
    (with ``cookie=True``, the ``Cookie`` too)."""
    url = a.redirect(b.url("/elsewhere"))
    headers = cave_requests_auth.auth_headers(url, cookie=True)
    if client == "urllib3":
        urllib3.PoolManager().request("GET", url, headers=headers)
    elif client == "requests":
        requests.get(url, headers=headers)
    elif client == "httpx":
        httpx.get(url, headers=headers, follow_redirects=True)
    else:

        async def go() -> int:
            async with aiohttp.ClientSession() as s:
                return await aio_get(s, url, headers=headers)

        asyncio.run(go())
    assert a.seen[0].carries(token)
    assert len(b.seen) == 1
    assert clean(b.seen, token)


# -- fsspec ---------------------------------------------------------------------------


@pytest.fixture
def fsspec_cache() -> Iterator[None]:
    """fsspec's instance cache, empty before and after (other files make file systems too)."""
    http = fsspec.get_filesystem_class("http")
    http.clear_instance_cache()
    yield
    http.clear_instance_cache()


def test_fsspec_redirect_to_another_host_carries_no_token(token: str, a: Server, b: Server) -> None:
    fs = fsspec.filesystem(
        "http",
        client_kwargs={"middlewares": (CAVEAuthMiddleware(cookie=True),)},
        skip_instance_cache=True,
    )
    assert json.loads(fs.cat(a.url("/file")))["ok"]
    assert json.loads(fs.cat(a.redirect(b.url("/elsewhere"))))["ok"]
    assert json.loads(fs.cat(a.redirect(b.redirect(a.url("/back")))))["ok"]
    assert by_host(a, "127.0.0.1")[0].carries(token)
    assert clean(b.seen, token)
    assert clean([s for s in a.seen if s.path == "/back"], token)


def test_fsspec_cat_of_many_urls_at_once_keeps_each_chain_apart(
    token: str, a: Server, b: Server
) -> None:
    urls, with_token, without = _mixed(a, b, 30)
    fs = fsspec.filesystem(
        "http", client_kwargs={"middlewares": (CAVEAuthMiddleware(),)}, skip_instance_cache=True
    )
    assert len(fs.cat(urls)) == len(urls)
    _check_mixed(a, b, token, with_token, without)


def test_fsspec_file_systems_with_different_middlewares_send_their_own_token(
    a: Server, fsspec_cache: None
) -> None:
    """fsspec caches file systems by ``str()`` of their arguments; a middleware's repr
    must not make two middlewares with different tokens look alike."""
    first, second = new_token(), new_token()
    fs_one = fsspec.filesystem(
        "http", client_kwargs={"middlewares": (CAVEAuthMiddleware(token=first),)}
    )
    fs_two = fsspec.filesystem(
        "http", client_kwargs={"middlewares": (CAVEAuthMiddleware(token=second),)}
    )
    fs_one.cat(a.url("/one"))
    fs_two.cat(a.url("/two"))
    assert a.seen[0].carries(first)
    assert a.seen[1].carries(second), "the second file system sent the first one's token"


def test_fsspec_strict_middleware_is_not_swapped_for_a_permissive_one(
    token: str, a: Server, proxy: Server, fsspec_cache: None
) -> None:
    permissive = CAVEAuthMiddleware(allow_insecure_http=True)
    fsspec.filesystem("http", client_kwargs={"middlewares": (permissive,)})
    strict = fsspec.filesystem("http", client_kwargs={"middlewares": (CAVEAuthMiddleware(),)})
    try:
        strict.cat(a.url("/via-proxy"), proxy=proxy.origin())
    except InsecureTransportError:
        refused = True
    else:
        refused = False
    assert clean(proxy.seen, token), "the proxy saw the token"
    assert refused


# -- CAVEAuthAdapter.mount on a session that already spreads a token ------------------


@pytest.fixture
def caveclient_like() -> Iterator[tuple[requests.Session, str]]:
    """A session as CAVEclient makes one: its own token in the headers and a jar cookie
    with no domain, and Retry(total=3, status_forcelist=(502, 503, 504))."""
    theirs = new_token()
    session = requests.Session()
    retry = Retry(total=3, backoff_factor=0, status_forcelist=(502, 503, 504))
    for scheme in ("http://", "https://"):
        session.mount(scheme, HTTPAdapter(max_retries=retry, pool_maxsize=7))
    session.headers["Authorization"] = f"Bearer {theirs}"
    session.cookies.set("middle_auth_token", theirs)
    yield session, theirs
    session.close()


def test_mount_keeps_retries_and_pool_and_removes_session_wide_credentials(
    token: str, a: Server, caveclient_like: tuple[requests.Session, str]
) -> None:
    session, _ = caveclient_like
    adapter = CAVEAuthAdapter.mount(session, a.origin() + "/")
    assert adapter.max_retries.total == 3
    assert tuple(adapter.max_retries.status_forcelist) == (502, 503, 504)
    assert adapter.poolmanager.connection_pool_kw.get("maxsize") == 7
    assert "Authorization" not in session.headers
    assert "middle_auth_token" not in session.cookies


def test_mount_other_hosts_get_neither_header_nor_cookie(
    token: str, a: Server, b: Server, caveclient_like: tuple[requests.Session, str]
) -> None:
    session, theirs = caveclient_like
    CAVEAuthAdapter.mount(session, a.origin() + "/")
    session.get(b.url("/other-host"))
    session.get(a.url("/other-name", host="localhost"))
    session.get(a.url("/prefix"))
    assert clean(b.seen + by_host(a, "localhost"), token)
    assert not carrying(b.seen + a.seen, theirs)
    assert bearer_of(by_host(a, "127.0.0.1")[0], token)


def test_mount_retries_a_503_with_the_token_each_time(
    token: str, a: Server, caveclient_like: tuple[requests.Session, str]
) -> None:
    session, _ = caveclient_like
    CAVEAuthAdapter.mount(session, a.origin() + "/")
    answers = iter([503, 503, 200])
    a.routes["/flaky"] = lambda seen: json_answer(next(answers), {})
    assert session.get(a.url("/flaky")).status_code == 200
    assert len(a.seen) == 3
    assert all(s.carries(token) for s in a.seen)


def test_mount_redirect_into_the_prefix_from_another_origin_gets_no_token(
    token: str, a: Server, b: Server, caveclient_like: tuple[requests.Session, str]
) -> None:
    session, theirs = caveclient_like
    CAVEAuthAdapter.mount(session, a.origin() + "/")
    session.get(b.redirect(a.url("/from-b")))
    session.post(a.redirect(b.redirect(a.url("/back"), 307), 307), data=b"x")
    assert [s.path for s in a.seen] == ["/from-b", "/redirect", "/back"]
    assert clean([a.seen[0], a.seen[2]], token)
    assert a.seen[1].carries(token)
    assert clean(b.seen, token)
    assert not carrying(a.seen + b.seen, theirs)


@pytest.mark.parametrize(
    "how",
    [
        "session.send(Request.prepare())",
        "hooks=",
        "send(r.next)",
    ],
)
def test_mount_sees_a_chain_from_another_origin_however_the_session_sends_it(
    how: str, token: str, a: Server, b: Server, caveclient_like: tuple[requests.Session, str]
) -> None:
    """``mount`` "watches every request of the session": also one prepared without the
    session's hooks, one given its own ``hooks=``, and hops sent by hand."""
    session, _ = caveclient_like
    CAVEAuthAdapter.mount(session, a.origin() + "/")
    url = b.redirect(a.url("/from-b"))
    if how == "hooks=":
        session.get(url, hooks={"response": [lambda response, **kwargs: response]})
    elif how == "send(r.next)":
        response = session.get(url, allow_redirects=False)
        session.send(response.next, allow_redirects=False)
    else:
        session.send(requests.Request("GET", url).prepare())
    assert [s.path for s in a.seen] == ["/from-b"]
    assert clean(a.seen, token), "a hop from another origin into the prefix got the token"


def test_mount_a_hop_sent_by_hand_is_a_hop_after_the_first_request_is_freed(
    token: str, a: Server, b: Server, caveclient_like: tuple[requests.Session, str]
) -> None:
    """Following ``r.next`` by hand frees each request: CPython gives a later hop the address,
    so the ``id()``, the chain's first request had. That hop is still a hop (found in
    review: 8 of 300 such chains got the token into the prefix)."""
    session, _ = caveclient_like
    CAVEAuthAdapter.mount(session, a.origin() + "/")
    into_a = a.url("/landing")
    for _ in range(6):
        into_a = b.redirect(into_a)
    for _ in range(300):
        response = session.get(into_a, allow_redirects=False)
        while response.is_redirect:
            response = session.send(response.next, allow_redirects=False)
    assert len(a.seen) == 300
    assert clean(a.seen, token), "a hop from another origin into the prefix got the token"


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_mount_a_sent_request_copied_whole_is_sent_again_with_the_token(
    how: str, token: str, a: Server, caveclient_like: tuple[requests.Session, str]
) -> None:
    """A retry queue that deep-copies or pickles a sent request: the copy begins a chain of
    its own (found in review: it was sent with the masked token, and failed to encode)."""
    session, _ = caveclient_like
    CAVEAuthAdapter.mount(session, a.origin() + "/")
    prepared = session.prepare_request(requests.Request("GET", a.url("/again")))
    session.send(prepared)
    again = copy.deepcopy(prepared) if how == "deepcopy" else pickle.loads(pickle.dumps(prepared))
    assert session.send(again).status_code == 200
    assert [s.path for s in a.seen] == ["/again", "/again"]
    assert all(s.carries(token) for s in a.seen)


def test_mount_401_invalid_token_is_sent_once_more_with_the_saved_token(
    isolated_home: Path, token: str, a: Server, caveclient_like: tuple[requests.Session, str]
) -> None:
    session, _ = caveclient_like
    CAVEAuthAdapter.mount(session, a.origin() + "/")
    new = new_token()
    a.routes["/data"] = rotating(isolated_home, new)
    assert session.post(a.url("/data"), data=b"payload").status_code == 200
    assert len(a.seen) == 2
    assert a.seen[0].carries(token)
    assert a.seen[1].carries(new)
    assert a.seen[1].body == b"payload"


def test_mount_session_proxies_refuse_plain_http_to_loopback(
    token: str, a: Server, proxy: Server, caveclient_like: tuple[requests.Session, str]
) -> None:
    session, _ = caveclient_like
    CAVEAuthAdapter.mount(session, a.origin() + "/")
    session.proxies = {"http": proxy.origin()}
    with pytest.raises(InsecureTransportError):
        session.get(a.url())
    assert proxy.seen == []


def test_mount_prefix_without_a_slash_does_not_reach_a_longer_host_name(
    token: str, tls: Server, proxy: Server, ca_file: str
) -> None:
    """``mount(session, "https://cave.invalid")``: requests matches prefixes as strings, so
    ``https://cave.invalid.attacker.invalid/`` goes through the adapter too. (Both names
    reach the TLS server through the proxy's CONNECT; nothing is resolved.)"""
    proxy.aliases.update({"cave.invalid": tls.port, "cave.invalid.attacker.invalid": tls.port})
    session = requests.Session()
    session.proxies = {"https": proxy.origin()}
    session.verify = ca_file
    CAVEAuthAdapter.mount(session, "https://cave.invalid")
    session.get("https://cave.invalid/mine")
    session.get("https://cave.invalid.attacker.invalid/theirs")
    assert [s.headers.get("host") for s in tls.seen] == [
        "cave.invalid",
        "cave.invalid.attacker.invalid",
    ]
    assert tls.seen[0].carries(token)
    assert clean(tls.seen[1:], token), "a host that only starts like the prefix got the token"


# -- urllib3 managers -----------------------------------------------------------------


def test_proxy_manager_refuses_plain_http_before_the_proxy_sees_anything(
    token: str, a: Server, proxy: Server
) -> None:
    with pytest.raises(InsecureTransportError):
        CAVEProxyManager(proxy.origin()).request("GET", a.url())
    assert proxy.seen == []
    assert a.seen == []


def test_proxy_manager_https_tunnel_shows_the_token_to_the_service_only(
    token: str, tls: Server, proxy: Server, ca_file: str
) -> None:
    manager = CAVEProxyManager(proxy.origin(), ca_certs=ca_file)
    assert manager.request("GET", tls.url("/tunnelled")).status == 200
    assert [s.method for s in proxy.seen] == ["CONNECT"]
    assert clean(proxy.seen, token)
    assert tls.seen[0].carries(token)
    # https → plain http: the hop goes to the proxy in the clear, without the token
    assert manager.request("GET", tls.redirect("http://127.0.0.1:9/plain")).status == 200
    assert [s.method for s in proxy.seen][-1] == "GET"
    assert clean(proxy.seen, token)


def test_proxy_manager_forwarding_https_refuses_before_the_proxy_sees_anything(
    token: str, tls: Server, proxy: Server, ca_file: str
) -> None:
    manager = CAVEProxyManager(proxy.origin(), ca_certs=ca_file, use_forwarding_for_https=True)
    with pytest.raises(InsecureTransportError):
        manager.request("GET", tls.url())
    assert proxy.seen == []


def test_pool_manager_redirect_chain_through_another_origin_carries_no_token(
    token: str, a: Server, b: Server
) -> None:
    # a Retry that would keep every header on a redirect: the manager's own are still removed
    http = CAVEPoolManager(
        CAVETokenAuth(cookie=True), retries=Retry(redirect=5, remove_headers_on_redirect=[])
    )
    assert http.request("GET", a.redirect(b.redirect(a.url("/back")))).status == 200
    assert a.seen[0].carries(token)
    assert clean(b.seen + a.seen[1:], token)


# -- raise_for_auth and the messages ----------------------------------------------------


def masked(text: str, secrets: list[str]) -> str:
    """``text`` with every run of 8 characters of a secret replaced (safe to show)."""
    for secret in secrets:
        for i in range(len(secret) - 7):
            text = text.replace(secret[i : i + 8], "<masked>")
    return text


def exposed(error: AuthResponseError, secrets: list[str]) -> tuple[list[str], str]:
    """Where a secret shows (``message``, ``pickle``, ``unpickled``, ``copy``), and the
    message with the secrets masked, for the checks of its words."""
    found = []
    message = str(error)
    for secret in secrets:
        if leaks(message, secret):
            found.append("message")
        if secret.encode() in pickle.dumps(error):
            found.append("pickle")
        if leaks(str(pickle.loads(pickle.dumps(error))), secret):
            found.append("unpickled")
        if leaks(str(copy.copy(error)), secret):
            found.append("copy")
    return found, masked(message, secrets)


@pytest.fixture
def cave_log(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[logging.LogRecord]]:
    """The library's log records, kept here and not propagated (pytest would print them)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("cave_requests_auth")
    monkeypatch.setattr(logger, "propagate", False)
    monkeypatch.setattr(logger, "level", logging.DEBUG)
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


def _said_invalid_not_missing(message: str) -> None:
    assert "invalid or expired" in message
    assert "no CAVE token was sent" not in message


def test_raise_for_auth_on_requests_with_a_session_bearer_not_attached_by_the_library(
    a: Server,
) -> None:
    theirs = new_token()
    a.routes["/data"] = lambda seen: invalid_token_answer()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {theirs}"
    response = session.get(a.url("/data"))
    with pytest.raises(AuthResponseError) as caught:
        raise_for_auth(response)
    found, message = exposed(caught.value, [theirs])
    assert found == []
    _said_invalid_not_missing(message)
    assert "not attached by cave-requests-auth" in message
    assert caught.value.code == "invalid_token"


def test_raise_for_auth_on_httpx_with_a_client_bearer_not_attached_by_the_library(
    a: Server,
) -> None:
    theirs = new_token()
    a.routes["/data"] = lambda seen: invalid_token_answer()
    with httpx.Client(headers={"Authorization": f"Bearer {theirs}"}) as c:
        response = c.get(a.url("/data"))
    with pytest.raises(AuthResponseError) as caught:
        raise_for_auth(response)
    found, message = exposed(caught.value, [theirs])
    assert found == []
    _said_invalid_not_missing(message)


def test_raise_for_auth_on_urllib3_with_a_bearer_not_attached_by_the_library(
    a: Server,
) -> None:
    """The server says invalid_token: a token was sent, whoever sent it."""
    theirs = new_token()
    a.routes["/data"] = lambda seen: invalid_token_answer()
    response = urllib3.PoolManager().request(
        "GET", a.url("/data"), headers={"Authorization": f"Bearer {theirs}"}
    )
    with pytest.raises(AuthResponseError) as caught:
        raise_for_auth(response)
    found, message = exposed(caught.value, [theirs])
    assert found == []
    _said_invalid_not_missing(message)


def test_raise_for_auth_on_an_aiohttp_response_is_a_type_error_naming_the_middleware(
    a: Server,
) -> None:
    a.routes["/data"] = lambda seen: invalid_token_answer()

    async def go() -> None:
        async with aiohttp.ClientSession() as s, s.get(a.url("/data")) as response:
            await response.read()
            raise_for_auth(response)

    with pytest.raises(TypeError, match="CAVEAuthMiddleware"):
        asyncio.run(go())


def _echoing(seen: Seen) -> Any:
    """A 403 that quotes the bearer token it got, whole and in parts, in every field."""
    sent = seen.headers.get("authorization", "")[7:]
    quoted = f"{sent} / {sent[:12]} / {sent[-12:]}"
    return json_answer(
        403,
        {
            "error": "missing_permission",
            "message": f"token {quoted} lacks permission",
            "data": {"required_permission": quoted, "auth_dataset": quoted},
        },
    )


def _ways(a: Server) -> dict[str, Any]:
    url = a.url("/data")

    def via_requests() -> Any:
        return requests.get(url, auth=CAVETokenAuth())

    def via_adapter() -> Any:
        session = requests.Session()
        CAVEAuthAdapter.mount(session, a.origin() + "/")
        return session.get(url)

    def via_urllib3() -> Any:
        return CAVEPoolManager().request("GET", url)

    def via_httpx() -> Any:
        with httpx.Client(auth=CAVEHttpxAuth()) as c:
            return c.get(url)

    return {
        "requests": via_requests,
        "adapter": via_adapter,
        "urllib3": via_urllib3,
        "httpx": via_httpx,
    }


@pytest.mark.parametrize("way", ["requests", "adapter", "urllib3", "httpx"])
def test_raise_for_auth_masks_a_token_the_server_quotes_back(
    way: str, token: str, a: Server, cave_log: list[logging.LogRecord]
) -> None:
    a.routes["/data"] = _echoing
    response = _ways(a)[way]()
    with pytest.raises(AuthResponseError) as caught:
        raise_for_auth(response)
    found, message = exposed(caught.value, [token])
    assert found == []
    assert "lacks the permission" in message
    logged = any(leaks(r.getMessage(), token) for r in cave_log)
    assert not logged, "a token is in a log record"


def test_aiohttp_refusal_error_masks_the_token_pickles_and_is_a_client_error(
    token: str, a: Server, cave_log: list[logging.LogRecord]
) -> None:
    a.routes["/data"] = _echoing

    async def go() -> int:
        middleware = CAVEAuthMiddleware(raise_on_auth_error=True)
        async with aiohttp.ClientSession(middlewares=(middleware,)) as s:
            return await aio_get(s, a.url("/data"))

    with pytest.raises(AuthResponseError) as caught:
        asyncio.run(go())
    assert isinstance(caught.value, aiohttp.ClientError)
    found, message = exposed(caught.value, [token])
    assert found == []
    assert "lacks the permission" in message
    logged = any(leaks(r.getMessage(), token) for r in cave_log)
    assert not logged, "a token is in a log record"


def _retried_then_echoing(home: Path, new: str) -> Any:
    """401 invalid_token (saving ``new``); then a 403 that quotes the *refused* token."""
    refused: list[str] = []

    def route(seen: Seen) -> Any:
        if seen.carries(new):
            return json_answer(
                403,
                {
                    "error": "missing_permission",
                    "message": f"token {new} replaced {refused[0]}",
                    "data": {"required_permission": refused[0], "auth_dataset": "d"},
                },
            )
        refused.append(seen.headers.get("authorization", "")[7:])
        save(home, new)
        return invalid_token_answer()

    return route


@pytest.mark.parametrize("way", ["requests", "adapter", "urllib3", "httpx", "aiohttp"])
def test_refusal_after_a_retry_masks_the_refused_token_too(
    way: str, isolated_home: Path, token: str, a: Server, cave_log: list[logging.LogRecord]
) -> None:
    """Every token sent along the chain is masked, the one refused before the re-send too."""
    new = new_token()
    a.routes["/data"] = _retried_then_echoing(isolated_home, new)
    if way == "aiohttp":

        async def go() -> int:
            middleware = CAVEAuthMiddleware(raise_on_auth_error=True)
            async with aiohttp.ClientSession(middlewares=(middleware,)) as s:
                return await aio_get(s, a.url("/data"))

        with pytest.raises(AuthResponseError) as caught:
            asyncio.run(go())
    else:
        response = _ways(a)[way]()
        with pytest.raises(AuthResponseError) as caught:
            raise_for_auth(response)
    assert len(a.seen) == 2
    found, _ = exposed(caught.value, [new, token])
    assert found == []
    logged = any(leaks(r.getMessage(), t) for r in cave_log for t in (new, token))
    assert not logged, "a token is in a log record"


# -- a new user: the README's snippets, the recipes, the command ----------------------


def _readme_blocks() -> list[str]:
    text = (REPO / "README.rst").read_text()
    blocks = []
    for match in re.finditer(r"\.\. code-block:: python\n\n((?:    .*\n|\n)+)", text):
        lines = [line[4:] for line in match.group(1).splitlines()]
        blocks.append("\n".join(lines).strip() + "\n")
    return blocks


def test_readme_python_snippets_run_as_pasted_against_loopback(
    isolated_home: Path,
    a: Server,
    b: Server,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    typed = new_token()  # what the user pasted; also in CAVE_TOKEN, as in CI
    monkeypatch.setattr("getpass.getpass", lambda prompt="": typed)
    monkeypatch.setattr("sys.stdin", io.StringIO(typed + "\n"))  # login() off a terminal
    monkeypatch.setenv("CAVE_TOKEN", typed)
    user = {"id": 1, "name": "Ada"}  # login() checks the token with the auth server (b)
    monkeypatch.setitem(b.routes, "/auth/api/v1/user/cache", lambda seen: json_answer(200, user))
    blocks = _readme_blocks()
    assert len(blocks) >= 8
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        for block in blocks:
            code = block.replace("https://minnie.example.org", a.origin()).replace(
                "https://global.daf-apis.com", b.origin()
            )
            exec(compile(code, "README.rst", "exec"), {"__name__": "readme"})  # noqa: S102
    said = [str(w.message) for w in warned if issubclass(w.category, CAVEAuthWarning)]
    assert said, "login() saved the token without saying CAVE_TOKEN wins over it"
    assert all("CAVE_TOKEN is set, so requests use it" in text for text in said)
    asked = [s for s in a.seen + b.seen if s.path != "/auth_info"]  # found without a token
    assert all(s.carries(typed) for s in asked)
    assert len(a.seen) >= 6
    printed = leaks(capsys.readouterr().out, typed)
    assert not printed, "a snippet printed the token"


@pytest.mark.parametrize("recipe", ["httpx_client", "aiohttp_session", "fsspec_http"])
def test_recipe_runs_as_shipped_and_sends_nothing_elsewhere(
    recipe: str, a: Server, b: Server
) -> None:
    value = new_token()
    env = {
        **os.environ,
        "CAVE_TOKEN": value,
        "CAVE_RECIPE_URL": a.url("/recipe"),
        "CAVE_RECIPE_OTHER_URL": b.url("/elsewhere"),
    }
    done = subprocess.run(
        [sys.executable, str(REPO / "docs" / "recipes" / f"{recipe}.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:].replace(value, "<token>")
    assert a.seen
    assert all(s.carries(value) for s in a.seen)
    assert clean(b.seen, value)
    printed = leaks(done.stdout + done.stderr, value)
    assert not printed, "the recipe printed the token"


def _cave_auth(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    command = shutil.which("cave-auth")
    argv = [command] if command else [sys.executable, "-m", "cave_requests_auth"]
    return subprocess.run(
        [*argv, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_cli_as_a_new_user_with_no_token(isolated_home: Path) -> None:
    shown = _cave_auth("--help")
    assert shown.returncode == 0
    assert "login" in shown.stdout
    assert "status" in shown.stdout
    for args in (["status"], ["token", "https://x.invalid/"], ["token", "http://x.invalid/"]):
        done = _cave_auth(*args)
        assert done.returncode == 1
        assert "Traceback" not in done.stdout + done.stderr
        assert "create_token" in done.stdout + done.stderr or "http" in done.stderr
    assert not list(isolated_home.rglob("*-secret.json"))  # nothing written


def test_cli_token_follows_the_request_rules_and_status_masks(
    isolated_home: Path, proxy: Server
) -> None:
    value = new_token()
    printed = _cave_auth("token", "https://x.invalid/", CAVE_TOKEN=value)
    assert printed.returncode == 0
    assert Secret(printed.stdout.strip()).equals(value)
    for args, extra in (
        (["token", "http://x.invalid/"], {}),
        (["token", "http://127.0.0.1:9/"], {"HTTP_PROXY": proxy.origin()}),
        (["token", "ftp://127.0.0.1/"], {}),
        (["status"], {}),
        (["status", "https://x.invalid/"], {}),
    ):
        done = _cave_auth(*args, CAVE_TOKEN=value, **extra)
        printed = leaks(done.stdout + done.stderr, value)
        assert not printed, "the token was printed"
        assert "Traceback" not in done.stderr
        if args[0] == "token":
            assert done.returncode != 0
    assert proxy.seen == []


def test_no_token_is_read_from_the_real_home(isolated_home: Path) -> None:
    assert Path(os.environ["HOME"]) == isolated_home
    assert cave_requests_auth.load_token("https://x.invalid/") is None
