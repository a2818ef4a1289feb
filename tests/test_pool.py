"""urllib3: CAVEPoolManager and auth_headers against real loopback services.

What only urllib3 has: the caller's and the pool's headers and ``Retry``, ``redirect=False``,
``auth_headers`` for a plain ``urllib3.request``. The rules every way in keeps (what is
attached where, plain http, redirects, the 401 reload-and-retry) are in test_rules.py."""

from __future__ import annotations

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
    TokenNotFoundError,
    auth_headers,
)
from helpers import (
    BEARER,
    HOSTS,
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
    # Without a Retry of the caller's: test_rules.py (TestRedirects), for every way in.
    @pytest.mark.parametrize("status", [302, 307])
    @pytest.mark.parametrize(
        ("to_host", "retries", "on_the_pool", "hops"),
        [
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
    def test_hop_by_hop_with_a_retry(
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

    def test_not_followed(self, service: Service, pool: Any, seen: list[dict[str, Any]]) -> None:
        http = pool(CAVETokenAuth(VALID_TOKEN))
        response = http.request(
            "GET", service.redirect(service.url("/echo", "localhost")), redirect=False
        )
        assert response.status == 302
        assert [carried(hit) for hit in seen] == [TOKEN]


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

    def test_an_unallowed_host_needs_no_token(self) -> None:
        assert auth_headers("https://elsewhere.example.org/", hosts=["minnie.example.org"]) == {}

    def test_not_found(self) -> None:
        with pytest.raises(TokenNotFoundError):
            auth_headers("https://minnie.example.org/")
        # no token, not required: the request says it is a program's, for a JSON 401
        headers = auth_headers("https://minnie.example.org/", required=False)
        assert headers == {"X-Requested-With": "XMLHttpRequest"}

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
