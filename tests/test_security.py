"""Adversarial tests: where the token may go, and what cannot make it go elsewhere.

Every case runs against real loopback servers: ``service`` (werkzeug, the real
middle_auth_client decorators) answers on 127.0.0.1 and, as another host to
requests, on localhost; ``recorder`` (raw http.server, see _loopback.Server)
answers on another port, on 127.0.0.2 or on ::1. Nothing leaves loopback: a
test that must be refused before connecting uses ``.invalid`` names.

The rules every way in keeps (redirect hops, plain http refused unsent, the cookie
jar, one retry after a change) are tested once, over every way in, in
test_rules.py. What stays here is specific to one way (requests' netrc, an adapter
on a broad prefix, a pool manager's ``Retry``) or to none (host files, hosts,
bad tokens, properties). Secret files: test_security_files.py. Leaks through
logs, warnings, messages and the command: test_leaks.py.
"""

from __future__ import annotations

import ast
import http.client
import io
import os
import threading
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote

import pytest
import requests
import urllib3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cave_requests_auth
from _loopback import Server
from cave_requests_auth import (
    AuthResponseError,
    CAVEAuthAdapter,
    CAVEAuthError,
    CAVEPoolManager,
    CAVETokenAuth,
    InsecureTransportError,
    InvalidTokenError,
    TokenFileError,
    TokenNotFoundError,
    auth_headers,
    find_token,
    save_token,
)
from helpers import (
    INVALID_TOKEN,
    OTHER_TOKEN,
    REDIRECTS,
    TIMEOUT,
    VALID_TOKEN,
    AuditLog,
    Service,
    bearer,
    fetch,
    has_token,
    prepared,
    raw_request,
    write_secret,
)


class TestRedirects:
    """Cases 1-3: a redirect carries the token to the same origin only."""

    @pytest.mark.parametrize("status", REDIRECTS)
    def test_pool_manager_strips_its_headers_whatever_the_retry_says(
        self, service: Service, seen: list[dict[str, Any]], status: int
    ) -> None:
        retries = urllib3.Retry(total=3, remove_headers_on_redirect=[])
        url = service.redirect(service.url("/echo", "localhost"), status)
        with CAVEPoolManager(CAVETokenAuth(VALID_TOKEN), retries=retries) as pool:
            response = pool.request(  # the request's own Retry too: urllib3 1.26 reads only that
                "GET",
                url,
                headers={"Cookie": "a=1", "X-Other": "kept"},
                retries=retries,
                timeout=TIMEOUT,
            )
        assert response.status == 200
        first, hop = seen
        assert has_token(first)
        assert not has_token(hop)
        assert hop["cookies"] == {"a": "1"}  # the caller's own cookie, kept as urllib3 was told
        assert hop["headers"]["X-Other"] == "kept"

    @pytest.mark.parametrize("status", [302, 307])
    def test_adapter_on_a_broad_prefix_keeps_the_token_on_its_host(
        self, service: Service, seen: list[dict[str, Any]], status: int
    ) -> None:
        url = service.redirect(service.url("/echo", "localhost"), status)
        code, _ = fetch("adapter", url, CAVETokenAuth(VALID_TOKEN), prefix="http://")
        assert code == 200
        assert has_token(seen[0])
        assert not has_token(seen[1])

    @pytest.fixture
    def netrc(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
        path = tmp_path / "netrc"
        path.write_text("machine 127.0.0.1\nlogin someone\npassword not-a-cave-token\n")
        monkeypatch.setenv("NETRC", str(path))
        return path

    @pytest.mark.parametrize("way", ["auth=", "session.auth"])
    def test_netrc_replaces_the_token_on_a_same_host_hop_with_an_auth_object(
        self, service: Service, seen: list[dict[str, Any]], netrc: Path, way: str
    ) -> None:
        """A documented limitation of requests, not ours to fix in an auth object.

        ``Session.rebuild_auth`` runs for each hop and, where ``trust_env`` is on
        and ``.netrc`` has an entry for the hop's host, sets Basic credentials on
        it; the auth object is not called again, so it cannot put the Bearer
        token back. The service answers 400 bad_auth_header, and the error says
        to mount CAVEAuthAdapter (next test).
        """
        url = service.redirect(service.url("/api/data"), 302)
        code, response = fetch(way, url, CAVETokenAuth(VALID_TOKEN))
        assert code == 400
        assert response.json()["error"] == "bad_auth_header"
        assert seen[0]["headers"]["Authorization"] == f"Bearer {VALID_TOKEN}"
        assert seen[1]["headers"]["Authorization"].startswith("Basic ")
        with pytest.raises(AuthResponseError, match="CAVEAuthAdapter") as info:
            fetch(way, url, CAVETokenAuth(VALID_TOKEN, raise_on_auth_error=True))
        assert info.value.code == "bad_auth_header"

    @pytest.mark.parametrize("status", REDIRECTS)
    def test_the_adapter_keeps_the_token_despite_netrc(
        self, service: Service, seen: list[dict[str, Any]], netrc: Path, status: int
    ) -> None:
        url = service.redirect(service.url("/api/data"), status)
        code, response = fetch("adapter", url, CAVETokenAuth(VALID_TOKEN))
        assert code == 200
        assert response.json()["user"] == "Ada"
        assert [hit["headers"]["Authorization"] for hit in seen] == [f"Bearer {VALID_TOKEN}"] * 2

    def test_netrc_is_in_effect(self, service: Service, seen: list[Any], netrc: Path) -> None:
        """The fixture works: without any auth, requests sends the netrc entry."""
        requests.get(service.url("/echo"), timeout=TIMEOUT)
        assert seen[0]["headers"]["Authorization"].startswith("Basic ")


class TestCookies:
    """Case 4: the cookie goes on the request, never into a cookie jar."""

    def test_header_as_without_the_auth_plus_the_token(self, service: Service) -> None:
        cookies = {"a": "1", "b": "2"}
        without = requests.get(service.url("/echo"), cookies=cookies).json()["headers"]["Cookie"]
        with_auth = requests.get(
            service.url("/echo"), cookies=cookies, auth=CAVETokenAuth(VALID_TOKEN, cookie=True)
        ).json()["headers"]["Cookie"]
        assert with_auth == f"{without}; middle_auth_token={VALID_TOKEN}"

    def test_request_cookies_do_not_reach_the_session_jar(self, service: Service) -> None:
        with requests.Session() as session:
            session.auth = CAVETokenAuth(VALID_TOKEN, cookie=True)
            session.get(service.url("/echo"), cookies={"x": "1"})
            assert list(session.cookies) == []


FILE_TOKENS = {
    "minnie.example.org": VALID_TOKEN,  # CloudVolume's <host> name: any port of that host
    "api.example.org:8443": VALID_TOKEN,  # a netloc with port: that port only
}


class TestHostFiles:
    """Cases 5-7: a host's file goes to that host only, and its name stays in the folder."""

    @pytest.fixture
    def host_files(self, secrets: Path) -> Path:
        for netloc, token in FILE_TOKENS.items():
            write_secret(secrets / f"{netloc}-cave-secret.json", {"token": token})
        write_secret(secrets / "cave-secret.json", {"token": OTHER_TOKEN})
        return secrets

    @pytest.mark.parametrize(
        ("url", "token"),
        [
            ("https://minnie.example.org/x", VALID_TOKEN),
            ("https://MINNIE.Example.ORG/x", VALID_TOKEN),
            ("https://minnie.example.org:443/x", VALID_TOKEN),
            ("https://minnie.example.org./x", VALID_TOKEN),
            ("https://user:pw@minnie.example.org/x", VALID_TOKEN),
            # SPEC step 4: <host>-cave-secret.json (CloudVolume's name) serves every
            # port of that host; only a <host:port> file is port-specific.
            ("https://minnie.example.org:8443/x", VALID_TOKEN),
            ("https://minnie.example.org.evil.org/x", OTHER_TOKEN),
            ("https://evil.org/minnie.example.org", OTHER_TOKEN),
            ("https://evil.org/minnie.example.org-cave-secret.json", OTHER_TOKEN),
            ("https://evil.org/?host=minnie.example.org", OTHER_TOKEN),
            ("https://minnie.example.org@evil.org/x", OTHER_TOKEN),
            ("https://minnie.example.org:443@evil.org/x", OTHER_TOKEN),
            ("https://evil.org#@minnie.example.org/", OTHER_TOKEN),
            ("https://evil.org?@minnie.example.org/", OTHER_TOKEN),
            ("https://evil.org\\@minnie.example.org/", OTHER_TOKEN),
            ("https://evilminnie.example.org/", OTHER_TOKEN),
            ("https://xminnie.example.org/", OTHER_TOKEN),
            ("https://api.example.org:8443/x", VALID_TOKEN),
            ("https://API.EXAMPLE.ORG:8443/x", VALID_TOKEN),
            ("https://me@api.example.org:8443/x", VALID_TOKEN),
            ("https://api.example.org/x", OTHER_TOKEN),
            ("https://api.example.org:443/x", OTHER_TOKEN),
            ("https://api.example.org:9443/x", OTHER_TOKEN),
            ("https://api.example.org:18443/x", OTHER_TOKEN),
            ("https://api.example.org:08443/x", VALID_TOKEN),  # the same port, written oddly
            ("https://api.example.org:8443@evil.org/x", OTHER_TOKEN),
            ("https://api.example.org.evil.org:8443/x", OTHER_TOKEN),
        ],
    )
    def test_made_up_hosts(self, host_files: Path, url: str, token: str) -> None:
        assert bearer(CAVETokenAuth()(raw_request(url))) == token
        assert find_token(url).token == token
        assert auth_headers(url)["Authorization"] == f"Bearer {token}"
        try:
            request = prepared(url)
        except requests.RequestException:
            return
        assert bearer(CAVETokenAuth()(request)) == token

    def test_loopback_hosts(
        self, service: Service, recorder: Server, secrets: Path, seen: list[Any]
    ) -> None:
        write_secret(secrets / f"127.0.0.1:{service.port}-cave-secret.json", {"token": VALID_TOKEN})
        write_secret(secrets / "cave-secret.json", {"token": OTHER_TOKEN})
        port = service.port
        expected = {
            service.url("/echo"): VALID_TOKEN,
            service.url("/echo", "localhost"): OTHER_TOKEN,
            f"http://127.0.0.1:{port}@localhost:{port}/echo": OTHER_TOKEN,
            f"http://localhost:{port}/echo?127.0.0.1:{port}": OTHER_TOKEN,
            f"http://localhost:{port}/127.0.0.1:{port}/../echo": OTHER_TOKEN,
        }
        auth = CAVETokenAuth()
        with requests.Session() as session:
            session.auth = auth
            got = {url: session.get(url).json()["headers"]["Authorization"] for url in expected}
            another_port = session.get(recorder.url("/echo")).json()["headers"]["Authorization"]
        assert got == {url: f"Bearer {token}" for url, token in expected.items()}
        assert another_port == f"Bearer {OTHER_TOKEN}"

    def test_a_host_file_without_port_serves_that_host_only(
        self, service: Service, recorder: Server, secrets: Path
    ) -> None:
        write_secret(secrets / "localhost-cave-secret.json", {"token": VALID_TOKEN})
        write_secret(secrets / "cave-secret.json", {"token": OTHER_TOKEN})
        with requests.Session() as session:
            session.auth = CAVETokenAuth()
            on_name = session.get(service.url("/echo", "localhost")).json()["headers"]
            on_name_other_port = session.get(recorder.url("/echo", "localhost")).json()["headers"]
            on_ip = session.get(service.url("/echo")).json()["headers"]
        assert on_name["Authorization"] == f"Bearer {VALID_TOKEN}"
        assert on_name_other_port["Authorization"] == f"Bearer {VALID_TOKEN}"
        assert on_ip["Authorization"] == f"Bearer {OTHER_TOKEN}"

    def test_a_long_host_name_falls_through_to_the_default_file(self, secrets: Path) -> None:
        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        host = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 50])  # 242 characters, valid DNS
        assert find_token(f"https://{host}/").token == VALID_TOKEN

    @pytest.mark.parametrize(
        ("url", "attached"),
        [
            ("https://a.example.org/", True),
            ("https://a.b.example.org/", True),
            ("https://A.Example.ORG./", True),
            ("https://a.example.org:8443/", True),
            ("https://user@a.example.org/", True),
            ("https://example.org/", False),
            ("https://.example.org/", False),
            ("https://example.org.evil.com/", False),
            ("https://a.example.org.evil.com/", False),
            ("https://a.example.org%2eevil.com/", False),
            ("https://badexample.org/", False),
            ("https://xexample.org/", False),
            ("https://a.example.org@evil.com/", False),
            ("https://a.example.org:443@evil.com/", False),
            ("https://evil.com/a.example.org", False),
            ("https://evil.com?.example.org", False),
            ("https://evil.com#.example.org", False),
            ("https://evil.com\\.example.org/", False),
            ("https://evil.com\\@a.example.org/", False),
            ("https://[::1]/", False),
        ],
    )
    def test_wildcard_hosts(self, url: str, attached: bool) -> None:
        auth = CAVETokenAuth(VALID_TOKEN, hosts=["*.example.org"], cookie=True)
        request = raw_request(url)
        request.headers["Cookie"] = "a=1"
        auth(request)
        assert (bearer(request) == VALID_TOKEN) is attached
        assert (request.headers["Cookie"] != "a=1") is attached
        if not attached:
            assert dict(request.headers) == {"Cookie": "a=1"}
        headers = auth_headers(url, token=VALID_TOKEN, hosts=["*.example.org"])
        assert bool(headers) is attached

    @pytest.fixture
    def decoys(self, tmp_path: Path, secrets: Path) -> dict[str, Path]:
        """Token files a naive join of the URL's host would reach; none may be read."""
        cloudvolume, home = secrets.parent, secrets.parent.parent
        places = {
            "..%2Fx": cloudvolume / "x-cave-secret.json",
            "..%2F..%2Fx": home / "x-cave-secret.json",
            "absolute": tmp_path / "abs-cave-secret.json",
            "upper": secrets / "MINNIE.EXAMPLE.ORG-cave-secret.json",
            "dot": secrets / "minnie.example.org.-cave-secret.json",
            "userinfo": secrets / "evil@minnie.example.org-cave-secret.json",
            "ipv6": secrets / "::1-cave-secret.json",
            "parent": cloudvolume / "cave-secret.json",
        }
        for path in places.values():
            write_secret(path, {"token": OTHER_TOKEN})
        write_secret(secrets / "minnie.example.org-cave-secret.json", {"token": VALID_TOKEN})
        return places

    @pytest.mark.parametrize(
        ("host", "token"),
        [
            ("..%2Fx", None),
            ("..%2F..%2Fx", None),
            ("%2e%2e%2Fx", None),
            ("..%2f..%2fx", None),
            ("ABSOLUTE", None),
            ("..", None),
            ("...", None),
            ("x@..%2F..%2Fx", None),
            ("[::1]:8443", None),
            ("[::1]", None),
            ("[::1%25..%2F..%2Fx]", None),
            ("MINNIE.EXAMPLE.ORG", VALID_TOKEN),
            ("minnie.example.org.", VALID_TOKEN),
            ("evil@minnie.example.org", VALID_TOKEN),
            ("evil:..%2F..@minnie.example.org", VALID_TOKEN),
            ("minnie.example.org\\..\\..\\x", VALID_TOKEN),
        ],
    )
    def test_host_names_never_escape_the_secrets_folder(
        self,
        tmp_path: Path,
        secrets: Path,
        decoys: dict[str, Path],
        audit: AuditLog,
        host: str,
        token: str | None,
    ) -> None:
        if host == "ABSOLUTE":
            host = quote(str(tmp_path / "abs"), safe="")
        url = f"https://{host}/x"
        results: list[str | None] = []
        for attempt in (
            lambda: find_token(url).token,
            lambda: bearer(CAVETokenAuth()(raw_request(url))),
            lambda: auth_headers(url).get("Authorization", "").removeprefix("Bearer ") or None,
        ):
            try:
                results.append(attempt())
            except (TokenNotFoundError, InsecureTransportError) as error:
                results.append(None)
                for path in getattr(error, "searched", ())[1:]:
                    assert os.path.dirname(path) == str(secrets)
        assert results == [token] * 3
        opened = audit.opened(tmp_path)
        # The hook sees the lookup: a file found is opened (a missing one is only stat'ed).
        assert bool(opened) is (token is not None)
        for path in opened:
            assert os.path.dirname(path) == str(secrets)
        assert not set(opened) & {str(path) for path in decoys.values()}


class TestTransport:
    """Cases 8-9: plain http only to loopback; verification and debug output untouched."""

    @pytest.mark.parametrize("url", ["http://localhost:x@evil.org/", "http://127.0.0.1.nip.io/"])
    def test_made_up_hosts_that_look_like_loopback(self, url: str) -> None:
        with pytest.raises(InsecureTransportError):
            CAVETokenAuth(VALID_TOKEN)(raw_request(url))

    @pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1"])
    def test_loopback_addresses_get_the_token_over_http(
        self, recorder_on: Callable[[str], Server], host: str
    ) -> None:
        server = recorder_on(host)
        response = requests.get(
            server.url("/echo"), auth=CAVETokenAuth(VALID_TOKEN), timeout=TIMEOUT
        )
        assert response.status_code == 200
        (hit,) = server.seen
        assert hit.authorization == f"Bearer {VALID_TOKEN}"

    def test_localhost_gets_the_token_over_http(self, service: Service, seen: list[Any]) -> None:
        requests.get(service.url("/echo", "localhost"), auth=CAVETokenAuth(VALID_TOKEN))
        assert has_token(seen[0])

    def test_allow_insecure_http_is_needed_for_other_hosts(self) -> None:
        auth = CAVETokenAuth(VALID_TOKEN, allow_insecure_http=True)
        assert bearer(auth(raw_request("http://minnie.example.invalid/"))) == VALID_TOKEN

    def test_source_never_disables_verification_or_turns_on_debug_output(self) -> None:
        package = Path(cave_requests_auth.__file__).parent
        found: list[str] = []
        for path in sorted(package.glob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                where = f"{path.name}:{getattr(node, 'lineno', '?')}"
                if (
                    isinstance(node, ast.keyword)
                    and node.arg in ("verify", "cert_reqs")
                    and isinstance(node.value, ast.Constant)
                    and node.value.value in (False, "CERT_NONE")
                ):
                    found.append(f"{where} {node.arg}={node.value.value!r}")
                if isinstance(node, ast.Attribute) and node.attr in (
                    "debuglevel",
                    "set_debuglevel",
                    "disable_warnings",
                    "CERT_NONE",
                    "_create_unverified_context",
                    "check_hostname",
                ):
                    found.append(f"{where} .{node.attr}")
                if isinstance(node, ast.Name) and node.id in ("debuglevel", "set_debuglevel"):
                    found.append(f"{where} {node.id}")
                if isinstance(node, ast.Assign):
                    for target in node.targets:
                        if isinstance(target, ast.Attribute) and target.attr == "verify":
                            found.append(f"{where} .verify =")
        assert found == []

    def test_verification_stays_on_at_run_time(self, tls_service: Service, secrets: Path) -> None:
        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        tls_service.seen.clear()
        url = tls_service.url("/api/data")
        auth = CAVETokenAuth()
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(url, auth=auth, timeout=TIMEOUT)  # the test CA is not trusted
        with requests.Session() as session:
            session.mount("https://", CAVEAuthAdapter(auth))
            with pytest.raises(requests.exceptions.SSLError):
                session.get(url, timeout=TIMEOUT)
        with pytest.raises(urllib3.exceptions.MaxRetryError) as info:
            CAVEPoolManager(auth, retries=0).request("GET", url, timeout=TIMEOUT)
        assert isinstance(info.value.reason, urllib3.exceptions.SSLError)
        assert tls_service.seen == []
        ok = requests.get(url, auth=auth, verify=tls_service.ca_file, timeout=TIMEOUT)
        assert ok.json()["user"] == "Ada"
        assert http.client.HTTPConnection.debuglevel == 0
        assert urllib3.connection.HTTPConnection.debuglevel == 0
        assert requests.Session().verify is True


# Tokens that are not bearer tokens (RFC 6750); each holds VALID_TOKEN, which must
# then appear nowhere: not sent, not in the message.
BAD_TOKENS = [
    pytest.param(VALID_TOKEN + "\r\nX-Injected: 1", id="CRLF"),
    pytest.param(VALID_TOKEN + "\nX-Injected: 1", id="LF"),
    pytest.param(VALID_TOKEN + "\rX", id="CR"),
    pytest.param(VALID_TOKEN + "\r\n " + VALID_TOKEN, id="folded-header"),
    pytest.param(VALID_TOKEN + "\x00x", id="NUL"),
    pytest.param(VALID_TOKEN + "\x7fx", id="DEL"),
    pytest.param(VALID_TOKEN + "\tx", id="tab"),
    pytest.param(VALID_TOKEN + " x", id="inner-space"),
    pytest.param(VALID_TOKEN + ";other=1", id="semicolon"),
    pytest.param(VALID_TOKEN + ",x", id="comma"),
    pytest.param(VALID_TOKEN + "é", id="non-ASCII"),
    pytest.param(VALID_TOKEN + "\u2028x", id="line-separator"),
    pytest.param(VALID_TOKEN + "=x", id="inner-equals"),
    pytest.param("", id="empty"),
    pytest.param(" \r\n", id="white-space-only"),
    pytest.param(VALID_TOKEN * 3200, id="100KB"),
]
NON_STRINGS = [
    pytest.param(42, id="int"),
    pytest.param(VALID_TOKEN.encode(), id="bytes"),
    pytest.param({"token": VALID_TOKEN}, id="dict"),
    pytest.param([VALID_TOKEN], id="list"),
    pytest.param(1.5, id="float"),
    pytest.param(True, id="bool"),
]


class TestBadInput:
    """Cases 17-18: a token that is not a bearer token is refused before anything is sent."""

    @pytest.mark.parametrize("token", [*BAD_TOKENS, *NON_STRINGS])
    def test_given_as_argument(self, service: Service, seen: list[Any], token: Any) -> None:
        with pytest.raises(InvalidTokenError) as info:
            requests.get(service.url("/echo"), auth=CAVETokenAuth(token))
        with pytest.raises(InvalidTokenError):
            auth_headers(service.url("/echo"), token=token)
        assert seen == []
        assert "token= argument" in str(info.value)
        assert VALID_TOKEN not in str(info.value)

    @pytest.mark.parametrize("token", [p for p in BAD_TOKENS if "NUL" not in p.id])
    def test_in_the_environment(
        self, service: Service, seen: list[Any], monkeypatch: pytest.MonkeyPatch, token: str
    ) -> None:
        monkeypatch.setenv("CAVE_TOKEN", token)
        if not token.strip():  # an empty CAVE_TOKEN counts as unset: nothing found
            with pytest.raises(TokenNotFoundError):
                requests.get(service.url("/echo"), auth=CAVETokenAuth())
        else:
            with pytest.raises(InvalidTokenError) as info:
                requests.get(service.url("/echo"), auth=CAVETokenAuth())
            assert "CAVE_TOKEN" in str(info.value)
            assert VALID_TOKEN not in str(info.value)
        assert seen == []

    @pytest.mark.parametrize("token", BAD_TOKENS)
    def test_in_a_file(self, service: Service, seen: list[Any], secrets: Path, token: str) -> None:
        path = write_secret(secrets / "cave-secret.json", {"token": token})
        with pytest.raises(InvalidTokenError) as info:
            requests.get(service.url("/echo"), auth=CAVETokenAuth())
        assert seen == []
        assert str(path) in str(info.value)
        assert VALID_TOKEN not in str(info.value)

    @pytest.mark.parametrize("value", [None, 42, [VALID_TOKEN], {"value": VALID_TOKEN}, True, 1.5])
    def test_not_a_string_in_a_file(
        self, service: Service, seen: list[Any], secrets: Path, value: Any
    ) -> None:
        path = write_secret(secrets / "cave-secret.json", {"token": value})
        with pytest.raises(TokenFileError) as info:
            requests.get(service.url("/echo"), auth=CAVETokenAuth())
        assert seen == []
        assert info.value.path == str(path)
        assert VALID_TOKEN not in str(info.value)

    @pytest.mark.parametrize("token", BAD_TOKENS[:8])
    def test_save_refuses_it(self, secrets: Path, token: str) -> None:
        with pytest.raises(InvalidTokenError):
            save_token(token)
        assert not secrets.exists()

    @pytest.mark.parametrize(
        "pasted", [VALID_TOKEN + "\n", VALID_TOKEN + "\r\n", f"  {VALID_TOKEN}\t\n"]
    )
    def test_a_pasted_newline_is_stripped(
        self,
        service: Service,
        seen: list[dict[str, Any]],
        secrets: Path,
        monkeypatch: pytest.MonkeyPatch,
        pasted: str,
    ) -> None:
        write_secret(secrets / "cave-secret.json", {"token": pasted})
        from_file = requests.get(service.url("/api/data"), auth=CAVETokenAuth(cookie=True))
        from_argument = requests.get(
            service.url("/api/data"), auth=CAVETokenAuth(pasted, cookie=True)
        )
        monkeypatch.setenv("CAVE_TOKEN", pasted)
        from_environment = requests.get(service.url("/api/data"), auth=CAVETokenAuth(cookie=True))
        for response in (from_file, from_argument, from_environment):
            assert response.json()["user"] == "Ada"
        assert [hit["headers"]["Authorization"] for hit in seen] == [f"Bearer {VALID_TOKEN}"] * 3
        assert [hit["cookies"]["middle_auth_token"] for hit in seen] == [VALID_TOKEN] * 3


BEARER_ALPHABET = "ABCXYZabcxyz0189-._~+/"
TOKEN_TEXT = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=BEARER_ALPHABET + "= \t\r\n\x00\x7f;,\"'é\u00a0\u2028\x0b\x0c", max_size=60),
    st.builds(
        lambda head, body, pad, tail: head + body + pad + tail,
        st.text(alphabet=" \t\r\n", max_size=2),
        st.text(alphabet=BEARER_ALPHABET, min_size=1, max_size=40),
        st.text(alphabet="=", max_size=3),
        st.text(alphabet=" \t\r\n\x0b\x0c\x1c", max_size=2),
    ),
)
HOST_PIECES = st.one_of(
    st.sampled_from(
        [
            "minnie.example.org",
            "MINNIE.example.ORG.",
            "localhost",
            "127.0.0.1",
            "127.0.0.2",
            "[::1]",
            "[::1%25lo]",
            "[fe80::1%25eth0]",
            "[::ffff:127.0.0.1]",
            "[v1.x]",
            "[::1",
            "::1",
            "münchen.example",
            "xn--mnchen-3ya.example",
            "%2e%2e",
            "..%2F..%2Fx",
            "a%00b",
            "a%2fb",
            "ex%41mple.org",
            "..",
            ".",
            "",
            "a" * 64 + ".org",
            ".".join(["a" * 63] * 4),
            "\u0661\u0662\u0663",
            "ＥＸＡＭＰＬＥ.org",
        ]
    ),
    st.text(max_size=20),
    st.text(alphabet="abc.-_~%25[]:@\\/?#", max_size=12),
)
URLISH = st.builds(
    lambda scheme, userinfo, host, port, path: f"{scheme}{userinfo}{host}{port}{path}",
    st.sampled_from(
        ["https://", "http://", "HTTPS://", "ws://", "ftp://", "//", "", "https:/", "file:///"]
    ),
    st.sampled_from(["", "user@", "user:pw@", "localhost:x@", "a@b@", "%40@", ":@", "127.0.0.1@"]),
    HOST_PIECES,
    st.sampled_from(["", ":443", ":8443", ":0", ":65536", ":-1", ":x", ":", ":99999999999"]),
    st.sampled_from(["", "/", "/x?y#z", "?q", "#f", "\\..\\x", "/%2e%2e/", "/\x00", " x"]),
)
SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


class TestProperties:
    """Case 18, with hypothesis."""

    @SETTINGS
    @given(value=TOKEN_TEXT)
    def test_a_token_is_sent_exactly_or_refused(self, value: str) -> None:
        url = "https://minnie.example.org/"
        try:
            auth = CAVETokenAuth(value)
        except InvalidTokenError:
            with pytest.raises(InvalidTokenError):
                auth_headers(url, token=value)
            return
        token = value.strip()
        assert auth(raw_request(url)).headers["Authorization"] == f"Bearer {token}"
        assert auth_headers(url, token=value) == {"Authorization": f"Bearer {token}"}
        # What was accepted is a header value requests itself would accept.
        requests.utils.check_header_validity(("Authorization", f"Bearer {token}"))
        assert token.isascii()
        assert not any(c.isspace() or ord(c) < 0x21 or c in ";,\x7f" for c in token)

    @SETTINGS
    @given(url=st.one_of(st.text(max_size=80), URLISH))
    def test_any_url_gives_a_header_or_an_error_of_the_tree(self, secrets: Path, url: str) -> None:
        for auth in (
            CAVETokenAuth(VALID_TOKEN),
            CAVETokenAuth(),
            CAVETokenAuth(hosts=["*.example.org"]),
        ):
            try:
                request = auth(raw_request(url))
            except CAVEAuthError:
                pass
            else:
                assert request.headers.get("Authorization") in (None, f"Bearer {VALID_TOKEN}")
        try:
            headers = auth_headers(url, token=VALID_TOKEN)
        except CAVEAuthError:
            pass
        else:
            assert headers in ({}, {"Authorization": f"Bearer {VALID_TOKEN}"})


class TestRetries:
    """Cases 20-23: one re-send at most, only where the token source changed."""

    @pytest.mark.parametrize("way", ["session.auth", "adapter"])
    def test_a_source_that_changes_on_every_answer_gets_one_retry(
        self, recorder: Server, secrets: Path, way: str
    ) -> None:
        path = write_secret(secrets / "cave-secret.json", {"token": f"{0:032x}"})
        counter = iter(range(1, 100))

        def rotate(hit: Any) -> None:
            save_token(f"{next(counter):032x}", overwrite=True, write_server_file=False)

        auth = CAVETokenAuth()
        auth(prepared(recorder.url("/401")))  # the first token is cached
        recorder.on_hit = rotate
        code, response = fetch(way, recorder.url("/401"), auth)
        assert code == 401
        assert len(recorder.seen) == 2
        assert len(response.history) == 1
        assert path.exists()

    def test_401_after_a_redirect_with_a_broad_adapter(
        self, service: Service, seen: list[dict[str, Any]], secrets: Path
    ) -> None:
        path = write_secret(secrets / "cave-secret.json", {"token": INVALID_TOKEN})
        auth = CAVETokenAuth()
        auth(prepared(service.url("/")))
        auth(prepared(service.url("/", "localhost")))
        write_secret(path, {"token": VALID_TOKEN})
        url = service.redirect(service.url("/always401", "localhost"), 307)
        fetch("adapter", url, auth, prefix="http://")
        assert len(seen) == 2
        assert not has_token(seen[1])

    @pytest.mark.parametrize(
        ("make_body", "expected"),
        [
            pytest.param(lambda tmp: b"raw \x00 bytes", "raw \x00 bytes", id="bytes"),
            pytest.param(lambda tmp: "some text", "some text", id="str"),
            pytest.param(lambda tmp: {"a": "1", "b": "2"}, "a=1&b=2", id="form"),
            pytest.param(
                lambda tmp: seeked(io.BytesIO(b"abcpayload"), 3), "payload", id="BytesIO@3"
            ),
            pytest.param(lambda tmp: opened_at(tmp, 3), "payload", id="file@3"),
        ],
    )
    def test_bodies_are_sent_again_as_they_were(
        self,
        service: Service,
        seen: list[dict[str, Any]],
        secrets: Path,
        tmp_path: Path,
        make_body: Callable[[Path], Any],
        expected: str,
    ) -> None:
        path = write_secret(secrets / "cave-secret.json", {"token": INVALID_TOKEN})
        auth = CAVETokenAuth()
        assert requests.get(service.url("/api/data"), auth=auth, timeout=TIMEOUT).status_code == 401
        write_secret(path, {"token": VALID_TOKEN})
        seen.clear()
        body = make_body(tmp_path)
        try:
            response = requests.post(
                service.url("/api/data"), data=body, auth=auth, timeout=TIMEOUT
            )
        finally:
            if hasattr(body, "close"):
                body.close()
        assert response.status_code == 200
        assert response.json() == {"user": "Ada", "body": expected}
        assert [r.status_code for r in response.history] == [401]
        assert [hit["headers"]["Authorization"][7:] for hit in seen] == [INVALID_TOKEN, VALID_TOKEN]
        assert len({hit["headers"].get("Content-Length") for hit in seen}) == 1

    @pytest.mark.parametrize("kind", ["generator", "pipe"])
    def test_one_shot_bodies_are_not_sent_again(
        self, service: Service, seen: list[dict[str, Any]], secrets: Path, kind: str
    ) -> None:
        path = write_secret(secrets / "cave-secret.json", {"token": INVALID_TOKEN})
        auth = CAVETokenAuth()
        assert requests.get(service.url("/api/data"), auth=auth, timeout=TIMEOUT).status_code == 401
        write_secret(path, {"token": VALID_TOKEN})
        seen.clear()
        if kind == "generator":
            body: Any = (chunk for chunk in [b"one", b"two"])
        else:
            read_end, write_end = os.pipe()
            os.write(write_end, b"one two")
            os.close(write_end)
            body = os.fdopen(read_end, "rb")
        with body if kind == "pipe" else io.BytesIO():
            response = requests.post(
                service.url("/api/data"), data=body, auth=auth, timeout=TIMEOUT
            )
        assert response.status_code == 401
        assert response.history == []
        assert len(seen) == 1
        # The token did change: the next request uses it.
        assert requests.get(service.url("/api/data"), auth=auth, timeout=TIMEOUT).status_code == 200

    def test_threads_share_one_auth(self, recorder: Server, secrets: Path) -> None:
        """20 threads, 200s from 127.0.0.1 and 401s from localhost until its token changes."""
        write_secret(
            secrets / f"127.0.0.1:{recorder.port}-cave-secret.json", {"token": VALID_TOKEN}
        )
        localhost_file = secrets / f"localhost:{recorder.port}-cave-secret.json"
        write_secret(localhost_file, {"token": INVALID_TOKEN})
        auth = CAVETokenAuth(cookie=True)
        threads, rounds = 20, 4
        barrier = threading.Barrier(threads + 1)
        errors: list[BaseException] = []
        results: list[tuple[int, str, requests.Response]] = []
        lock = threading.Lock()

        def work(number: int) -> None:
            try:
                with requests.Session() as session:
                    session.auth = auth
                    for round in range(rounds):
                        if round == 1:
                            barrier.wait(10)  # round 0 done everywhere
                            barrier.wait(10)  # the token of localhost has changed
                        for path, host in (("/echo", "127.0.0.1"), ("/auth", "localhost")):
                            tag = f"{number}-{round}"
                            url = recorder.url(f"{path}?t={tag}", host)
                            response = session.get(url, timeout=TIMEOUT)
                            with lock:
                                results.append((round, tag, response))
            except BaseException as error:  # reported below
                errors.append(error)

        workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
        for worker in workers:
            worker.start()
        barrier.wait(10)
        save_token(OTHER_TOKEN, token_file=localhost_file, overwrite=True)
        barrier.wait(10)
        for worker in workers:
            worker.join(20)
        assert errors == []
        assert len(results) == threads * rounds * 2

        hits: dict[str, list[Any]] = {}
        for hit in recorder.seen:
            hits.setdefault(hit.target, []).append(hit)
        retried = 0
        for round, _, response in results:
            at_server = hits[response.url.split(f":{recorder.port}", 1)[1]]
            sent = [hit.authorization for hit in at_server]
            if "/echo" in response.url:
                assert response.status_code == 200
                assert sent == [f"Bearer {VALID_TOKEN}"]
                assert response.json()["headers"]["Cookie"] == f"middle_auth_token={VALID_TOKEN}"
                continue
            if round == 0:
                assert (response.status_code, response.history, sent) == (
                    401,
                    [],
                    [f"Bearer {INVALID_TOKEN}"],
                )
                continue
            assert response.status_code == 200
            assert response.request.headers["Authorization"] == sent[-1] == f"Bearer {OTHER_TOKEN}"
            if response.history:
                retried += 1
                (refused,) = response.history
                assert refused.status_code == 401
                assert sent == [f"Bearer {INVALID_TOKEN}", f"Bearer {OTHER_TOKEN}"]
                # The 401 was read to the end and closed...
                assert refused._content_consumed
                assert refused.raw.closed
                # ...before the re-send, which went out on the very same connection.
                assert at_server[0].client_port == at_server[1].client_port
            else:
                assert sent == [f"Bearer {OTHER_TOKEN}"]
        assert retried >= 1


def seeked(body: io.BytesIO, offset: int) -> io.BytesIO:
    body.seek(offset)
    return body


def opened_at(folder: Path, offset: int) -> Any:
    path = folder / "body.bin"
    path.write_bytes(b"abcpayload")
    file = open(path, "rb")  # noqa: SIM115  (the test closes it)
    file.seek(offset)
    return file
