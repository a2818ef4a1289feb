"""CAVEHttpxAuth against real loopback services, through httpx.Client and httpx.AsyncClient.

Each rule runs both ways in (``WAYS``); the redirect rules also both ways httpx
follows redirects: by itself (``follow_redirects=True``, hops made without the
auth flow) and by hand (``client.send(response.next_request)``, each hop
through the flow). ``service`` is the Flask app behind the real
middle_auth_client decorators; ``127.0.0.1`` and ``localhost`` are two origins.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import cave_requests_auth.core
from _loopback import Seen, Server, json_answer
from cave_requests_auth import AuthResponseError, InsecureTransportError, TokenNotFoundError
from cave_requests_auth.httpx import CAVEHttpxAuth
from helpers import (
    INVALID_TOKEN,
    NOTHING,
    OTHER_TOKEN,
    TOKEN,
    TOKEN_AND_COOKIE,
    TOS_TOKEN,
    VALID_TOKEN,
    Service,
    carried,
    write_secret,
)

WAYS = ["Client", "AsyncClient"]
FOLLOWING = ["httpx-follows", "by-hand"]
TIMEOUT = 10
INVALID_401 = {"error": "invalid_token", "message": "Unauthorized - Token is Invalid or Expired"}


def send(way: str, auth: Any, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """One request, through a fresh client of ``way``, httpx following redirects."""
    responses = exchange(way, auth, method, url, by_hand=False, **kwargs)
    return responses[-1]


def exchange(
    way: str,
    auth: Any,
    method: str,
    url: str,
    *,
    by_hand: bool,
    client_kwargs: dict[str, Any] | None = None,
    **kwargs: Any,
) -> list[httpx.Response]:
    """A request and its redirects; by hand: the responses of every ``send(next_request)``."""
    options = {"auth": auth, "timeout": TIMEOUT, "follow_redirects": not by_hand}
    options.update(client_kwargs or {})
    if way == "Client":
        with httpx.Client(**options) as client:
            responses = [client.request(method, url, **kwargs)]
            while responses[-1].next_request is not None:
                responses.append(client.send(responses[-1].next_request))
            return responses

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(**options) as client:
            responses = [await client.request(method, url, **kwargs)]
            while responses[-1].next_request is not None:
                responses.append(await client.send(responses[-1].next_request))
            return responses

    return asyncio.run(run())


def bearer_of(hit: dict[str, Any]) -> str | None:
    return hit["headers"].get("Authorization")


def holds(text: Any, *tokens: str) -> bool:
    """Whether any of ``tokens`` is in ``text`` (a bool, so a failure shows no token)."""
    return any(token in str(text) for token in tokens)


@pytest.fixture
def serve() -> Iterator[Any]:
    """``serve(route=...)``: a recording loopback server, closed afterwards."""
    servers: list[Server] = []

    def start(**kwargs: Any) -> Server:
        servers.append(Server(**kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


class TestAttaching:
    @pytest.mark.parametrize("way", WAYS)
    def test_the_token_reaches_the_service(
        self, service: Service, seen: list[dict[str, Any]], way: str
    ) -> None:
        response = send(way, CAVEHttpxAuth(token=VALID_TOKEN), "GET", service.url("/api/data"))
        assert response.json()["user"] == "Ada"
        assert [bearer_of(hit) for hit in seen] == [f"Bearer {VALID_TOKEN}"]

    @pytest.mark.parametrize("way", WAYS)
    def test_the_cookie_joins_the_requests_own_and_never_the_jar(
        self, service: Service, seen: list[dict[str, Any]], way: str
    ) -> None:
        auth = CAVEHttpxAuth(token=VALID_TOKEN, cookie=True)
        headers = {"Cookie": "mine=1; middle_auth_token=stale"}
        response = send(way, auth, "GET", service.url("/echo"), headers=headers)
        assert response.status_code == 200
        (hit,) = seen
        assert carried(hit) == TOKEN_AND_COOKIE
        assert hit["cookies"] == {"mine": "1", "middle_auth_token": VALID_TOKEN}
        assert dict(response.cookies) == {}

    @pytest.mark.parametrize("way", WAYS)
    def test_each_host_gets_its_own_files_token(
        self, service: Service, seen: list[dict[str, Any]], secrets: Path, way: str
    ) -> None:
        write_secret(secrets / f"127.0.0.1:{service.port}-cave-secret.json", {"token": VALID_TOKEN})
        write_secret(secrets / f"localhost:{service.port}-cave-secret.json", {"token": OTHER_TOKEN})
        auth = CAVEHttpxAuth()
        users = [
            send(way, auth, "GET", service.url("/api/data", host)).json()["user"]
            for host in ("127.0.0.1", "localhost")
        ]
        assert users == ["Ada", "Grace"]
        assert [bearer_of(hit) for hit in seen] == [
            f"Bearer {VALID_TOKEN}",
            f"Bearer {OTHER_TOKEN}",
        ]

    @pytest.mark.parametrize("way", WAYS)
    def test_hosts_limits_where_the_token_goes(
        self, service: Service, seen: list[dict[str, Any]], way: str
    ) -> None:
        auth = CAVEHttpxAuth(token=VALID_TOKEN, hosts=["localhost"])
        for host in ("127.0.0.1", "localhost"):
            send(way, auth, "GET", service.url("/echo", host))
        assert [carried(hit) for hit in seen] == [NOTHING, TOKEN]

    @pytest.mark.parametrize("way", WAYS)
    def test_no_token_found_is_raised_before_sending(
        self, service: Service, seen: list[dict[str, Any]], way: str
    ) -> None:
        with pytest.raises(TokenNotFoundError):
            send(way, CAVEHttpxAuth(), "GET", service.url("/echo"))
        assert seen == []

    def test_the_async_flow_reads_files_off_the_event_loop_once_per_origin(
        self, service: Service, secrets: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        threads: list[threading.Thread] = []
        real_lookup = cave_requests_auth.core.lookup

        def lookup(*args: Any) -> Any:
            threads.append(threading.current_thread())
            return real_lookup(*args)

        monkeypatch.setattr(cave_requests_auth.core, "lookup", lookup)
        auth = CAVEHttpxAuth()
        for _ in range(3):
            assert send("AsyncClient", auth, "GET", service.url("/api/data")).status_code == 200
        assert len(threads) == 1  # then cached: no file, no thread
        assert threads[0] is not threading.main_thread()  # asyncio.run's loop is in this one


class TestPlainHttp:
    @pytest.fixture
    def no_connection(self, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
        """Every name lookup or connection attempted (each also fails)."""
        import socket

        attempts: list[Any] = []

        def refuse(*args: Any, **kwargs: Any) -> Any:
            attempts.append(args[:1])
            raise OSError("the test forbids connecting")

        monkeypatch.setattr(socket, "getaddrinfo", refuse)
        monkeypatch.setattr(socket, "create_connection", refuse)
        return attempts

    @pytest.mark.parametrize("way", WAYS)
    @pytest.mark.parametrize(
        "url", ["http://cave.example.invalid/api", "http://127.0.0.1.:8000/api"]
    )
    def test_refused_before_any_connection(
        self, no_connection: list[Any], way: str, url: str
    ) -> None:
        with pytest.raises(InsecureTransportError):
            send(way, CAVEHttpxAuth(token=VALID_TOKEN), "GET", url)
        assert no_connection == []

    @pytest.mark.parametrize("way", WAYS)
    def test_allowed_where_asked(self, no_connection: list[Any], way: str) -> None:
        auth = CAVEHttpxAuth(token=VALID_TOKEN, allow_insecure_http=True)
        with pytest.raises(httpx.ConnectError):
            send(way, auth, "GET", "http://cave.example.invalid/api")
        assert no_connection != []  # the refusal above was the auth's, not the test's

    @pytest.mark.parametrize("way", WAYS)
    @pytest.mark.parametrize(
        ("no_proxy", "direct"),
        [("", False), ("127.0.0.0/8", False), ("example.org, 127.0.0.1", True), ("*", True)],
    )
    def test_loopback_only_without_the_environments_proxy(
        self,
        serve: Any,
        service: Service,
        seen: list[dict[str, Any]],
        monkeypatch: pytest.MonkeyPatch,
        way: str,
        no_proxy: str,
        direct: bool,
    ) -> None:
        proxy = serve(route=lambda seen: (200, {}, b"from the proxy"))
        monkeypatch.setenv("HTTP_PROXY", proxy.url(""))
        monkeypatch.setenv("NO_PROXY", no_proxy)
        auth = CAVEHttpxAuth(token=VALID_TOKEN)
        if direct:
            assert send(way, auth, "GET", service.url("/api/data")).json()["user"] == "Ada"
            assert [carried(hit) for hit in seen] == [TOKEN]
        else:
            with pytest.raises(InsecureTransportError):
                send(way, auth, "GET", service.url("/api/data"))
            assert seen == []
        assert proxy.seen == []


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("following", FOLLOWING)
class TestRedirects:
    @pytest.mark.parametrize("status", [302, 307])
    def test_another_host_gets_nothing(
        self, service: Service, seen: list[dict[str, Any]], way: str, following: str, status: int
    ) -> None:
        url = service.redirect(service.url("/echo", "localhost"), status)
        auth = CAVEHttpxAuth(token=VALID_TOKEN, cookie=True)
        responses = exchange(way, auth, "GET", url, by_hand=following == "by-hand")
        assert responses[-1].status_code == 200
        assert [carried(hit) for hit in seen] == [TOKEN_AND_COOKIE, NOTHING]
        assert seen[1]["host"] == f"localhost:{service.port}"

    def test_back_to_the_first_origin_gets_nothing(
        self, service: Service, seen: list[dict[str, Any]], way: str, following: str
    ) -> None:
        back = service.redirect(service.url("/echo"), 307, host="localhost")
        url = service.redirect(back, 307)
        responses = exchange(
            way, CAVEHttpxAuth(token=VALID_TOKEN), "GET", url, by_hand=following == "by-hand"
        )
        assert responses[-1].status_code == 200
        assert [carried(hit) for hit in seen] == [TOKEN, NOTHING, NOTHING]
        assert seen[2]["host"] == f"127.0.0.1:{service.port}"

    def test_the_same_origin_keeps_the_token(
        self, service: Service, seen: list[dict[str, Any]], way: str, following: str
    ) -> None:
        url = service.redirect(service.redirect(service.url("/api/data"), 302), 307)
        responses = exchange(
            way, CAVEHttpxAuth(token=VALID_TOKEN), "GET", url, by_hand=following == "by-hand"
        )
        assert responses[-1].json()["user"] == "Ada"
        assert [bearer_of(hit) for hit in seen] == [f"Bearer {VALID_TOKEN}"] * 3

    def test_a_401_after_a_redirect_is_not_retried(
        self, service: Service, seen: list[dict[str, Any]], secrets: Path, way: str, following: str
    ) -> None:
        path = write_secret(secrets / "cave-secret.json", {"token": INVALID_TOKEN})
        auth = CAVEHttpxAuth()
        send(way, auth, "GET", service.url("/echo"))  # INVALID_TOKEN is cached
        write_secret(path, {"token": VALID_TOKEN})
        seen.clear()
        url = service.redirect(service.url("/always401"), 307)
        responses = exchange(way, auth, "GET", url, by_hand=following == "by-hand")
        assert responses[-1].status_code == 401
        assert [bearer_of(hit) for hit in seen] == [f"Bearer {INVALID_TOKEN}"] * 2


@pytest.mark.parametrize("way", WAYS)
def test_by_hand_only_the_hop_httpx_built_is_a_hop(
    service: Service, seen: list[dict[str, Any]], way: str
) -> None:
    """A request that merely copies a hop's extensions, or re-sends the first, starts afresh."""
    auth = CAVEHttpxAuth(token=VALID_TOKEN)
    back = service.redirect(service.url("/echo"), 307, host="localhost")

    async def run(client: Any) -> None:
        async def wait(value: Any) -> Any:
            return await value if asyncio.iscoroutine(value) else value

        first = await wait(client.get(service.redirect(back, 307)))
        hop = await wait(client.send(first.next_request))  # to localhost: nothing
        copied = client.build_request(
            "GET", service.url("/echo"), extensions=hop.next_request.extensions
        )
        await wait(client.send(copied))  # a request of its own: the token
        await wait(client.send(hop.next_request))  # the real hop back: nothing

    if way == "Client":
        with httpx.Client(auth=auth, timeout=TIMEOUT) as client:
            asyncio.run(run(client))
    else:

        async def run_async() -> None:
            async with httpx.AsyncClient(auth=auth, timeout=TIMEOUT) as client:
                await run(client)

        asyncio.run(run_async())
    assert [carried(hit) for hit in seen] == [TOKEN, NOTHING, TOKEN, NOTHING]


class TestRetry:
    @pytest.mark.parametrize("way", WAYS)
    def test_a_token_replaced_in_its_file_is_sent_once_more(
        self, service: Service, seen: list[dict[str, Any]], secrets: Path, way: str
    ) -> None:
        path = write_secret(secrets / "cave-secret.json", {"token": INVALID_TOKEN})
        auth = CAVEHttpxAuth()
        assert send(way, auth, "GET", service.url("/api/data")).status_code == 401
        write_secret(path, {"token": VALID_TOKEN})  # `cave-auth login` in another process
        seen.clear()
        response = send(way, auth, "POST", service.url("/api/data"), content=b"payload")
        assert response.json() == {"user": "Ada", "body": "payload"}
        assert [r.status_code for r in response.history] == [401]
        assert [bearer_of(hit) for hit in seen] == [
            f"Bearer {INVALID_TOKEN}",
            f"Bearer {VALID_TOKEN}",
        ]
        seen.clear()
        assert send(way, auth, "GET", service.url("/api/data")).status_code == 200
        assert len(seen) == 1  # the new token is cached

    @pytest.mark.parametrize("way", WAYS)
    def test_an_unchanged_source_or_an_explicit_token_is_not_retried(
        self, service: Service, seen: list[dict[str, Any]], secrets: Path, way: str
    ) -> None:
        write_secret(secrets / "cave-secret.json", {"token": INVALID_TOKEN})
        for auth in (CAVEHttpxAuth(), CAVEHttpxAuth(token=INVALID_TOKEN)):
            response = send(way, auth, "GET", service.url("/api/data"))
            assert (response.status_code, response.history) == (401, [])
        assert len(seen) == 2

    @pytest.mark.parametrize("way", WAYS)
    def test_a_streamed_body_is_not_sent_again(
        self, service: Service, seen: list[dict[str, Any]], secrets: Path, way: str
    ) -> None:
        path = write_secret(secrets / "cave-secret.json", {"token": INVALID_TOKEN})
        auth = CAVEHttpxAuth()
        assert send(way, auth, "GET", service.url("/api/data")).status_code == 401
        write_secret(path, {"token": VALID_TOKEN})
        seen.clear()

        async def chunks() -> AsyncIterator[bytes]:
            for chunk in (b"one", b"two"):
                yield chunk

        body = chunks() if way == "AsyncClient" else iter([b"one", b"two"])
        response = send(way, auth, "POST", service.url("/api/data"), content=body)
        assert (response.status_code, response.history) == (401, [])
        assert len(seen) == 1

    @pytest.mark.parametrize("way", WAYS)
    @pytest.mark.parametrize("following", FOLLOWING)
    def test_after_the_retry_its_redirect_carries_the_new_token(
        self, serve: Any, secrets: Path, way: str, following: str
    ) -> None:
        write_secret(secrets / "cave-secret.json", {"token": INVALID_TOKEN})

        def route(seen: Seen) -> Any:
            if seen.path == "/start" and seen.carries(INVALID_TOKEN):
                write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
                return json_answer(401, INVALID_401)
            if seen.path == "/start":
                return 307, {"Location": "/landed"}, b""
            return 200, {"Content-Type": "text/plain"}, b"landed"

        server = serve(route=route)
        responses = exchange(
            way,
            CAVEHttpxAuth(),
            "POST",
            server.url("/start"),
            by_hand=following == "by-hand",
            content=b"body",
        )
        assert responses[-1].text == "landed"
        sent = [
            (seen.path, seen.carries(INVALID_TOKEN), seen.carries(VALID_TOKEN), seen.body)
            for seen in server.seen
        ]
        assert sent == [
            ("/start", True, False, b"body"),
            ("/start", False, True, b"body"),
            ("/landed", False, True, b"body"),
        ]


class TestRefusals:
    @pytest.mark.parametrize("way", WAYS)
    def test_an_invalid_token_is_explained_without_the_token(
        self, service: Service, secrets: Path, way: str
    ) -> None:
        write_secret(secrets / "cave-secret.json", {"token": INVALID_TOKEN})
        auth = CAVEHttpxAuth(raise_on_auth_error=True)
        with pytest.raises(AuthResponseError) as raised:
            send(way, auth, "GET", service.url("/api/data"))
        error = raised.value
        assert error.code == "invalid_token"
        assert isinstance(error.response, httpx.Response)
        assert error.response.status_code == 401
        message = str(error)
        assert "is invalid or expired (401 invalid_token)" in message
        assert "cave-secret.json" in message
        assert not holds(message, INVALID_TOKEN)
        assert not holds(pickle.dumps(error), INVALID_TOKEN)
        assert pickle.loads(pickle.dumps(error)).code == "invalid_token"

    @pytest.mark.parametrize("way", WAYS)
    def test_terms_of_service_not_accepted(self, service: Service, way: str) -> None:
        auth = CAVEHttpxAuth(token=TOS_TOKEN, raise_on_auth_error=True)
        with pytest.raises(AuthResponseError) as raised:
            send(way, auth, "GET", service.url("/api/minnie/view"))
        assert raised.value.code == "missing_tos"
        assert raised.value.tos_form_url
        assert "MICrONS Terms" in str(raised.value)
        assert not holds(raised.value, TOS_TOKEN)

    @pytest.mark.parametrize("way", WAYS)
    def test_without_raising_it_is_logged_once_and_the_response_returned(
        self, service: Service, way: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        auth = CAVEHttpxAuth(token=INVALID_TOKEN)
        with caplog.at_level(logging.WARNING, logger="cave_requests_auth"):
            codes = [send(way, auth, "GET", service.url("/api/data")).status_code for _ in "ab"]
        assert codes == [401, 401]
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert "invalid or expired" in warnings[0]
        assert not holds(warnings, INVALID_TOKEN)

    @pytest.mark.parametrize("way", WAYS)
    @pytest.mark.parametrize("following", FOLLOWING)
    def test_another_hosts_401_after_a_redirect_is_not_blamed_on_the_token(
        self, service: Service, way: str, following: str
    ) -> None:
        auth = CAVEHttpxAuth(token=VALID_TOKEN, raise_on_auth_error=True)
        url = service.redirect(service.url("/always401", "localhost"), 302)
        responses = exchange(way, auth, "GET", url, by_hand=following == "by-hand")
        assert responses[-1].status_code == 401


class TestTheObject:
    def test_repr_and_pickle_hold_no_token(self, service: Service) -> None:
        auth = CAVEHttpxAuth(token=VALID_TOKEN, hosts=["127.0.0.1"])
        assert send("Client", auth, "GET", service.url("/api/data")).status_code == 200
        assert repr(auth) == "CAVEHttpxAuth(token=<hidden>, hosts=['127.0.0.1'])"
        assert not holds(repr(auth), VALID_TOKEN)
        copy = pickle.loads(pickle.dumps(auth))
        assert send("AsyncClient", copy, "GET", service.url("/api/data")).status_code == 200
        assert bool(CAVEHttpxAuth(token=VALID_TOKEN))

    def test_a_token_from_a_file_is_not_pickled(self, service: Service, secrets: Path) -> None:
        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        auth = CAVEHttpxAuth()
        assert send("Client", auth, "GET", service.url("/api/data")).status_code == 200
        assert not holds(pickle.dumps(auth), VALID_TOKEN)
        assert not holds(repr(auth), VALID_TOKEN)

    def test_importing_the_package_does_not_import_httpx(self) -> None:
        code = "import sys, cave_requests_auth; print('httpx' in sys.modules)"
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert result.stdout.strip() == "False"

    def test_without_httpx_the_error_says_what_to_install(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import importlib

        monkeypatch.setitem(sys.modules, "httpx", None)  # as if not installed
        monkeypatch.delitem(sys.modules, "cave_requests_auth.httpx")
        monkeypatch.delitem(sys.modules, "cave_requests_auth.transport.httpx")
        with pytest.raises(ImportError, match=r"pip install cave-requests-auth\[httpx\]"):
            importlib.import_module("cave_requests_auth.httpx")
