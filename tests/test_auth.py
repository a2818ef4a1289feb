"""CAVETokenAuth against real loopback services: what is attached, where, and when.

The rules every way in keeps (header and cookie, ``hosts=``, host files, plain http,
a missing token) are tested once for all of them in test_rules.py."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest
import requests

from cave_requests_auth import (
    CAVETokenAuth,
    InsecureTransportError,
    InvalidTokenError,
    TokenNotFoundError,
)
from helpers import (
    INVALID_TOKEN,
    OTHER_TOKEN,
    VALID_TOKEN,
    Service,
    in_threads,
    prepared,
    write_secret,
)


def echo(service: Service, auth: Any, host: str = "127.0.0.1", **kwargs: Any) -> dict[str, Any]:
    response = requests.get(service.url("/echo", host), auth=auth, **kwargs)
    assert response.status_code == 200
    result: dict[str, Any] = response.json()
    return result


class TestAttach:
    def test_token_from_default_file(self, service: Service, secrets: Path) -> None:
        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        seen = echo(service, CAVETokenAuth())
        assert seen["headers"]["Authorization"] == f"Bearer {VALID_TOKEN}"

    def test_authenticated_request_is_accepted(self, service: Service) -> None:
        response = requests.get(service.url("/api/data"), auth=CAVETokenAuth(VALID_TOKEN))
        assert response.status_code == 200
        assert response.json()["user"] == "Ada"

    def test_bad_token_gets_the_services_401(self, service: Service) -> None:
        response = requests.get(service.url("/api/data"), auth=CAVETokenAuth(INVALID_TOKEN))
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_token"
        assert "invalid_token" in response.headers["WWW-Authenticate"]

    def test_session_auth_applies_to_every_request(self, service: Service) -> None:
        with requests.Session() as session:
            session.auth = CAVETokenAuth(VALID_TOKEN)
            statuses = [session.get(service.url("/api/data")).status_code for _ in range(3)]
        assert statuses == [200, 200, 200]

    def test_post_body_is_untouched(self, service: Service) -> None:
        response = requests.post(
            service.url("/api/data"), data=b"payload", auth=CAVETokenAuth(VALID_TOKEN)
        )
        assert response.json() == {"user": "Ada", "body": "payload"}


class TestPerHostFiles:
    def test_steady_state_reads_no_file(self, secrets: Path) -> None:
        path = write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        auth = CAVETokenAuth()
        url = "https://minnie.example.org/api"
        assert auth(prepared(url)).headers["Authorization"] == f"Bearer {VALID_TOKEN}"
        path.unlink()  # a file read now would fail to find the token
        for _ in range(3):
            assert auth(prepared(url)).headers["Authorization"] == f"Bearer {VALID_TOKEN}"


class TestCookieMerge:
    def test_keeps_other_cookies(self, service: Service) -> None:
        seen = echo(
            service,
            CAVETokenAuth(VALID_TOKEN, cookie=True),
            cookies={"session": "abc", "lang": "en"},
        )
        assert seen["cookies"] == {
            "session": "abc",
            "lang": "en",
            "middle_auth_token": VALID_TOKEN,
        }

    def test_replaces_an_old_middle_auth_token(self, service: Service) -> None:
        seen = echo(
            service,
            CAVETokenAuth(VALID_TOKEN, cookie=True),
            headers={"Cookie": f"a=1; middle_auth_token={OTHER_TOKEN}; b=2"},
        )
        assert seen["headers"]["Cookie"] == f"a=1; b=2; middle_auth_token={VALID_TOKEN}"


class TestHosts:
    @pytest.mark.parametrize(
        ("url", "attached"),
        [
            ("https://a.example.org/", True),
            ("https://a.b.example.org/", True),
            ("https://example.org/", False),
            ("https://example.org.evil.com/", False),
            ("https://badexample.org/", False),
            ("https://A.EXAMPLE.ORG:8443/", True),
        ],
    )
    def test_wildcard(self, url: str, attached: bool) -> None:
        request = CAVETokenAuth(VALID_TOKEN, hosts=["*.example.org"])(prepared(url))
        assert ("Authorization" in request.headers) is attached

    def test_untouched_request_needs_no_token(self, service: Service) -> None:
        auth = CAVETokenAuth(hosts=["minnie.example.org"])  # no token anywhere
        seen = echo(service, auth)
        assert "Authorization" not in seen["headers"]

    @pytest.mark.parametrize(
        ("hosts", "error"),
        [
            ("minnie.example.org", TypeError),
            (["https://minnie.example.org"], ValueError),
            (["minnie.example.org:443"], ValueError),
            (["minnie.example.org/path"], ValueError),
            ([""], ValueError),
            ([42], TypeError),
        ],
    )
    def test_malformed_hosts_are_refused(self, hosts: Any, error: type[Exception]) -> None:
        with pytest.raises(error, match="host"):
            CAVETokenAuth(VALID_TOKEN, hosts=hosts)


class TestTransport:
    def test_nothing_is_sent(self, service: Service, seen: list[dict[str, Any]]) -> None:
        url = service.url("/echo").replace("127.0.0.1", "127.0.0.1.nip.invalid")
        with pytest.raises(InsecureTransportError):
            requests.get(url, auth=CAVETokenAuth(VALID_TOKEN))
        assert seen == []

    @pytest.mark.parametrize(
        "url",
        ["http://localhost/", "http://127.0.0.1/", "http://127.0.0.2:8080/", "http://[::1]:80/"],
    )
    def test_loopback_http_is_allowed(self, url: str) -> None:
        request = CAVETokenAuth(VALID_TOKEN)(prepared(url))
        assert request.headers["Authorization"] == f"Bearer {VALID_TOKEN}"

    def test_allow_insecure_http(self) -> None:
        auth = CAVETokenAuth(VALID_TOKEN, allow_insecure_http=True)
        request = auth(prepared("http://minnie.example.org/"))
        assert request.headers["Authorization"] == f"Bearer {VALID_TOKEN}"


class TestRequired:
    def test_a_token_saved_later_is_found(self, service: Service, secrets: Path) -> None:
        auth = CAVETokenAuth()
        with pytest.raises(TokenNotFoundError):
            requests.get(service.url("/echo"), auth=auth)
        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        assert echo(service, auth)["headers"]["Authorization"] == f"Bearer {VALID_TOKEN}"

    @pytest.mark.parametrize("token", ["", "two words", "a\r\nb", 42, b"bytes"])
    def test_invalid_explicit_token(self, token: Any) -> None:
        with pytest.raises(InvalidTokenError, match="from the token= argument"):
            CAVETokenAuth(token)


class TestObject:
    def test_truthy_even_when_nothing_is_found(self) -> None:
        assert bool(CAVETokenAuth(required=False))

    def test_pickles_with_its_session(self, service: Service, secrets: Path) -> None:
        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        session = requests.Session()
        session.auth = CAVETokenAuth(hosts=["127.0.0.1"], cookie=False)
        session.get(service.url("/echo"))  # fill the cache; it is not pickled
        data = pickle.dumps(session)
        assert VALID_TOKEN.encode() not in data
        copy = pickle.loads(data)
        assert isinstance(copy.auth, CAVETokenAuth)
        assert copy.auth.hosts == ["127.0.0.1"]
        seen = copy.get(service.url("/echo")).json()
        assert seen["headers"]["Authorization"] == f"Bearer {VALID_TOKEN}"
        assert "Cookie" not in seen["headers"]

    def test_shared_between_threads(self, service: Service, secrets: Path) -> None:
        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        write_secret(secrets / f"localhost:{service.port}-cave-secret.json", {"token": OTHER_TOKEN})
        auth = CAVETokenAuth()
        expected = {"127.0.0.1": VALID_TOKEN, "localhost": OTHER_TOKEN}
        wrong: list[str] = []
        errors: list[BaseException] = []

        def work(host: str) -> None:
            try:
                with requests.Session() as session:
                    for _ in range(10):
                        seen = session.get(service.url("/echo", host), auth=auth).json()
                        if seen["headers"]["Authorization"] != f"Bearer {expected[host]}":
                            wrong.append(host)
            except BaseException as error:  # reported below
                errors.append(error)

        in_threads(work, list(expected) * 5, timeout=30)
        assert errors == []
        assert wrong == []
