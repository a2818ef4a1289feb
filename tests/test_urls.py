"""urls.py on its own: origins, loopback, keys, ``hosts=`` patterns, server addresses."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cave_requests_auth.urls import (
    HostPatterns,
    Origin,
    new_token_url,
    normalize_server_address,
    origin_key,
    parse_origin,
    same_origin,
    server_netloc,
    token_page_url,
)


class TestParseOrigin:
    @pytest.mark.parametrize(
        ("url", "origin"),
        [
            ("https://Minnie.Example.ORG/x", Origin("https", "minnie.example.org", None)),
            ("HTTPS://host:8443", Origin("https", "host", 8443)),
            ("https://user:pw@host/", Origin("https", "host", None)),
            ("https://good@evil.example/", Origin("https", "evil.example", None)),
            ("http://localhost./x", Origin("http", "localhost.", None)),
            ("http://[::1]:80/", Origin("http", "[::1]", 80)),
            ("https://bücher.example/", Origin("https", "xn--bcher-kva.example", None)),
            ("https://host?x=/y", Origin("https", "host", None)),
            ("https://host#/y", Origin("https", "host", None)),
        ],
    )
    def test_where_the_url_goes(self, url: str, origin: Origin) -> None:
        assert parse_origin(url) == origin

    @pytest.mark.parametrize("url", ["", "no-scheme", "https://", "https:///path", "://host"])
    def test_no_host_is_none(self, url: str) -> None:
        assert parse_origin(url) is None

    @pytest.mark.parametrize(
        ("host", "loopback"),
        [
            ("localhost", True),
            ("127.0.0.1", True),
            ("127.255.0.9", True),
            ("[::1]", True),
            ("[0:0::1]", True),
            ("localhost.", False),  # a trailing dot: resolved through DNS
            ("127.0.0.1.", False),
            ("localhost.localdomain", False),
            ("128.0.0.1", False),
            ("[::2]", False),
        ],
    )
    def test_loopback_is_never_a_dns_answer(self, host: str, loopback: bool) -> None:
        origin = parse_origin(f"http://{host}/")
        assert origin is not None
        assert origin.is_loopback is loopback

    def test_file_names_drop_the_trailing_dot(self) -> None:
        origin = parse_origin("https://minnie.example.org.:8443/")
        assert origin is not None
        assert (origin.name, origin.file_netloc) == (
            "minnie.example.org",
            "minnie.example.org:8443",
        )
        assert origin.netloc == "minnie.example.org.:8443"


class TestOriginKeys:
    @pytest.mark.parametrize(
        ("url", "key"),
        [
            ("https://host/a/b", "https://host"),
            ("https://host", "https://host"),
            ("https://host?q=1", "https://host"),
            ("https://host#f", "https://host"),
            ("https://u@host:1/x", "https://u@host:1"),
        ],
    )
    def test_key(self, url: str, key: str) -> None:
        assert origin_key(url) == key

    @pytest.mark.parametrize(
        ("a", "b", "same"),
        [
            ("https://host/a", "https://HOST/b", True),
            ("https://host", "https://u@host/", True),
            ("https://host", "http://host", False),
            ("https://host", "https://host:444", False),
            ("http://localhost", "http://localhost.", False),
            ("https://host", "https://other", False),
        ],
    )
    def test_same_origin(self, a: str, b: str, same: bool) -> None:
        assert same_origin(origin_key(a), origin_key(b)) is same

    @given(st.text(max_size=40))
    def test_keys_never_raise(self, text: str) -> None:
        key = origin_key("https://" + text)
        assert key.startswith("https://")


class TestHostPatterns:
    @pytest.mark.parametrize(
        ("hosts", "url", "matches"),
        [
            (["minnie.example.org"], "https://MINNIE.example.org/", True),
            (["minnie.example.org"], "https://minnie.example.org./", True),
            (["Minnie.Example.Org."], "https://minnie.example.org/", True),
            (["minnie.example.org"], "https://a.minnie.example.org/", False),
            (["*.example.org"], "https://a.b.example.org/", True),
            (["*.example.org"], "https://example.org/", False),
            (["*.example.org"], "https://badexample.org/", False),
            (["bücher.example"], "https://xn--bcher-kva.example/", True),
            (["xn--bcher-kva.example"], "https://bücher.example/", True),
            (["::1"], "http://[0:0::1]:8000/", True),
            (["[::1]"], "http://[::1]/", True),
            (["127.0.0.1"], "http://127.0.0.1/", True),
            (["127.0.0.1"], "http://127.0.0.1./", False),
            (["*.0.0.1"], "http://127.0.0.1/", False),
        ],
    )
    def test_matches(self, hosts: list[str], url: str, matches: bool) -> None:
        origin = parse_origin(url)
        assert origin is not None
        assert HostPatterns(hosts).matches(origin) is matches

    @pytest.mark.parametrize(
        "entry",
        [".example.net", "", "*.", "https://host", "host:443", "host/path", "a b", "*.1.2.3.4"],
    )
    def test_an_entry_that_can_match_nothing_is_refused(self, entry: str) -> None:
        with pytest.raises(ValueError, match="hosts entry"):
            HostPatterns([entry])

    def test_the_leading_dot_hint_names_the_wildcard(self) -> None:
        with pytest.raises(ValueError, match=r"\*\.example\.net"):
            HostPatterns([".example.net"])

    def test_a_non_string_is_a_type_error(self) -> None:
        with pytest.raises(TypeError):
            HostPatterns([b"example.org"])  # type: ignore[list-item]


class TestServerAddress:
    @pytest.mark.parametrize(
        ("given", "normal"),
        [
            (None, "https://global.daf-apis.com"),
            ("minnie.example.org", "https://minnie.example.org"),
            ("https://minnie.example.org/", "https://minnie.example.org"),
            (" http://localhost:5000 ", "http://localhost:5000"),
        ],
    )
    def test_normalized(self, given: str | None, normal: str) -> None:
        assert normalize_server_address(given) == normal

    @pytest.mark.parametrize("given", ["ftp://host", "https://", "https:///x"])
    def test_refused(self, given: str) -> None:
        with pytest.raises(ValueError, match="server_address"):
            normalize_server_address(given)

    def test_pages(self) -> None:
        assert server_netloc("minnie.example.org:8443") == "minnie.example.org:8443"
        assert new_token_url("x.example").endswith("/auth/api/v1/create_token")
        assert token_page_url("x.example").endswith("/sticky_auth/settings/tokens")
