"""What this package assumes of requests, urllib3, httpx and aiohttp: one test per assumption.

An upgrade of any that breaks one fails here, under the assumption's name,
instead of deep inside a redirect test. Each docstring names the code that
relies on it. httpx and aiohttp are optional: their classes skip without them.
"""

from __future__ import annotations

import asyncio
import contextvars
import io
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import Any, Callable

import pytest
import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies, rewind_body, select_proxy

from _loopback import Server
from helpers import TIMEOUT, Service, has_token

try:
    import httpx
except ImportError:  # pragma: no cover - depends on the environment
    httpx = None  # type: ignore[assignment]
try:
    import aiohttp

    if not hasattr(aiohttp, "ClientMiddlewareType"):  # before 3.12: no client middlewares
        aiohttp = None  # type: ignore[assignment]
except ImportError:  # pragma: no cover - depends on the environment
    aiohttp = None  # type: ignore[assignment]


class TestRequests:
    def test_prepared_request_copy_shares_its_hooks(self) -> None:
        """transport.requests: a chain's hops find its Chain in the hooks they share."""
        request = requests.Request("GET", "https://a.example/").prepare()
        copy = request.copy()
        assert copy.hooks is request.hooks

    def test_prepared_request_copy_drops_attributes_it_does_not_know(self) -> None:
        """transport.requests: hops requests makes never carry SENT_ATTRIBUTE."""
        request = requests.Request("GET", "https://a.example/").prepare()
        request._cave_sent = object()  # type: ignore[attr-defined]
        assert not hasattr(request.copy(), "_cave_sent")

    @pytest.mark.parametrize("how", ["session.get", "hooks=", "session.send(prepared)"])
    def test_every_redirect_hop_goes_through_session_rebuild_auth(
        self, service: Service, how: str
    ) -> None:
        """CAVEAuthAdapter.mount: its wrap of session.rebuild_auth sees every hop requests makes,
        whatever hooks the request has (session.hooks are not merged into all of them)."""
        session, seen = requests.Session(), []
        rebuild = session.rebuild_auth
        session.rebuild_auth = lambda hop, response: (seen.append(hop.url), rebuild(hop, response))
        url = service.redirect(service.url("/echo", "localhost"))
        if how == "session.get":
            session.get(url, timeout=TIMEOUT)
        elif how == "hooks=":
            session.get(url, hooks={"response": [lambda r, **kwargs: r]}, timeout=TIMEOUT)
        else:
            session.send(requests.Request("GET", url).prepare(), timeout=TIMEOUT)
        assert seen == [service.url("/echo", "localhost")]

    def test_session_hooks_are_merged_into_each_prepared_request(self) -> None:
        """CAVEAuthAdapter.mount: the watcher in session.hooks sees every chain."""
        session = requests.Session()

        def marker(response: Any, **kwargs: Any) -> Any:
            return response

        session.hooks["response"].append(marker)
        prepared = session.prepare_request(requests.Request("GET", "https://a.example/"))
        assert marker in prepared.hooks["response"]
        assert prepared.hooks["response"] is not session.hooks["response"]

    def test_response_hooks_run_on_every_hop(self, service: Service) -> None:
        """transport.requests: the chain hook notes each hop's origin, whoever sent it."""
        urls: list[str] = []
        hop = service.redirect(service.url("/echo"), 302, host="localhost")
        requests.get(
            service.redirect(hop, 302),
            hooks={"response": lambda r, **kw: urls.append(r.url)},
            timeout=10,
        )
        assert len(urls) == 3

    def test_auth_is_applied_before_the_calls_proxies_are_merged(self) -> None:
        """CAVETokenAuth sees the environment's proxies, never ``proxies=``: the README says so."""
        seen: list[Any] = []

        class Spy(requests.auth.AuthBase):
            def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
                seen.append(request)
                return request

        session = requests.Session()
        prepared = session.prepare_request(requests.Request("GET", "http://a.example/", auth=Spy()))
        assert seen == [prepared]  # prepared, and so authed, with no proxies in sight

    def test_the_adapter_is_given_the_proxies_of_the_call(self, service: Service) -> None:
        """transport.requests: the proxy decision uses the proxies send() receives."""
        got: dict[str, Any] = {}

        class Spy(HTTPAdapter):
            def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
                got.update(kwargs)
                return super().send(request, *args, **kwargs)

        session = requests.Session()
        session.trust_env = False
        session.mount("http://", Spy())
        with pytest.raises(requests.ConnectionError):
            session.get(service.url("/echo"), proxies={"http": "http://127.0.0.1:9"}, timeout=5)
        assert got["proxies"]["http"] == "http://127.0.0.1:9"

    def test_environment_proxies_honour_no_proxy(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """transport.requests.environment_proxy: as requests applies them."""
        monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
        url = "http://localhost:8000/"
        assert select_proxy(url, get_environ_proxies(url)) == "http://proxy.invalid:3128"
        monkeypatch.setenv("NO_PROXY", "localhost")
        assert select_proxy(url, get_environ_proxies(url)) is None

    def test_same_host_redirects_keep_authorization_and_other_hosts_lose_it(
        self, service: Service
    ) -> None:
        """auth= and session.auth rely on requests' own rebuild_auth for hops."""
        session = requests.Session()
        same = session.get(
            service.redirect(service.url("/echo")), headers={"Authorization": "Bearer x"}
        )
        other = session.get(
            service.redirect(service.url("/echo", "localhost")),
            headers={"Authorization": "Bearer x"},
        )
        assert same.json()["headers"].get("Authorization") == "Bearer x"
        assert "Authorization" not in other.json()["headers"]

    def test_rewind_body_seeks_a_file_back_to_where_it_began(self, tmp_path: Any) -> None:
        """The 401 retry re-sends a seekable body with requests' own rewind_body."""
        path = tmp_path / "body"
        path.write_bytes(b"0123456789")
        with path.open("rb") as body:
            body.seek(3)
            request = requests.Request("POST", "https://a.example/", data=body).prepare()
            body.read()
            rewind_body(request)
            assert body.tell() == 3

    def test_adapter_pool_settings_are_public_on_its_pool_manager(self) -> None:
        """CAVEAuthAdapter.mount keeps pool_maxsize and pool_block from there."""
        adapter = HTTPAdapter(pool_maxsize=7, pool_block=True)
        assert adapter.poolmanager.connection_pool_kw["maxsize"] == 7
        assert adapter.poolmanager.connection_pool_kw["block"] is True


class TestUrllib3:
    def test_pool_manager_follows_redirects_by_calling_its_own_urlopen(
        self, service: Service
    ) -> None:
        """transport.urllib3: each hop is an inner urlopen call, given the Retry whose
        history notes the redirects before it (absolute URLs): the chain is rebuilt from it."""
        calls: list[tuple[str, list[tuple[str, str | None]]]] = []

        class Spy(urllib3.PoolManager):
            def urlopen(self, method: str, url: str, redirect: bool = True, **kw: Any) -> Any:
                noted = getattr(kw.get("retries"), "history", ())
                calls.append((url, [(h.url, h.redirect_location) for h in noted]))
                return super().urlopen(method, url, redirect, **kw)

        first, hop = (
            service.redirect(service.url("/echo", "localhost")),
            service.url("/echo", "localhost"),
        )
        response = Spy().request("GET", first)
        assert response.status == 200
        assert calls == [(first, []), (hop, [(first, hop)])]
        assert [(h.url, h.redirect_location) for h in response.retries.history] == [(first, hop)]

    def test_proxy_manager_names_its_forwarding_mode(self) -> None:
        """CAVEProxyManager: https is forwarded (seen by the proxy) only when asked."""
        manager = urllib3.ProxyManager("http://127.0.0.1:9")
        assert manager.proxy_config is not None
        assert manager.proxy_config.use_forwarding_for_https is False

    def test_parse_url_idna_encodes_and_keeps_a_trailing_dot(self) -> None:
        """urls.parse_origin decides as urllib3 connects: bücher → xn--, 'localhost.' kept."""
        assert urllib3.util.parse_url("https://Bücher.example/").host == "xn--bcher-kva.example"
        assert urllib3.util.parse_url("http://localhost./").host == "localhost."


@pytest.mark.skipif(httpx is None, reason="httpx is not installed")
class TestHttpx:
    """What transport.httpx assumes of httpx."""

    @staticmethod
    def mock(
        answer: Callable[[httpx.Request], httpx.Response],
    ) -> tuple[httpx.MockTransport, list[httpx.Request]]:
        """A transport that answers with ``answer`` and keeps every request it was sent."""
        sent: list[httpx.Request] = []

        def handle(request: httpx.Request) -> httpx.Response:
            sent.append(request)
            return answer(request)

        return httpx.MockTransport(handle), sent

    @staticmethod
    def redirects(request: httpx.Request) -> httpx.Response:
        """``?to=URL`` answers 302 to URL; anything else 200."""
        to = request.url.params.get("to")
        return httpx.Response(302, headers={"Location": to}) if to else httpx.Response(200)

    def test_upstream_httpx_proxies_loopback_despite_a_cidr_no_proxy(
        self,
        recorder: Server,
        service: Service,
        seen: list[dict[str, Any]],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """httpx_environment_proxy reads NO_PROXY as httpx does too: requests would bypass here."""
        monkeypatch.setenv("HTTP_PROXY", recorder.url(""))
        monkeypatch.setenv("NO_PROXY", "127.0.0.0/8")
        with httpx.Client(timeout=TIMEOUT) as client:
            assert client.get(service.url("/echo")).status_code == 200
        assert [hit.target for hit in recorder.seen] == [service.url("/echo")]  # the proxy's
        assert seen == []

    def test_no_proxy_naming_the_host_bypasses_the_environments_proxy(
        self,
        recorder: Server,
        service: Service,
        seen: list[dict[str, Any]],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """httpx_environment_proxy: where NO_PROXY names the host, the request goes direct."""
        monkeypatch.setenv("HTTP_PROXY", recorder.url(""))
        monkeypatch.setenv("NO_PROXY", "example.org, 127.0.0.1")
        with httpx.Client(timeout=TIMEOUT) as client:
            assert client.get(service.url("/echo")).status_code == 200
        assert recorder.seen == []
        assert len(seen) == 1

    def test_the_auth_flow_runs_once_per_send_and_not_for_hops_it_follows(self) -> None:
        """CAVEHttpxAuth: with follow_redirects=True, httpx sends the hops without the flow."""
        flows: list[str] = []

        class Spy(httpx.Auth):
            def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
                flows.append(str(request.url))
                yield request

        transport, sent = self.mock(self.redirects)
        with httpx.Client(transport=transport, auth=Spy(), follow_redirects=True) as client:
            response = client.get("https://a.example/?to=https://b.example/")
        assert flows == ["https://a.example/?to=https://b.example/"]
        assert [str(request.url) for request in sent] == [flows[0], "https://b.example/"]
        assert [hop.status_code for hop in response.history] == [302]

    def test_the_flow_is_given_the_last_response_with_the_hops_in_its_history(self) -> None:
        """CAVEHttpxAuth._finish: the chain notes the hops httpx followed from the history."""
        given: list[list[str]] = []

        class Spy(httpx.Auth):
            def auth_flow(self, request: httpx.Request) -> Any:
                response = yield request
                given.append([str(hop.request.url) for hop in [*response.history, response]])

        transport, _ = self.mock(self.redirects)
        with httpx.Client(transport=transport, auth=Spy(), follow_redirects=True) as client:
            client.get("https://a.example/?to=https://b.example/")
        assert given == [["https://a.example/?to=https://b.example/", "https://b.example/"]]

    def test_next_request_shallow_copies_the_requests_extensions(self, service: Service) -> None:
        """transport.httpx: a hop sent by hand carries the very _Link of the request before."""
        link = object()
        with httpx.Client(timeout=TIMEOUT) as client:
            request = client.build_request(
                "GET", service.redirect(service.url("/echo")), extensions={"cave.test": link}
            )
            response = client.send(request)  # a transport ignores a key it does not know
            hop = response.next_request
        assert response.status_code == 302
        assert hop is not None
        assert hop.extensions["cave.test"] is link
        assert hop.extensions is not request.extensions

    def test_authorization_is_dropped_on_another_origin_but_for_an_upgrade_to_https(
        self,
    ) -> None:
        """transport.httpx: what a hop httpx follows keeps of the Bearer header."""
        cases = {
            "https://a.example/same": True,
            "https://b.example/": False,
            "https://a.example:8443/": False,
        }
        for location, kept in cases.items():
            transport, sent = self.mock(self.redirects)
            with httpx.Client(transport=transport, follow_redirects=True) as client:
                client.get(
                    "https://a.example/", params={"to": location}, headers={"Authorization": "x"}
                )
            assert ("Authorization" in sent[-1].headers) is kept, location
        upgrades = {"https://a.example/": True, "https://a.example:8443/": False}
        for location, kept in upgrades.items():
            transport, sent = self.mock(self.redirects)
            with httpx.Client(transport=transport, follow_redirects=True) as client:
                client.get(
                    "http://a.example/", params={"to": location}, headers={"Authorization": "x"}
                )
            assert ("Authorization" in sent[-1].headers) is kept, location

    def test_a_hop_is_built_from_the_hop_before_it(self) -> None:
        """transport.httpx: back on the first origin after another, a hop has no Bearer header."""
        back = "https://b.example/?" + str(httpx.QueryParams({"to": "https://a.example/end"}))
        transport, sent = self.mock(self.redirects)
        with httpx.Client(transport=transport, follow_redirects=True) as client:
            client.get("https://a.example/", params={"to": back}, headers={"Authorization": "x"})
        assert [request.url.host for request in sent] == ["a.example", "b.example", "a.example"]
        assert ["Authorization" in request.headers for request in sent] == [True, False, False]

    def test_every_hop_it_follows_takes_its_cookie_header_from_the_jar(self) -> None:
        """transport.httpx: the cookie the flow merged into the first request never follows."""
        transport, sent = self.mock(self.redirects)
        with httpx.Client(transport=transport, follow_redirects=True) as client:
            client.cookies.set("jar", "1")
            client.get(
                "https://a.example/",
                params={"to": "https://a.example/end"},
                headers={"Cookie": "middle_auth_token=x"},
            )
        assert [request.headers.get("Cookie") for request in sent] == [
            "middle_auth_token=x",
            "jar=1",
        ]

    def test_a_request_yielded_again_is_sent_again_and_the_401_kept_in_history(self) -> None:
        """CAVEHttpxAuth.auth_flow: the 401 retry, and what raise_for_auth reads after it."""
        answers = iter([httpx.Response(401, content=b"refused"), httpx.Response(200)])
        seen_401: list[bytes] = []

        class Again(httpx.Auth):
            def auth_flow(self, request: httpx.Request) -> Any:
                response = yield request
                seen_401.append(response.read())
                request.headers["Authorization"] = "second"
                yield request

        sent: list[str | None] = []

        def answer(request: httpx.Request) -> httpx.Response:
            sent.append(request.headers.get("Authorization"))
            return next(answers)

        transport, _ = self.mock(answer)
        with httpx.Client(transport=transport, auth=Again()) as client:
            response = client.get("https://a.example/")
        assert response.status_code == 200
        assert [hop.status_code for hop in response.history] == [401]
        assert response.history[0].is_closed
        assert seen_401 == [b"refused"]
        assert sent == [None, "second"]

    def test_request_content_is_readable_only_for_a_body_held_in_memory(self) -> None:
        """transport.httpx._rewindable: which bodies the 401 retry may send again."""
        url = "https://a.example/"
        held = [
            httpx.Request("POST", url),
            httpx.Request("POST", url, content=b"bytes"),
            httpx.Request("POST", url, content="text"),
            httpx.Request("POST", url, json={"a": 1}),
            httpx.Request("POST", url, data={"a": "1"}),
        ]
        for request in held:
            assert isinstance(request.content, bytes)
        streamed = [
            httpx.Request("POST", url, content=iter([b"one"])),
            httpx.Request("POST", url, content=io.BytesIO(b"file")),
        ]
        for request in streamed:
            with pytest.raises(httpx.RequestNotRead):
                request.content


@pytest.mark.skipif(aiohttp is None, reason="aiohttp 3.12 or newer is not installed")
class TestAiohttp:
    """What transport.aiohttp assumes of aiohttp (3.12 or newer)."""

    @staticmethod
    def run(
        middleware: Callable[..., Awaitable[Any]],
        send: Callable[[aiohttp.ClientSession], Awaitable[Any]],
        **session: Any,
    ) -> Any:
        async def main() -> Any:
            async with aiohttp.ClientSession(
                middlewares=(middleware,), timeout=aiohttp.ClientTimeout(total=TIMEOUT), **session
            ) as client:
                return await send(client)

        return asyncio.run(main())

    @staticmethod
    def get(url: str, **kwargs: Any) -> Callable[[aiohttp.ClientSession], Awaitable[Any]]:
        """Send a GET of ``url``; its status and body."""

        async def send(client: aiohttp.ClientSession) -> Any:
            async with client.get(url, **kwargs) as response:
                return response.status, await response.read()

        return send

    def test_a_middleware_sees_each_hop_as_a_new_request(self, service: Service) -> None:
        """CAVEAuthMiddleware: nothing on a hop's request links it to the one before."""
        made: list[Any] = []

        async def middleware(request: Any, handler: Any) -> Any:
            made.append(request)
            return await handler(request)

        url = service.redirect(service.url("/echo", "localhost"))
        assert self.run(middleware, self.get(url))[0] == 200
        assert [request.url.host for request in made] == ["127.0.0.1", "localhost"]
        assert made[0] is not made[1]
        assert made[0].headers is not made[1].headers

    def test_history_read_in_a_middleware_stays_empty(self, service: Service) -> None:
        """CAVEAuthMiddleware: why hops are linked by order, not by response.history."""
        seen_history: list[int] = []

        async def middleware(request: Any, handler: Any) -> Any:
            response = await handler(request)
            seen_history.append(len(response.history))
            return response

        async def send(client: aiohttp.ClientSession) -> int:
            async with client.get(service.redirect(service.url("/echo", "localhost"))) as answer:
                return len(answer.history)

        assert self.run(middleware, send) == 0  # filled in once the chain is over; read, cached
        assert seen_history == [0, 0]

    def test_middlewares_run_for_every_redirect_hop_in_the_callers_task(
        self, service: Service
    ) -> None:
        """CAVEAuthMiddleware: a hop is recognised by order, in the task of the caller."""
        calls: list[tuple[str, Any]] = []

        async def middleware(request: Any, handler: Any) -> Any:
            calls.append((request.url.host, asyncio.current_task()))
            return await handler(request)

        async def send(client: aiohttp.ClientSession) -> Any:
            task = asyncio.current_task()
            async with client.get(service.redirect(service.url("/echo", "localhost"))) as answer:
                assert answer.status == 200
            return task

        task = self.run(middleware, send)
        assert calls == [("127.0.0.1", task), ("localhost", task)]

    def test_a_context_variable_set_in_a_middleware_is_seen_at_the_next_hop_only(
        self, service: Service
    ) -> None:
        """CAVEAuthMiddleware._pending: its chain reaches the hop, never a gathered request."""
        mark: contextvars.ContextVar[str | None] = contextvars.ContextVar("mark", default=None)
        found: list[tuple[str, str | None]] = []

        async def middleware(request: Any, handler: Any) -> Any:
            found.append((request.url.path, mark.get()))
            mark.set(request.url.path)
            return await handler(request)

        async def send(client: aiohttp.ClientSession) -> None:
            async def one(url: str) -> None:
                async with client.get(url) as response:
                    await response.read()

            await asyncio.gather(one(service.redirect(service.url("/echo"))), one(service.url("/")))

        self.run(middleware, send)
        assert sorted(found, key=str) == sorted(
            [("/redirect/302", None), ("/echo", "/redirect/302"), ("/", None)], key=str
        )

    def test_a_hop_is_built_from_the_callers_headers_not_the_requests_before(
        self, service: Service, seen: list[dict[str, Any]]
    ) -> None:
        """CAVEAuthMiddleware: the token it put on a request never reaches a hop by itself."""

        async def middleware(request: Any, handler: Any) -> Any:
            if request.url.path.startswith("/redirect"):
                request.headers["Authorization"] = "Bearer added"
                request.headers["X-Added"] = "1"
            return await handler(request)

        status, _ = self.run(middleware, self.get(service.redirect(service.url("/echo"))))
        assert status == 200
        added = [(hit["headers"].get("X-Added"), has_token(hit)) for hit in seen]
        assert added == [("1", True), (None, False)]

    def test_a_hop_to_another_origin_drops_the_callers_authorization_and_cookie(
        self, service: Service, seen: list[dict[str, Any]]
    ) -> None:
        """transport.aiohttp: what aiohttp itself drops from the caller's headers."""
        headers = {"Authorization": "Bearer callers", "Cookie": "mine=1", "X-Kept": "1"}

        async def middleware(request: Any, handler: Any) -> Any:
            return await handler(request)

        url = service.redirect(service.url("/echo", "localhost"))
        assert self.run(middleware, self.get(url, headers=headers))[0] == 200
        hop = seen[-1]["headers"]
        assert ("Authorization" in hop, "Cookie" in hop, "X-Kept" in hop) == (False, False, True)

    def test_it_follows_301_302_303_307_308_only(self, recorder: Server) -> None:
        """transport.aiohttp.REDIRECTS: a hop it follows is one the middleware expects."""
        followed = {}

        async def middleware(request: Any, handler: Any) -> Any:
            return await handler(request)

        for status in (300, 301, 302, 303, 304, 305, 307, 308):
            recorder.reset()
            url = recorder.redirect(recorder.url("/echo"), status)
            answer, _ = self.run(middleware, self.get(url))
            followed[status] = (answer, len(recorder.seen))
        assert followed == {
            status: (200, 2) if status in (301, 302, 303, 307, 308) else (status, 1)
            for status in followed
        }

    def test_a_hop_whose_connection_drops_is_sent_again_through_the_middleware(
        self, service: Service, recorder: Server
    ) -> None:
        """CAVEAuthMiddleware: a failed hop is noted, so its re-send is still taken as the hop."""
        calls: list[str] = []

        async def middleware(request: Any, handler: Any) -> Any:
            calls.append(str(request.url))
            return await handler(request)

        recorder.drop = 1
        hop = recorder.url("/echo", "localhost")
        assert self.run(middleware, self.get(service.redirect(hop, 307)))[0] == 200
        assert calls[1:] == [hop, hop]  # the hop, then the same hop again
        assert len(recorder.seen) == 2

    def test_an_oserror_from_a_middleware_becomes_a_client_os_error(self) -> None:
        """transport.aiohttp: why its own errors are also aiohttp.ClientError."""

        async def raising(request: Any, handler: Any) -> Any:
            raise PermissionError("the token file")

        with pytest.raises(aiohttp.ClientOSError):
            self.run(raising, self.get("http://127.0.0.1:9/"))

    def test_a_client_error_from_a_middleware_comes_out_as_it_is(self) -> None:
        """transport.aiohttp.TokenFileError is an OSError and a ClientError: it comes out."""

        class Both(aiohttp.ClientError, OSError):
            pass

        calls = []

        async def raising(request: Any, handler: Any) -> Any:
            calls.append(request)
            raise Both("the token file")

        with pytest.raises(Both):
            self.run(raising, self.get("http://127.0.0.1:9/"))
        assert len(calls) == 1  # not sent again

    def test_request_proxy_is_the_proxy_it_connects_through(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """transport.aiohttp._proxy_of: proxy=, or with trust_env=True the environment's."""
        proxies: list[str | None] = []

        class Stop(aiohttp.ClientError):
            pass

        async def middleware(request: Any, handler: Any) -> Any:
            proxies.append(None if request.proxy is None else str(request.proxy))
            raise Stop  # nothing is sent

        monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:8/")
        url = "http://127.0.0.1:9/"
        for session, request in [
            ({}, {}),
            ({}, {"proxy": "http://127.0.0.1:7/"}),
            ({"trust_env": True}, {}),
        ]:
            with pytest.raises(Stop):
                self.run(middleware, self.get(url, **request), **session)
        assert proxies == [None, "http://127.0.0.1:7/", "http://127.0.0.1:8/"]

    @pytest.mark.parametrize(
        "body",
        [lambda: b"payload", lambda: io.BytesIO(b"skippayload")],
        ids=["bytes", "seekable"],
    )
    def test_the_handler_called_again_sends_the_body_again_from_where_it_began(
        self, recorder: Server, body: Callable[[], Any]
    ) -> None:
        """CAVEAuthMiddleware._retry: a 401 is re-sent by calling the handler once more."""
        data = body()
        if isinstance(data, io.BytesIO):
            data.seek(4)

        async def twice(request: Any, handler: Any) -> Any:
            assert not request.body.consumed
            (await handler(request)).release()
            assert not request.body.consumed  # what _rewindable reads
            return await handler(request)

        async def send(client: aiohttp.ClientSession) -> int:
            async with client.post(recorder.url("/echo"), data=data) as response:
                return response.status

        assert self.run(twice, send) == 200
        assert [hit.body for hit in recorder.seen] == [b"payload", b"payload"]

    def test_a_streamed_body_is_consumed_once_sent(self, recorder: Server) -> None:
        """transport.aiohttp._rewindable: a body aiohttp cannot send again says so."""
        consumed: list[bool] = []

        async def chunks() -> AsyncIterator[bytes]:
            yield b"one"

        async def middleware(request: Any, handler: Any) -> Any:
            response = await handler(request)
            consumed.append(request.body.consumed)
            return response

        async def send(client: aiohttp.ClientSession) -> int:
            async with client.post(recorder.url("/echo"), data=chunks()) as response:
                return response.status

        assert self.run(middleware, send) == 200
        assert consumed == [True]

    def test_a_body_read_in_a_middleware_is_read_again_by_the_caller(
        self, service: Service
    ) -> None:
        """transport.aiohttp._body: a refusal's body read there is still the caller's."""
        read: list[bytes] = []

        async def middleware(request: Any, handler: Any) -> Any:
            response = await handler(request)
            read.append(await response.read())
            return response

        status, body = self.run(middleware, self.get(service.url("/always401")))
        assert status == 401
        assert read == [body]
        assert b"invalid_token" in body
