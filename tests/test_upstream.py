"""What this package assumes of requests and urllib3: one test per assumption.

An upgrade of either that breaks one fails here, under the assumption's name,
instead of deep inside a redirect test. Each docstring names the code that
relies on it.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies, rewind_body, select_proxy

from helpers import Service


class TestRequests:
    def test_prepared_request_copy_shares_its_hooks(self) -> None:
        """requests_adapter: a chain's hops find its Chain in the hooks they share."""
        request = requests.Request("GET", "https://a.example/").prepare()
        copy = request.copy()
        assert copy.hooks is request.hooks

    def test_prepared_request_copy_drops_attributes_it_does_not_know(self) -> None:
        """transport.requests: hops requests makes never carry SENT_ATTRIBUTE."""
        request = requests.Request("GET", "https://a.example/").prepare()
        request._cave_sent = object()  # type: ignore[attr-defined]
        assert not hasattr(request.copy(), "_cave_sent")

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
        """requests_adapter: the chain hook notes each hop's origin, whoever sent it."""
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
        """requests_adapter: the proxy decision uses the proxies send() receives."""
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
        """transport.urllib3: each hop is an inner urlopen call the chain is asked about."""
        calls: list[str] = []

        class Spy(urllib3.PoolManager):
            def urlopen(self, method: str, url: str, redirect: bool = True, **kw: Any) -> Any:
                calls.append(url)
                return super().urlopen(method, url, redirect, **kw)

        response = Spy().request("GET", service.redirect(service.url("/echo", "localhost")))
        assert response.status == 200
        assert len(calls) == 2

    def test_proxy_manager_names_its_forwarding_mode(self) -> None:
        """CAVEProxyManager: https is forwarded (seen by the proxy) only when asked."""
        manager = urllib3.ProxyManager("http://127.0.0.1:9")
        assert manager.proxy_config is not None
        assert manager.proxy_config.use_forwarding_for_https is False

    def test_parse_url_idna_encodes_and_keeps_a_trailing_dot(self) -> None:
        """urls.parse_origin decides as urllib3 connects: bücher → xn--, 'localhost.' kept."""
        assert urllib3.util.parse_url("https://Bücher.example/").host == "xn--bcher-kva.example"
        assert urllib3.util.parse_url("http://localhost./").host == "localhost."
