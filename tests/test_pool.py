"""urllib3: CAVEPoolManager and auth_headers against real loopback services, by the
same rules as CAVETokenAuth, redirects and the 401 reload-and-retry included."""

from __future__ import annotations

import io
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest
import urllib3
from urllib3.util.retry import Retry

from cave_requests_auth import (
    CAVEPoolManager,
    CAVETokenAuth,
    InsecureTransportError,
    TokenNotFoundError,
    auth_headers,
)
from helpers import (
    BEARER,
    HOSTS,
    INVALID_TOKEN,
    NOTHING,
    OTHER_TOKEN,
    TOKEN,
    TOKEN_AND_COOKIE,
    URLLIB3_2,
    VALID_TOKEN,
    Service,
    carried,
    in_threads,
    json_of,
    write_secret,
)

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


@pytest.fixture
def pool() -> Iterator[Callable[..., CAVEPoolManager]]:
    """``pool(auth, **pool_kwargs)``: a CAVEPoolManager, cleared after the test."""
    made: list[CAVEPoolManager] = []

    def make(auth: CAVETokenAuth | None = None, **kwargs: Any) -> CAVEPoolManager:
        made.append(CAVEPoolManager(auth, **kwargs))
        return made[-1]

    yield make
    for manager in made:
        manager.clear()


@pytest.fixture
def resolved(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Host names something tried to resolve other than loopback: refused, and listed."""
    names: list[str] = []
    real = socket.getaddrinfo

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in LOOPBACK_NAMES:
            names.append(host)
            raise socket.gaierror(socket.EAI_NONAME, "refused by the test: not loopback")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
    return names


class TestAttach:
    @pytest.mark.parametrize("host", HOSTS)
    def test_bearer_header_and_cookie(
        self, service: Service, pool: Any, seen: list[dict[str, Any]], host: str
    ) -> None:
        response = pool(CAVETokenAuth(VALID_TOKEN, cookie=True)).request(
            "GET", service.url("/api/data", host)
        )
        assert response.status == 200
        assert json_of(response) == {"user": "Ada", "body": ""}
        assert seen[0]["headers"]["Authorization"] == BEARER
        assert seen[0]["cookies"] == {"middle_auth_token": VALID_TOKEN}

    def test_cookie_off(self, service: Service, pool: Any) -> None:
        http = pool(CAVETokenAuth(VALID_TOKEN, cookie=False))
        echoed = json_of(http.request("GET", service.url("/echo")))
        assert echoed["headers"]["Authorization"] == BEARER
        assert "Cookie" not in echoed["headers"]

    @pytest.mark.parametrize(
        ("hosts", "host", "attached"),
        [
            (None, "127.0.0.1", TOKEN),
            (None, "localhost", TOKEN),
            (["127.0.0.1"], "127.0.0.1", TOKEN),
            (["127.0.0.1"], "localhost", NOTHING),
            (["LOCALHOST."], "localhost", TOKEN),
            (["*.example.org"], "localhost", NOTHING),
            ([], "127.0.0.1", NOTHING),
        ],
    )
    def test_hosts_decide_per_request(
        self,
        service: Service,
        pool: Any,
        seen: list[dict[str, Any]],
        hosts: list[str] | None,
        host: str,
        attached: tuple[bool, bool],
    ) -> None:
        http = pool(CAVETokenAuth(VALID_TOKEN, hosts=hosts))
        assert http.request("GET", service.url("/echo", host)).status == 200
        assert [carried(hit) for hit in seen] == [attached]

    def test_each_request_gets_its_hosts_file(
        self, service: Service, pool: Any, secrets: Path
    ) -> None:
        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        write_secret(secrets / f"localhost:{service.port}-cave-secret.json", {"token": OTHER_TOKEN})
        http = pool()
        users = [
            json_of(http.request("GET", service.url("/api/data", host)))["user"]
            for host in [*HOSTS, *HOSTS]
        ]
        assert users == ["Ada", "Grace", "Ada", "Grace"]

    def test_host_file_without_port(self, service: Service, pool: Any, secrets: Path) -> None:
        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        write_secret(secrets / "localhost-cave-secret.json", {"token": OTHER_TOKEN})
        response = pool().request("GET", service.url("/api/data", "localhost"))
        assert json_of(response)["user"] == "Grace"

    def test_not_found_raises_before_sending(
        self, service: Service, pool: Any, seen: list[dict[str, Any]]
    ) -> None:
        with pytest.raises(TokenNotFoundError, match="cave-auth login"):
            pool().request("GET", service.url("/echo"))
        assert seen == []

    def test_not_required_sends_without_token(
        self, service: Service, pool: Any, seen: list[dict[str, Any]]
    ) -> None:
        assert (
            pool(CAVETokenAuth(required=False)).request("GET", service.url("/echo")).status == 200
        )
        assert [carried(hit) for hit in seen] == [NOTHING]

    def test_repr_never_shows_the_token(self, pool: Any) -> None:
        text = repr(pool(CAVETokenAuth(VALID_TOKEN)))
        assert VALID_TOKEN not in text
        assert text.startswith("CAVEPoolManager(CAVETokenAuth(")


class TestTransport:
    @pytest.mark.parametrize(
        "url",
        [
            "http://minnie.example.invalid/api",
            "http://minnie.example.invalid:8080/",
            "http://localhost:x@minnie.example.invalid/",
        ],
    )
    def test_plain_http_to_a_remote_host_is_refused(
        self, pool: Any, resolved: list[str], url: str
    ) -> None:
        with pytest.raises(InsecureTransportError, match="https://") as caught:
            pool(CAVETokenAuth(VALID_TOKEN)).request("GET", url)
        assert VALID_TOKEN not in str(caught.value)
        assert resolved == []  # refused before anything was looked up or sent

    def test_https(self, tls_service: Service, pool: Any) -> None:
        http = pool(CAVETokenAuth(VALID_TOKEN), ca_certs=tls_service.ca_file)
        response = http.request("GET", tls_service.url("/api/data", "localhost"))
        assert json_of(response)["user"] == "Ada"


class TestCookies:
    @pytest.mark.parametrize(
        ("given", "expected"),
        [
            ("a=1", {"a": "1", "middle_auth_token": VALID_TOKEN}),
            ("a=1; b=2", {"a": "1", "b": "2", "middle_auth_token": VALID_TOKEN}),
            (f"a=1; middle_auth_token={OTHER_TOKEN}; b=2", None),
            (f"middle_auth_token={OTHER_TOKEN}", {"middle_auth_token": VALID_TOKEN}),
        ],
    )
    def test_callers_cookie_is_kept_and_merged(
        self, service: Service, pool: Any, given: str, expected: dict[str, str] | None
    ) -> None:
        http = pool(CAVETokenAuth(VALID_TOKEN, cookie=True))
        echoed = json_of(http.request("GET", service.url("/echo"), headers={"Cookie": given}))
        if expected is None:  # an old token in the middle: replaced, the order kept
            assert echoed["headers"]["Cookie"] == f"a=1; b=2; middle_auth_token={VALID_TOKEN}"
        else:
            assert echoed["cookies"] == expected

    def test_pool_headers_are_merged_and_left_alone(self, service: Service, pool: Any) -> None:
        http = pool(
            CAVETokenAuth(VALID_TOKEN, cookie=True), headers={"Cookie": "lib=1", "X-Library": "lib"}
        )
        for _ in range(2):
            echoed = json_of(http.request("GET", service.url("/echo")))
            assert echoed["cookies"] == {"lib": "1", "middle_auth_token": VALID_TOKEN}
            assert echoed["headers"]["X-Library"] == "lib"
        assert dict(http.headers) == {"Cookie": "lib=1", "X-Library": "lib"}

    def test_callers_headers_are_not_modified(self, service: Service, pool: Any) -> None:
        headers = {"Cookie": "a=1"}
        pool(CAVETokenAuth(VALID_TOKEN, cookie=True)).request(
            "GET", service.url("/echo"), headers=headers
        )
        assert headers == {"Cookie": "a=1"}


class TestRedirects:
    @pytest.mark.parametrize("status", [302, 307])
    @pytest.mark.parametrize(
        ("to_host", "retries", "on_the_pool", "hops"),
        [
            pytest.param("127.0.0.1", None, False, [TOKEN, TOKEN], id="same-host"),
            pytest.param("localhost", None, False, [TOKEN, NOTHING], id="other-host"),
            pytest.param(
                "localhost",
                Retry(remove_headers_on_redirect=[]),
                False,
                [TOKEN, NOTHING],
                id="other-host-callers-retry",
            ),
            pytest.param(
                "localhost",
                Retry(remove_headers_on_redirect=[]),
                True,
                [TOKEN, NOTHING],
                id="other-host-pools-retry",
            ),
            pytest.param(
                "127.0.0.1",
                Retry(redirect=3),
                False,
                [TOKEN, TOKEN],
                id="same-host-retry",
            ),
        ],
    )
    def test_hop_by_hop(
        self,
        service: Service,
        pool: Any,
        seen: list[dict[str, Any]],
        status: int,
        to_host: str,
        retries: Retry | None,
        on_the_pool: bool,
        hops: list[tuple[bool, bool]],
    ) -> None:
        if on_the_pool and not URLLIB3_2:
            pytest.skip("urllib3 1.26 strips headers on redirect by a request's own Retry only")
        auth = CAVETokenAuth(VALID_TOKEN)
        http = pool(auth, retries=retries) if on_the_pool else pool(auth)
        kwargs = {"retries": retries} if retries is not None and not on_the_pool else {}
        response = http.request(
            "GET", service.redirect(service.url("/echo", to_host), status), **kwargs
        )
        assert response.status == 200
        assert json_of(response)["host"] == f"{to_host}:{service.port}"
        assert [carried(hit) for hit in seen] == hops

    @pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
    def test_never_across_hosts_even_when_the_caller_keeps_headers(
        self, service: Service, pool: Any, seen: list[dict[str, Any]], status: int
    ) -> None:
        http = pool(CAVETokenAuth(VALID_TOKEN, cookie=True))
        response = http.request(
            "GET",
            service.redirect(service.url("/echo", "localhost"), status),
            headers={"Cookie": "a=1", "X-Mine": "kept"},
            retries=Retry(remove_headers_on_redirect=[]),
        )
        echoed = json_of(response)
        assert "Authorization" not in echoed["headers"]
        assert echoed["cookies"] == {"a": "1"}  # the caller's cookie went on, ours did not
        assert echoed["headers"]["X-Mine"] == "kept"
        assert seen[0]["cookies"] == {"a": "1", "middle_auth_token": VALID_TOKEN}

    def test_same_host_keeps_the_token_to_the_service(self, service: Service, pool: Any) -> None:
        http = pool(CAVETokenAuth(VALID_TOKEN))
        response = http.request("GET", service.redirect(service.url("/api/data")))
        assert response.status == 200
        assert json_of(response)["user"] == "Ada"

    def test_back_to_the_first_host_gets_nothing(
        self, service: Service, pool: Any, seen: list[dict[str, Any]]
    ) -> None:
        back = service.redirect(service.url("/echo"))  # on 127.0.0.1
        away = service.redirect(back, host="localhost")
        response = pool(CAVETokenAuth(VALID_TOKEN)).request("GET", service.redirect(away))
        assert response.status == 200
        assert [carried(hit) for hit in seen] == [TOKEN, NOTHING, NOTHING, NOTHING]

    @pytest.mark.parametrize("to_host", HOSTS)
    def test_https_to_http_gets_nothing(
        self,
        service: Service,
        tls_service: Service,
        pool: Any,
        seen: list[dict[str, Any]],
        to_host: str,
    ) -> None:
        http = pool(CAVETokenAuth(VALID_TOKEN), ca_certs=tls_service.ca_file)
        start = tls_service.redirect(service.url("/echo", to_host), host="localhost")
        response = http.request("GET", start, retries=Retry(remove_headers_on_redirect=[]))
        assert response.status == 200
        assert [carried(hit) for hit in seen] == [NOTHING]

    def test_not_followed(self, service: Service, pool: Any, seen: list[dict[str, Any]]) -> None:
        http = pool(CAVETokenAuth(VALID_TOKEN))
        response = http.request(
            "GET", service.redirect(service.url("/echo", "localhost")), redirect=False
        )
        assert response.status == 302
        assert [carried(hit) for hit in seen] == [TOKEN]


class TestReloadAndRetry:
    def test_a_token_replaced_mid_session_is_used(
        self, service: Service, pool: Any, secrets: Path, seen: list[dict[str, Any]]
    ) -> None:
        path = write_secret(secrets / "cave-secret.json", {"token": INVALID_TOKEN})
        http = pool()
        assert http.request("GET", service.url("/api/data")).status == 401
        assert len(seen) == 1  # the same token: no retry
        write_secret(path, {"token": VALID_TOKEN})  # `cave-auth login` in another process
        seen.clear()
        response = http.request("GET", service.url("/api/data"))
        assert response.status == 200
        assert json_of(response)["user"] == "Ada"
        assert [hit["headers"]["Authorization"] for hit in seen] == [
            f"Bearer {INVALID_TOKEN}",
            BEARER,
        ]
        seen.clear()
        assert http.request("GET", service.url("/api/data")).status == 200
        assert len(seen) == 1  # the new token is cached

    @pytest.mark.parametrize(
        ("body", "expected"),
        [
            (b"raw bytes", "raw bytes"),
            ("text", "text"),
            (io.BytesIO(b"skippayload"), "payload"),
        ],
        ids=["bytes", "str", "seekable"],
    )
    def test_bodies_are_sent_again(
        self,
        service: Service,
        pool: Any,
        secrets: Path,
        seen: list[dict[str, Any]],
        body: Any,
        expected: str,
    ) -> None:
        if isinstance(body, io.BytesIO):
            body.seek(4)  # rewound to where it started, not to 0
        path = write_secret(secrets / "cave-secret.json", {"token": INVALID_TOKEN})
        http = pool()
        assert http.request("GET", service.url("/api/data")).status == 401
        write_secret(path, {"token": VALID_TOKEN})
        seen.clear()
        response = http.request("POST", service.url("/api/data"), body=body)
        assert response.status == 200
        assert json_of(response) == {"user": "Ada", "body": expected}
        assert len(seen) == 2

    def test_generator_body_is_not_sent_again(
        self, service: Service, pool: Any, secrets: Path, seen: list[dict[str, Any]]
    ) -> None:
        path = write_secret(secrets / "cave-secret.json", {"token": INVALID_TOKEN})
        http = pool()
        assert http.request("GET", service.url("/api/data")).status == 401
        write_secret(path, {"token": VALID_TOKEN})
        seen.clear()
        chunks = (chunk for chunk in [b"one", b"two"])
        response = http.request("POST", service.url("/api/data"), body=chunks)
        assert response.status == 401
        assert json_of(response)["error"] == "invalid_token"
        assert len(seen) == 1

    def test_explicit_token_is_not_retried(
        self, service: Service, pool: Any, seen: list[dict[str, Any]]
    ) -> None:
        response = pool(CAVETokenAuth(INVALID_TOKEN)).request("GET", service.url("/api/data"))
        assert response.status == 401
        assert len(seen) == 1

    def test_a_401_from_a_redirect_hop_is_not_retried(
        self, service: Service, pool: Any, secrets: Path, seen: list[dict[str, Any]]
    ) -> None:
        path = write_secret(secrets / "cave-secret.json", {"token": INVALID_TOKEN})
        http = pool()
        http.request("GET", service.url("/echo"))  # INVALID_TOKEN cached for 127.0.0.1
        write_secret(path, {"token": VALID_TOKEN})
        seen.clear()
        response = http.request("GET", service.redirect(service.url("/always401", "localhost")))
        assert response.status == 401
        assert [hit["path"] for hit in seen] == ["/redirect/302", "/always401"]

    def test_a_403_is_not_retried(
        self, service: Service, pool: Any, secrets: Path, seen: list[dict[str, Any]]
    ) -> None:
        path = write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        http = pool()
        assert http.request("GET", service.url("/api/minnie/edit")).status == 403
        write_secret(path, {"token": OTHER_TOKEN})
        seen.clear()
        assert http.request("GET", service.url("/api/minnie/edit")).status == 403
        assert len(seen) == 1


class TestAuthHeaders:
    @pytest.mark.parametrize(
        ("url", "kwargs", "expected"),
        [
            ("http://127.0.0.1:8080/", {}, {"Authorization": BEARER}),
            ("http://localhost/api", {}, {"Authorization": BEARER}),
            ("http://[::1]:80/", {}, {"Authorization": BEARER}),
            ("https://minnie.example.org/", {}, {"Authorization": BEARER}),
            (
                "https://minnie.example.org/",
                {"cookie": True},
                {"Authorization": BEARER, "Cookie": f"middle_auth_token={VALID_TOKEN}"},
            ),
            (
                "https://minnie.example.org/",
                {"hosts": ["*.example.org"]},
                {"Authorization": BEARER},
            ),
            ("https://minnie.example.org/", {"hosts": ["other.example.org"]}, {}),
            ("https://localhost/", {"hosts": ["127.0.0.1"]}, {}),
            (
                "http://minnie.example.org/",
                {"allow_insecure_http": True},
                {"Authorization": BEARER},
            ),
        ],
    )
    def test_headers(self, url: str, kwargs: dict[str, Any], expected: dict[str, str]) -> None:
        assert auth_headers(url, token=VALID_TOKEN, **kwargs) == expected

    @pytest.mark.parametrize(
        "url",
        ["http://minnie.example.org/", "http://10.0.0.1/", "http://localhost.evil.org/"],
    )
    def test_plain_http_to_a_remote_host_is_refused(self, url: str) -> None:
        with pytest.raises(InsecureTransportError) as caught:
            auth_headers(url, token=VALID_TOKEN)
        assert VALID_TOKEN not in str(caught.value)

    def test_an_unallowed_host_needs_no_token(self) -> None:
        assert auth_headers("https://elsewhere.example.org/", hosts=["minnie.example.org"]) == {}

    def test_not_found(self) -> None:
        with pytest.raises(TokenNotFoundError):
            auth_headers("https://minnie.example.org/")
        assert auth_headers("https://minnie.example.org/", required=False) == {}

    def test_per_host_file(self, service: Service, secrets: Path) -> None:
        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        write_secret(secrets / f"localhost:{service.port}-cave-secret.json", {"token": OTHER_TOKEN})
        assert auth_headers(service.url("/")) == {"Authorization": BEARER}
        assert auth_headers(service.url("/", "localhost")) == {
            "Authorization": f"Bearer {OTHER_TOKEN}"
        }

    @pytest.mark.skipif(not URLLIB3_2, reason="urllib3.request() is new in urllib3 2")
    @pytest.mark.parametrize("host", HOSTS)
    def test_with_urllib3_request(self, service: Service, secrets: Path, host: str) -> None:
        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        url = service.url("/api/data", host)
        response = urllib3.request("GET", url, headers=auth_headers(url))
        assert response.status == 200
        assert json_of(response)["user"] == "Ada"

    @pytest.mark.skipif(not URLLIB3_2, reason="urllib3.request() is new in urllib3 2")
    def test_cookie_with_urllib3_request(
        self, service: Service, seen: list[dict[str, Any]]
    ) -> None:
        url = service.url("/echo")
        urllib3.request("GET", url, headers=auth_headers(url, token=VALID_TOKEN, cookie=True))
        assert carried(seen[0]) == TOKEN_AND_COOKIE


class TestThreads:
    def test_one_pool_manager_under_20_threads(
        self, service: Service, pool: Any, secrets: Path
    ) -> None:
        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        write_secret(secrets / f"localhost:{service.port}-cave-secret.json", {"token": OTHER_TOKEN})
        http = pool(maxsize=20)
        tokens = {"127.0.0.1": VALID_TOKEN, "localhost": OTHER_TOKEN}
        start = threading.Barrier(20)
        wrong: list[tuple[str, str, Any]] = []
        errors: list[BaseException] = []

        def check(kind: str, host: str, url: str, expected: str | None) -> None:
            echoed = json_of(http.request("GET", url))
            got = echoed["headers"].get("Authorization")
            if got != (None if expected is None else f"Bearer {expected}"):
                wrong.append((kind, host, got))

        def work(index: int) -> None:
            try:
                start.wait(10)
                for step in range(10):
                    host = HOSTS[(index + step) % 2]
                    other = HOSTS[(index + step + 1) % 2]
                    direct = service.url("/echo", host)
                    check("direct", host, direct, tokens[host])
                    check("same-host", host, service.redirect(direct, host=host), tokens[host])
                    away = service.redirect(service.url("/echo", other), host=host)
                    check("other-host", host, away, None)
            except BaseException as error:  # reported below
                errors.append(error)

        in_threads(work, range(20), timeout=60)
        assert errors == []
        assert wrong == []
