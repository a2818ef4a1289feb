"""CAVEAuthMiddleware (aiohttp, and fsspec through it) against the real loopback service.

Each test drives aiohttp in ``asyncio.run``; redirects to ``localhost`` are
redirects to another origin (the same service under another name).
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import pickle
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

import cave_requests_auth
from _loopback import Server
from cave_requests_auth import (
    AuthResponseError,
    CAVEAuthError,
    InsecureTransportError,
    TokenFileError,
    TokenNotFoundError,
    core,
)
from cave_requests_auth.aiohttp import CAVEAuthMiddleware
from helpers import (
    BEARER,
    INVALID_TOKEN,
    NOTHING,
    TOKEN,
    TOKEN_AND_COOKIE,
    TOS_TOKEN,
    VALID_TOKEN,
    Service,
    carried,
    write_secret,
)

ROOT = Path(__file__).resolve().parent.parent
RECIPES = ROOT / "docs" / "recipes"
OTHER = "localhost"  # the service under another name: another origin


def fetch(
    middleware: CAVEAuthMiddleware, url: str, method: str = "GET", *, session: Any = None, **kw: Any
) -> tuple[int, bytes]:
    """One request through a session with ``middleware``: the status and the body."""

    async def run() -> tuple[int, bytes]:
        async with (
            aiohttp.ClientSession(middlewares=(middleware,), **(session or {})) as client,
            client.request(method, url, **kw) as response,
        ):
            return response.status, await response.read()

    return asyncio.run(run())


def hits(seen: list[dict[str, Any]]) -> list[tuple[str, tuple[bool, bool]]]:
    """Where each request the service saw went (its host name), and what it carried."""
    return [(hit["host"].rsplit(":", 1)[0], carried(hit)) for hit in seen]


def leaked(text: str, token: str = VALID_TOKEN) -> bool:
    """Whether any 8 consecutive characters of ``token`` appear in ``text``."""
    return any(token[i : i + 8] in text for i in range(len(token) - 7))


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A loopback socket nobody should connect to (a proxy that must not be used)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.setblocking(False)
        yield server


def connected(server: socket.socket) -> bool:
    try:
        server.accept()[0].close()
    except BlockingIOError:
        return False
    return True


class TestAttaching:
    def test_the_token_reaches_the_service(
        self, service: Service, seen: list[dict[str, Any]]
    ) -> None:
        status, body = fetch(CAVEAuthMiddleware(token=VALID_TOKEN), service.url("/api/data"))
        assert (status, json.loads(body)) == (200, {"body": "", "user": "Ada"})
        assert hits(seen) == [("127.0.0.1", TOKEN)]

    def test_the_cookie_joins_the_requests_own(
        self, service: Service, seen: list[dict[str, Any]]
    ) -> None:
        middleware = CAVEAuthMiddleware(token=VALID_TOKEN, cookie=True)
        fetch(middleware, service.url("/echo"), cookies={"mine": "1", "middle_auth_token": "x"})
        assert hits(seen) == [("127.0.0.1", TOKEN_AND_COOKIE)]
        assert seen[0]["cookies"] == {"mine": "1", "middle_auth_token": VALID_TOKEN}

    @pytest.mark.parametrize(("host", "attached"), [("127.0.0.1", TOKEN), (OTHER, NOTHING)])
    def test_hosts_leaves_other_hosts_alone(
        self, service: Service, seen: list[dict[str, Any]], host: str, attached: Any
    ) -> None:
        middleware = CAVEAuthMiddleware(token=VALID_TOKEN, hosts=["127.0.0.1"])
        assert fetch(middleware, service.url("/echo", host))[0] == 200
        assert hits(seen) == [(host, attached)]

    def test_the_token_file_is_read_off_the_event_loop_once(
        self, service: Service, secrets: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        threads: list[bool] = []
        lookup = core.lookup

        def watched(*args: Any) -> Any:
            threads.append(threading.current_thread() is threading.main_thread())
            return lookup(*args)

        monkeypatch.setattr(core, "lookup", watched)
        middleware = CAVEAuthMiddleware()

        async def run() -> list[int]:
            async with aiohttp.ClientSession(middlewares=(middleware,)) as client:
                statuses = []
                for _ in range(3):
                    async with client.get(service.url("/api/data")) as response:
                        statuses.append(response.status)
                return statuses

        assert asyncio.run(run()) == [200, 200, 200]
        assert threads == [False]  # one lookup, in a worker thread

    def test_no_token_is_not_sent(self, service: Service, seen: list[dict[str, Any]]) -> None:
        with pytest.raises(TokenNotFoundError):
            fetch(CAVEAuthMiddleware(), service.url("/api/data"))
        assert seen == []

    def test_a_corrupt_file_is_our_error_not_aiohttps(
        self, service: Service, secrets: Path, seen: list[dict[str, Any]]
    ) -> None:
        # aiohttp turns any OSError from a middleware into ClientOSError.
        write_secret(secrets / "cave-secret.json", "{not json")
        with pytest.raises(TokenFileError) as raised:
            fetch(CAVEAuthMiddleware(), service.url("/api/data"))
        assert isinstance(raised.value, aiohttp.ClientError)
        assert raised.value.path == str(secrets / "cave-secret.json")
        assert seen == []

    def test_the_middleware_pickles(self, service: Service, secrets: Path) -> None:
        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        middleware = CAVEAuthMiddleware()
        fetch(middleware, service.url("/api/data"))
        data = pickle.dumps(middleware)
        assert VALID_TOKEN.encode() not in data
        assert fetch(pickle.loads(data), service.url("/api/data"))[0] == 200
        assert "<hidden>" in repr(CAVEAuthMiddleware(token=VALID_TOKEN))


class TestPlainHttp:
    def test_a_remote_host_is_refused_before_connecting(
        self, service: Service, seen: list[dict[str, Any]]
    ) -> None:
        # "127.0.0.1." is resolved through DNS: not loopback as far as the rules go.
        with pytest.raises(InsecureTransportError):
            fetch(CAVEAuthMiddleware(token=VALID_TOKEN), service.url("/echo", "127.0.0.1."))
        assert seen == []

    def test_loopback_through_a_proxy_is_refused_before_connecting(
        self, service: Service, listener: socket.socket
    ) -> None:
        proxy = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(InsecureTransportError, match="proxy"):
            fetch(CAVEAuthMiddleware(token=VALID_TOKEN), service.url("/echo"), proxy=proxy)
        assert not connected(listener)

    @pytest.mark.parametrize("trust_env", [True, False])
    def test_the_environments_proxy_counts_where_aiohttp_uses_it(
        self,
        service: Service,
        seen: list[dict[str, Any]],
        listener: socket.socket,
        monkeypatch: pytest.MonkeyPatch,
        trust_env: bool,
    ) -> None:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{listener.getsockname()[1]}")
        middleware = CAVEAuthMiddleware(token=VALID_TOKEN)
        url = service.url("/echo")
        if trust_env:
            with pytest.raises(InsecureTransportError):
                fetch(middleware, url, session={"trust_env": True})
            assert seen == []
        else:  # aiohttp ignores the environment: a direct connection
            assert fetch(middleware, url)[0] == 200
            assert hits(seen) == [("127.0.0.1", TOKEN)]
        assert not connected(listener)


class TestRedirects:
    @pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
    def test_a_hop_on_the_same_origin_keeps_the_token(
        self, service: Service, seen: list[dict[str, Any]], status: int
    ) -> None:
        url = service.redirect(service.url("/api/data"), status)
        answer, body = fetch(CAVEAuthMiddleware(token=VALID_TOKEN), url, "POST", data=b"body")
        sent = "" if status in (301, 302, 303) else "body"  # aiohttp: POST becomes GET
        assert (answer, json.loads(body)) == (200, {"body": sent, "user": "Ada"})
        assert hits(seen) == [("127.0.0.1", TOKEN), ("127.0.0.1", TOKEN)]

    @pytest.mark.parametrize("cookie", [False, True])
    def test_a_hop_to_another_origin_gets_nothing(
        self, service: Service, seen: list[dict[str, Any]], cookie: bool
    ) -> None:
        middleware = CAVEAuthMiddleware(token=VALID_TOKEN, cookie=cookie)
        fetch(middleware, service.redirect(service.url("/echo", OTHER)))
        first = TOKEN_AND_COOKIE if cookie else TOKEN
        assert hits(seen) == [("127.0.0.1", first), (OTHER, NOTHING)]

    def test_coming_back_from_another_origin_gets_nothing(
        self, service: Service, seen: list[dict[str, Any]]
    ) -> None:
        back = service.redirect(service.url("/echo"), host=OTHER)
        fetch(CAVEAuthMiddleware(token=VALID_TOKEN), service.redirect(back))
        assert hits(seen) == [("127.0.0.1", TOKEN), (OTHER, NOTHING), ("127.0.0.1", NOTHING)]

    def test_a_chain_that_began_outside_hosts_gets_nothing(
        self, service: Service, seen: list[dict[str, Any]]
    ) -> None:
        middleware = CAVEAuthMiddleware(token=VALID_TOKEN, hosts=["127.0.0.1"])
        fetch(middleware, service.redirect(service.url("/echo"), host=OTHER))
        assert hits(seen) == [(OTHER, NOTHING), ("127.0.0.1", NOTHING)]

    def test_a_callers_own_authorization_is_left_to_aiohttp(
        self, service: Service, seen: list[dict[str, Any]]
    ) -> None:
        # hosts= excludes both: aiohttp itself drops the header on a change of origin.
        middleware = CAVEAuthMiddleware(token=VALID_TOKEN, hosts=["example.org"])
        url = service.redirect(service.url("/echo", OTHER))
        fetch(middleware, url, headers={"Authorization": "Bearer mine"})
        assert [hit["headers"].get("Authorization") for hit in seen] == ["Bearer mine", None]

    def test_two_middlewares_each_keep_their_chain(
        self, service: Service, seen: list[dict[str, Any]]
    ) -> None:
        outer = CAVEAuthMiddleware(token=VALID_TOKEN, hosts=["example.org"])
        inner = CAVEAuthMiddleware(token=VALID_TOKEN, hosts=["127.0.0.1", OTHER])
        url = service.redirect(service.url("/echo", OTHER))
        fetch(outer, url, middlewares=(outer, inner))
        assert hits(seen) == [("127.0.0.1", TOKEN), (OTHER, NOTHING)]

    def test_concurrent_chains_keep_apart(
        self, service: Service, seen: list[dict[str, Any]]
    ) -> None:
        middleware = CAVEAuthMiddleware(token=VALID_TOKEN, hosts=["127.0.0.1"])
        away = service.redirect(service.url("/echo?away", OTHER))
        home = service.redirect(service.url("/echo?home"))

        async def run() -> None:
            async with aiohttp.ClientSession(middlewares=(middleware,)) as client:

                async def one(url: str) -> None:
                    async with client.get(url) as response:
                        await response.read()

                await asyncio.gather(*(one(away if n % 2 else home) for n in range(20)))

        asyncio.run(run())
        assert sorted(set(hits(seen))) == [("127.0.0.1", TOKEN), (OTHER, NOTHING)]
        assert len(seen) == 40

    def test_after_a_redirect_not_followed_the_next_request_is_taken_as_its_hop(
        self, service: Service, seen: list[dict[str, Any]]
    ) -> None:
        # The documented price of recognising hops by order: never more token, at most less.
        middleware = CAVEAuthMiddleware(token=VALID_TOKEN)
        elsewhere = service.url("/echo", OTHER)

        async def run() -> None:
            async with aiohttp.ClientSession(middlewares=(middleware,)) as client:
                for url, follow in [(service.redirect(elsewhere), False), (elsewhere, True)] * 2:
                    async with client.get(url, allow_redirects=follow) as response:
                        await response.read()

        asyncio.run(run())
        assert hits(seen) == [("127.0.0.1", TOKEN), (OTHER, NOTHING)] * 2
        seen.clear()
        fetch(middleware, elsewhere)  # a new task: its own chain
        assert hits(seen) == [(OTHER, TOKEN)]

    def test_after_a_hop_failed_only_that_hop_sent_again_is_taken_as_its_hop(
        self, service: Service, seen: list[dict[str, Any]], recorder: Server
    ) -> None:
        # aiohttp sends a hop once more when its connection drops (test_upstream.py): the
        # middleware notes the failed hop, so a request to its URL next is still that hop.
        middleware = CAVEAuthMiddleware(token=VALID_TOKEN)
        hop = recorder.url("/echo", OTHER)
        recorder.drop = 2  # the hop, and aiohttp's one re-send of it

        async def run() -> None:
            async with aiohttp.ClientSession(middlewares=(middleware,)) as client:
                with pytest.raises(aiohttp.ServerDisconnectedError):
                    await client.get(service.redirect(hop, 307))
                for url in (hop, service.url("/echo"), hop):  # the hop again, then new ones
                    async with client.get(url) as response:
                        await response.read()

        asyncio.run(run())
        assert hits(seen) == [("127.0.0.1", TOKEN), ("127.0.0.1", TOKEN)]
        assert [hit.authorization for hit in recorder.seen] == [None, None, None, BEARER]


class TestServerAnswers:
    @pytest.mark.parametrize("data", [b"payload", "file"])
    def test_a_401_is_retried_once_with_the_reloaded_token(
        self, service: Service, secrets: Path, seen: list[dict[str, Any]], data: Any
    ) -> None:
        path = write_secret(secrets / "cave-secret.json", {"token": INVALID_TOKEN})
        middleware = CAVEAuthMiddleware()
        assert fetch(middleware, service.url("/api/data"))[0] == 401  # same file: no retry
        assert len(seen) == 1
        write_secret(path, {"token": VALID_TOKEN})
        seen.clear()
        if data == "file":  # rewound to where it started, not to 0
            data = io.BytesIO(b"skippayload")
            data.seek(4)
        status, body = fetch(middleware, service.url("/api/data"), "POST", data=data)
        assert (status, json.loads(body)) == (200, {"body": "payload", "user": "Ada"})
        authorizations = [hit["headers"]["Authorization"] for hit in seen]
        assert authorizations == [f"Bearer {INVALID_TOKEN}", BEARER]

    def test_a_401_from_a_hop_is_not_retried(
        self, service: Service, secrets: Path, seen: list[dict[str, Any]]
    ) -> None:
        path = write_secret(secrets / "cave-secret.json", {"token": INVALID_TOKEN})
        middleware = CAVEAuthMiddleware()
        fetch(middleware, service.url("/echo"))  # decides the origin with the old token
        write_secret(path, {"token": VALID_TOKEN})
        seen.clear()
        assert fetch(middleware, service.url("/redirect/307?to=/api/data"))[0] == 401
        assert [(hit["path"], hit["headers"]["Authorization"]) for hit in seen] == [
            ("/redirect/307", f"Bearer {INVALID_TOKEN}"),
            ("/api/data", f"Bearer {INVALID_TOKEN}"),
        ]

    def test_a_one_shot_body_is_not_sent_again(
        self, service: Service, secrets: Path, seen: list[dict[str, Any]]
    ) -> None:
        path = write_secret(secrets / "cave-secret.json", {"token": INVALID_TOKEN})
        middleware = CAVEAuthMiddleware()
        fetch(middleware, service.url("/echo"))
        write_secret(path, {"token": VALID_TOKEN})
        seen.clear()

        async def chunks() -> Any:
            yield b"pay"
            yield b"load"

        assert fetch(middleware, service.url("/api/data"), "POST", data=chunks())[0] == 401
        assert len(seen) == 1

    def test_an_explicit_token_is_not_retried(
        self, service: Service, seen: list[dict[str, Any]]
    ) -> None:
        assert fetch(CAVEAuthMiddleware(token=INVALID_TOKEN), service.url("/api/data"))[0] == 401
        assert len(seen) == 1

    def test_a_refusal_is_explained_without_the_token(self, service: Service) -> None:
        middleware = CAVEAuthMiddleware(token=INVALID_TOKEN, raise_on_auth_error=True)
        with pytest.raises(AuthResponseError) as raised:
            fetch(middleware, service.url("/api/data?q=1"))
        error = raised.value
        message = str(error)
        assert "GET http://127.0.0.1" in message
        assert "invalid or expired" in message
        assert "create_token" in message
        assert error.code == "invalid_token"
        assert isinstance(error, aiohttp.ClientError)
        assert isinstance(error.response, aiohttp.ClientResponse)
        assert error.response.status == 401
        assert not leaked(message, INVALID_TOKEN)
        copy = pickle.loads(pickle.dumps(error))
        assert (str(copy), copy.code, copy.response) == (message, error.code, None)
        assert not leaked(repr(pickle.dumps(error)), INVALID_TOKEN)

    def test_terms_of_service_give_their_url(self, service: Service) -> None:
        middleware = CAVEAuthMiddleware(token=TOS_TOKEN, raise_on_auth_error=True)
        with pytest.raises(AuthResponseError) as raised:
            fetch(middleware, service.url("/api/minnie/view"))
        assert raised.value.code == "missing_tos"
        assert raised.value.tos_form_url
        assert not leaked(str(raised.value), TOS_TOKEN)

    def test_without_raising_a_refusal_is_logged_once(
        self, service: Service, caplog: pytest.LogCaptureFixture
    ) -> None:
        middleware = CAVEAuthMiddleware(token=VALID_TOKEN)
        with caplog.at_level(logging.DEBUG, logger="cave_requests_auth"):
            for _ in range(2):
                assert fetch(middleware, service.url("/api/minnie/edit"))[0] == 403
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert "missing_permission" in warnings[0].getMessage()
        assert not any(leaked(record.getMessage()) for record in caplog.records)

    def test_a_missing_token_is_answered_401_and_explained(self, service: Service) -> None:
        middleware = CAVEAuthMiddleware(required=False, raise_on_auth_error=True)
        with pytest.raises(AuthResponseError) as raised:
            fetch(middleware, service.url("/api/data"), allow_redirects=False)
        assert raised.value.code == "no_token"
        assert "no CAVE token was found (looked in $CAVE_TOKEN" in str(raised.value)
        assert "cave-auth login" in str(raised.value)

    def test_a_refusal_from_another_origin_is_not_blamed_on_the_token(
        self, service: Service, seen: list[dict[str, Any]]
    ) -> None:
        middleware = CAVEAuthMiddleware(token=VALID_TOKEN, raise_on_auth_error=True)
        assert fetch(middleware, service.redirect(service.url("/always401", OTHER)))[0] == 401
        assert hits(seen) == [("127.0.0.1", TOKEN), (OTHER, NOTHING)]


class TestFsspec:
    @staticmethod
    def cat(middleware: CAVEAuthMiddleware, url: str) -> bytes:
        import fsspec
        from fsspec.asyn import sync

        fs = fsspec.filesystem(
            "http", client_kwargs={"middlewares": (middleware,)}, skip_instance_cache=True
        )
        try:
            return bytes(fs.cat(url))
        finally:
            sync(fs.loop, sync(fs.loop, fs.set_session).close)

    def test_a_file_read_carries_the_token(
        self, service: Service, seen: list[dict[str, Any]]
    ) -> None:
        middleware = CAVEAuthMiddleware(token=VALID_TOKEN, hosts=["127.0.0.1"])
        assert json.loads(self.cat(middleware, service.url("/api/data")))["user"] == "Ada"
        assert hits(seen) == [("127.0.0.1", TOKEN)]

    def test_another_host_is_read_without_it(
        self, service: Service, seen: list[dict[str, Any]]
    ) -> None:
        middleware = CAVEAuthMiddleware(token=VALID_TOKEN, hosts=["127.0.0.1"])
        assert b"Authorization" not in self.cat(middleware, service.url("/echo", OTHER))
        assert hits(seen) == [(OTHER, NOTHING)]

    def test_a_redirect_elsewhere_is_read_without_it(
        self, service: Service, seen: list[dict[str, Any]]
    ) -> None:
        middleware = CAVEAuthMiddleware(token=VALID_TOKEN)
        assert b"Authorization" not in self.cat(
            middleware, service.redirect(service.url("/echo", OTHER))
        )
        # fsspec may look before it reads (HEAD, then GET): each a chain of two hops.
        assert set(hits(seen)) == {("127.0.0.1", TOKEN), (OTHER, NOTHING)}
        assert [hit["path"] for hit in seen] == ["/redirect/302", "/echo"] * (len(seen) // 2)


class TestPackage:
    def run(self, code: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
        )

    def test_importing_the_package_does_not_import_aiohttp(self) -> None:
        result = self.run("import sys, cave_requests_auth; print('aiohttp' in sys.modules)")
        assert result.stdout.strip() == "False", result.stderr

    def test_without_aiohttp_the_import_says_what_to_install(self) -> None:
        code = "import sys; sys.modules['aiohttp'] = None; import cave_requests_auth.aiohttp"
        result = self.run(code)
        assert result.returncode != 0
        assert "ImportError: " in result.stderr
        assert "pip install 'cave-requests-auth[aiohttp]'" in result.stderr

    def test_errors_are_the_packages(self) -> None:
        from cave_requests_auth import aiohttp as binding

        assert issubclass(binding.AuthResponseError, cave_requests_auth.AuthResponseError)
        assert issubclass(binding.TokenFileError, CAVEAuthError)
        assert binding.CAVEAuthMiddleware.__module__ == "cave_requests_auth.transport.aiohttp"


class TestRecipes:
    def run(self, script: str, url: str, other: str = "") -> str:
        env = {**os.environ, "CAVE_RECIPE_URL": url, "PYTHONPATH": str(ROOT)}
        env["CAVE_RECIPE_OTHER_URL"] = other
        result = subprocess.run(
            [sys.executable, str(RECIPES / script)],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout

    def test_the_session_recipe_sends_the_saved_token(
        self, service: Service, secrets: Path, seen: list[dict[str, Any]]
    ) -> None:
        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        assert "Ada" in self.run("aiohttp_session.py", service.url("/api/data"))
        assert hits(seen) == [("127.0.0.1", TOKEN)]

    def test_the_session_recipe_explains_a_refusal(self, service: Service, secrets: Path) -> None:
        write_secret(secrets / "cave-secret.json", {"token": INVALID_TOKEN})
        out = self.run("aiohttp_session.py", service.url("/api/data"))
        assert "invalid or expired" in out
        assert not leaked(out, INVALID_TOKEN)

    def test_the_fsspec_recipe_sends_the_token_to_its_host_only(
        self, service: Service, secrets: Path, seen: list[dict[str, Any]]
    ) -> None:
        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        out = self.run("fsspec_http.py", service.url("/api/data"), service.url("/echo", OTHER))
        assert "Ada" in out
        assert "Authorization" not in out
        assert set(hits(seen)) == {("127.0.0.1", TOKEN), (OTHER, NOTHING)}
