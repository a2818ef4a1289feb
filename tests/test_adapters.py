"""CAVEAuthAdapter against real loopback services: the token under the mounted prefix
only, hop by hop, on any session, with the usual HTTPAdapter arguments.

The rules every way in keeps (the adapter among them) are in test_rules.py."""

from __future__ import annotations

import pickle
import threading
from pathlib import Path
from typing import Any

import pytest
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from cave_requests_auth import CAVEAuthAdapter, CAVETokenAuth
from helpers import (
    BEARER,
    HOSTS,
    NOTHING,
    OTHER_TOKEN,
    TOKEN,
    VALID_TOKEN,
    Service,
    carried,
    in_threads,
    write_secret,
)


def mounted(service: Service, path: str = "/", host: str = "127.0.0.1", **kw: Any) -> Any:
    """A plain session with a CAVEAuthAdapter (explicit token) mounted on one prefix."""
    session = requests.Session()
    auth = kw.pop("auth", None) or CAVETokenAuth(VALID_TOKEN)
    session.mount(service.url(path, host), CAVEAuthAdapter(auth, **kw))
    return session


def library_session() -> requests.Session:
    """A session as another library builds and hands it out: its own adapters,
    headers and cookies, made without knowing about CAVE."""
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=Retry(total=2, backoff_factor=0), pool_maxsize=4)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers.update({"User-Agent": "somelib/1.0", "X-Library": "somelib"})
    session.cookies.set("lib_session", "abc")
    return session


class TestMountedPrefix:
    @pytest.mark.parametrize("host", HOSTS)
    @pytest.mark.parametrize(
        ("prefix", "path", "attached"),
        [
            ("/api/", "/api/data", TOKEN),
            ("/api/", "/echo", NOTHING),
            ("/echo", "/echo", TOKEN),
            ("/", "/echo", TOKEN),
            ("/redirect/", "/echo", NOTHING),
        ],
    )
    def test_only_the_prefix_gets_the_token(
        self,
        service: Service,
        seen: list[dict[str, Any]],
        host: str,
        prefix: str,
        path: str,
        attached: tuple[bool, bool],
    ) -> None:
        with mounted(service, prefix, host) as session:
            response = session.get(service.url(path, host))
        assert response.status_code == 200
        assert [carried(hit) for hit in seen] == [attached]

    def test_mounted_prefix_is_accepted_by_the_service(self, service: Service) -> None:
        with mounted(service, "/api/") as session:
            response = session.get(service.url("/api/data"))
        assert response.json() == {"user": "Ada", "body": ""}

    @pytest.mark.parametrize(("mount_host", "request_host"), [HOSTS, HOSTS[::-1]])
    def test_the_other_host_name_is_another_prefix(
        self, service: Service, seen: list[dict[str, Any]], mount_host: str, request_host: str
    ) -> None:
        with mounted(service, "/", mount_host) as session:
            session.get(service.url("/echo", request_host))
        assert [carried(hit) for hit in seen] == [NOTHING]

    def test_hosts_rule_applies_under_the_mount(
        self, service: Service, seen: list[dict[str, Any]]
    ) -> None:
        auth = CAVETokenAuth(VALID_TOKEN, hosts=["127.0.0.1"])
        with requests.Session() as session:
            adapter = CAVEAuthAdapter(auth)
            for host in HOSTS:
                session.mount(service.url("/", host), adapter)
            for host in HOSTS:
                session.get(service.url("/echo", host))
        assert [carried(hit) for hit in seen] == [TOKEN, NOTHING]


class TestRedirects:
    # Mounted on the whole origin: test_rules.py (TestRedirects), for every way in.
    @pytest.mark.parametrize(
        ("prefix", "to_host", "to_path", "attached"),
        [
            pytest.param(
                "/redirect/",
                "127.0.0.1",
                "/echo",
                [TOKEN, NOTHING],
                id="same-host-out-of-prefix",
            ),
            pytest.param("/redirect/", "localhost", "/echo", [TOKEN, NOTHING], id="out-and-away"),
        ],
    )
    @pytest.mark.parametrize("status", [302, 307])
    def test_a_hop_out_of_the_prefix_gets_nothing(
        self,
        service: Service,
        seen: list[dict[str, Any]],
        prefix: str,
        to_host: str,
        to_path: str,
        attached: list[tuple[bool, bool]],
        status: int,
    ) -> None:
        with mounted(service, prefix) as session:
            response = session.get(service.redirect(service.url(to_path, to_host), status))
        assert response.status_code == 200
        assert [carried(hit) for hit in seen] == attached

    @pytest.mark.parametrize("host", HOSTS)
    @pytest.mark.parametrize(
        ("way", "status", "authorization"),
        [
            ("adapter", 200, BEARER),
            ("session.auth", 400, "Basic dXNlcjpzZWNyZXQ="),  # requests' rebuild_auth: netrc wins
        ],
    )
    def test_same_host_redirect_keeps_bearer_despite_netrc(
        self,
        service: Service,
        seen: list[dict[str, Any]],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        host: str,
        way: str,
        status: int,
        authorization: str,
    ) -> None:
        netrc = tmp_path / "netrc"
        netrc.write_text(f"machine {host} login user password secret\n")
        monkeypatch.setenv("NETRC", str(netrc))
        with requests.Session() as session:
            if way == "adapter":
                session.mount(service.url("/", host), CAVEAuthAdapter(CAVETokenAuth(VALID_TOKEN)))
            else:
                session.auth = CAVETokenAuth(VALID_TOKEN)
            response = session.get(service.redirect(service.url("/api/data", host), host=host))
        assert response.status_code == status
        assert [hit["headers"]["Authorization"] for hit in seen] == [BEARER, authorization]


class TestHTTPAdapterArguments:
    @pytest.mark.parametrize(
        ("kwargs", "attribute", "expected"),
        [
            ({}, "max_retries.total", 0),
            ({"max_retries": 3}, "max_retries.total", 3),
            ({"max_retries": Retry(total=5, connect=2)}, "max_retries.connect", 2),
            ({"pool_maxsize": 7}, "_pool_maxsize", 7),
            ({"pool_maxsize": 7}, "poolmanager.connection_pool_kw.maxsize", 7),
            ({"pool_connections": 3}, "_pool_connections", 3),
            ({"pool_connections": 3}, "poolmanager.pools._maxsize", 3),
            ({"pool_block": True}, "_pool_block", True),
            ({"pool_block": True}, "poolmanager.connection_pool_kw.block", True),
        ],
    )
    def test_applied(self, kwargs: dict[str, Any], attribute: str, expected: Any) -> None:
        value: Any = CAVEAuthAdapter(CAVETokenAuth(VALID_TOKEN), **kwargs)
        for name in attribute.split("."):
            value = value[name] if isinstance(value, dict) else getattr(value, name)
        assert value == expected

    def test_pool_size_reaches_the_connection_pool(self, service: Service) -> None:
        with mounted(service, pool_maxsize=7, max_retries=2) as session:
            assert session.get(service.url("/api/data")).status_code == 200
            adapter = session.get_adapter(service.url("/api/data"))
            pool = adapter.poolmanager.connection_from_url(service.url("/"))
        assert isinstance(adapter, CAVEAuthAdapter)
        assert pool.pool.maxsize == 7

    def test_default_auth_looks_the_token_up(self, service: Service, secrets: Path) -> None:
        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        adapter = CAVEAuthAdapter(max_retries=1)
        assert isinstance(adapter.auth, CAVETokenAuth)
        with requests.Session() as session:
            session.mount(service.url("/"), adapter)
            assert session.get(service.url("/api/data")).json()["user"] == "Ada"


class TestLibrarySession:
    def test_our_prefix_gets_the_token_and_keeps_the_librarys_settings(
        self, service: Service
    ) -> None:
        session = library_session()
        session.mount(service.url("/api/"), CAVEAuthAdapter(CAVETokenAuth(VALID_TOKEN)))
        ours = session.get(service.url("/api/data"))
        theirs = session.get(service.url("/echo")).json()
        assert ours.json()["user"] == "Ada"
        assert ours.request.headers["User-Agent"] == "somelib/1.0"
        assert ours.request.headers["X-Library"] == "somelib"
        assert "lib_session=abc" in ours.request.headers["Cookie"]
        assert "Authorization" not in theirs["headers"]
        assert theirs["headers"]["X-Library"] == "somelib"
        assert theirs["cookies"] == {"lib_session": "abc"}

    def test_server_sees_merged_cookies(self, service: Service, seen: list[dict[str, Any]]) -> None:
        session = library_session()
        session.mount(service.url("/"), CAVEAuthAdapter(CAVETokenAuth(VALID_TOKEN, cookie=True)))
        session.get(service.url("/echo"))
        assert seen[0]["cookies"] == {"lib_session": "abc", "middle_auth_token": VALID_TOKEN}
        assert seen[0]["headers"]["Authorization"] == BEARER
        assert dict(session.cookies) == {"lib_session": "abc"}

    def test_librarys_adapters_stay_for_other_urls(self, service: Service) -> None:
        session = library_session()
        theirs = session.get_adapter("https://elsewhere.example.org/")
        ours = CAVEAuthAdapter(CAVETokenAuth(VALID_TOKEN))
        session.mount(service.url("/api/"), ours)
        assert session.get_adapter(service.url("/api/data")) is ours
        assert session.get_adapter(service.url("/echo")) is theirs
        assert session.get_adapter("https://elsewhere.example.org/") is theirs


class TestPickle:
    def test_session_with_the_adapter(
        self, service: Service, secrets: Path, seen: list[dict[str, Any]]
    ) -> None:
        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        session = requests.Session()
        auth = CAVETokenAuth(hosts=["127.0.0.1"], cookie=False)
        session.mount(service.url("/api/"), CAVEAuthAdapter(auth, max_retries=3, pool_maxsize=5))
        assert session.get(service.url("/api/data")).status_code == 200  # caches filled
        data = pickle.dumps(session)
        assert VALID_TOKEN.encode() not in data
        copy = pickle.loads(data)
        adapter = copy.get_adapter(service.url("/api/data"))
        assert isinstance(adapter, CAVEAuthAdapter)
        assert adapter.auth.hosts == ["127.0.0.1"]
        assert (adapter.max_retries.total, adapter._pool_maxsize) == (3, 5)
        seen.clear()
        assert copy.get(service.url("/api/data")).json()["user"] == "Ada"
        copy.get(service.url("/echo"))
        assert seen[0]["headers"]["Authorization"] == BEARER
        assert "Cookie" not in seen[0]["headers"]
        assert "Authorization" not in seen[1]["headers"]

    def test_adapter_alone(self, service: Service) -> None:
        copy = pickle.loads(pickle.dumps(CAVEAuthAdapter(CAVETokenAuth(VALID_TOKEN))))
        with requests.Session() as session:
            session.mount(service.url("/"), copy)
            assert session.get(service.url("/api/data")).json()["user"] == "Ada"


class TestThreads:
    def test_one_adapter_under_20_threads(self, service: Service, secrets: Path) -> None:
        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        write_secret(secrets / f"localhost:{service.port}-cave-secret.json", {"token": OTHER_TOKEN})
        adapter = CAVEAuthAdapter(pool_maxsize=20)  # one adapter, one pool, one auth
        expected = {"127.0.0.1": "Ada", "localhost": "Grace"}
        start = threading.Barrier(20)
        results: list[tuple[str, str]] = []
        errors: list[BaseException] = []

        def work(index: int) -> None:
            try:
                session = requests.Session()  # not closed: that would close the shared adapter
                for host in HOSTS:
                    session.mount(service.url("/", host), adapter)
                start.wait(10)
                for step in range(10):
                    host = HOSTS[(index + step) % 2]
                    user = session.get(service.url("/api/data", host)).json()["user"]
                    results.append((host, user))
            except BaseException as error:  # reported below
                errors.append(error)

        in_threads(work, range(20), timeout=60)
        adapter.close()
        assert errors == []
        assert len(results) == 200
        assert {(host, user) for host, user in results} == set(expected.items())
