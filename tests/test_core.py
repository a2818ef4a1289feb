"""The core's decisions, on values alone: no server, no HTTP library.

Every binding asks these; the binding tests check that each way in does what
they say. Exhaustive where the inputs are few (schemes × hosts × proxies ×
allow_insecure_http; chains of hops).
"""

from __future__ import annotations

import itertools
import json
import logging
import pickle
from typing import Any, ClassVar

import pytest

from cave_requests_auth import InsecureTransportError, TokenNotFoundError
from cave_requests_auth.core import MAX_CACHED_ORIGINS, MAX_REPORTED, Chain, Credentials
from cave_requests_auth.refusals import Answer, describe, report
from helpers import INVALID_TOKEN, OTHER_TOKEN, VALID_TOKEN, write_secret

PROXY = "http://user:secret@proxy.invalid:3128"
JSON = "application/json"
INVALID = b'{"error": "invalid_token"}'


def through(proxy: str | None) -> Any:
    return lambda url: proxy


SCHEMES = ("https", "http", "ftp")


class TestTransport:
    HOSTS: ClassVar[dict[str, bool]] = {
        "remote.example.org": False,
        "localhost": True,
        "127.0.0.1": True,
        "127.3.4.5": True,
        "[::1]": True,
        "localhost.": False,  # resolved through DNS
        "127.0.0.1.": False,
        "localhost.example.org": False,
        "[::2]": False,
    }

    @pytest.mark.parametrize(
        ("scheme", "host", "proxy", "forwards_https", "insecure"),
        list(itertools.product(SCHEMES, HOSTS, [None, PROXY], [False, True], [False, True])),
    )
    def test_every_combination(
        self, scheme: str, host: str, proxy: str | None, forwards_https: bool, insecure: bool
    ) -> None:
        """https is seen by a proxy only where the binding forwards it (no CONNECT tunnel)."""
        credentials = Credentials(VALID_TOKEN, allow_insecure_http=insecure)
        url = f"{scheme}://{host}:8443/path"
        seen_by_proxy = proxy is not None and (scheme == "http" or forwards_https)
        allowed = insecure or (
            not seen_by_proxy and (scheme == "https" or (scheme == "http" and self.HOSTS[host]))
        )
        if allowed:
            attachment = credentials.attachment(url, through(proxy), forwards_https=forwards_https)
            assert attachment is not None
            assert attachment.header == f"Bearer {VALID_TOKEN}"
        else:
            with pytest.raises(InsecureTransportError) as info:
                credentials.attachment(url, through(proxy), forwards_https=forwards_https)
            assert VALID_TOKEN not in str(info.value)
            assert "secret" not in str(info.value)  # the proxy's user info is never named

    def test_the_proxy_is_asked_only_where_it_matters(self) -> None:
        asked: list[str] = []

        def proxy_of(url: str) -> str | None:
            asked.append(url)
            return None

        credentials = Credentials(VALID_TOKEN, allow_insecure_http=True)
        credentials.attachment("http://remote.example.org/", proxy_of)
        assert asked == []  # allowed whatever the route
        Credentials(VALID_TOKEN).attachment("http://localhost/", proxy_of)
        assert asked == ["http://localhost/"]

    def test_a_proxy_is_asked_on_every_request_not_cached(self) -> None:
        credentials = Credentials(VALID_TOKEN)
        assert credentials.attachment("http://localhost:1/", through(None)) is not None
        with pytest.raises(InsecureTransportError, match="proxy"):
            credentials.attachment("http://localhost:1/", through(PROXY))
        assert credentials.attachment("http://localhost:1/", through(None)) is not None

    def test_no_token_found_and_not_required_needs_no_direct_route(self) -> None:
        credentials = Credentials(required=False)
        attachment = credentials.attachment("http://localhost/", through(PROXY))
        assert attachment is not None
        assert attachment.header is None

    def test_hosts_outside_the_list_are_left_alone_whatever_the_scheme(self) -> None:
        credentials = Credentials(VALID_TOKEN, hosts=["minnie.example.org"])
        assert credentials.attachment("http://other.example.org/", through(PROXY)) is None
        with pytest.raises(InsecureTransportError):
            credentials.attachment("http://minnie.example.org/")

    def test_a_url_without_a_host_is_refused(self) -> None:
        with pytest.raises(InsecureTransportError, match="without a host"):
            Credentials(VALID_TOKEN).attachment("https:///path")


class TestChain:
    FIRST = "https://a.example/"
    SAME = "https://a.example/other?x=1"
    OTHER = "https://b.example/"
    PORT = "https://a.example:444/"
    PLAIN = "http://a.example/"

    @pytest.mark.parametrize(
        ("hops", "carried"),
        [
            ([SAME], [True]),
            ([SAME, SAME], [True, True]),
            ([OTHER], [False]),
            ([PORT], [False]),
            ([PLAIN], [False]),
            ([OTHER, FIRST], [False, False]),  # origin -> other -> origin
            ([SAME, OTHER, SAME], [True, False, False]),
            ([OTHER, OTHER, FIRST], [False, False, False]),
        ],
    )
    def test_a_hop_carries_the_token_only_while_the_chain_never_left(
        self, hops: list[str], carried: list[bool]
    ) -> None:
        credentials = Credentials(VALID_TOKEN)
        chain = credentials.start(self.FIRST)
        assert [credentials.hop(chain, url) is not None for url in hops] == carried

    def test_a_chain_that_began_without_a_token_gives_none(self) -> None:
        chain = Chain("https://a.example", None)
        assert chain.hop(self.SAME) is None

    def test_a_hop_seen_elsewhere_ends_the_token(self) -> None:
        credentials = Credentials(VALID_TOKEN)
        chain = credentials.start(self.FIRST)
        chain.saw(self.OTHER)  # a hop another adapter sent
        assert credentials.hop(chain, self.FIRST) is None

    def test_a_loopback_hop_through_a_proxy_gets_nothing(self) -> None:
        credentials = Credentials(VALID_TOKEN)
        chain = credentials.start("http://localhost:1/")
        assert credentials.hop(chain, "http://localhost:1/b", through(PROXY)) is None

    def test_chains_pickle(self) -> None:
        chain = Credentials(OTHER_TOKEN).start(self.FIRST)
        chain.saw(self.OTHER)
        copy = pickle.loads(pickle.dumps(chain))
        assert (copy.key, copy.left) == (chain.key, True)


class TestRetry:
    def file_credentials(self, tmp_path: Any, token: str) -> tuple[Credentials, Any]:
        path = write_secret(tmp_path / "token.json", {"token": token})
        return Credentials(token_file=path), path

    def test_a_changed_file_gives_the_new_token_once(self, tmp_path: Any) -> None:
        credentials, path = self.file_credentials(tmp_path, INVALID_TOKEN)
        url = "https://a.example/x"
        sent = credentials.attachment(url)
        write_secret(path, {"token": VALID_TOKEN})
        newer = credentials.retry_with(
            url, sent, 401, JSON, INVALID, from_hop=False, rewindable=True
        )
        assert newer is not None
        assert newer.header == f"Bearer {VALID_TOKEN}"
        again = credentials.retry_with(
            url, newer, 401, JSON, INVALID, from_hop=False, rewindable=True
        )
        assert again is None  # the file holds the token just refused

    @pytest.mark.parametrize(
        ("status", "content_type", "body", "from_hop", "rewindable"),
        [
            (403, JSON, INVALID, False, True),
            (401, JSON, b'{"error": "no_token"}', False, True),
            (401, "text/plain", INVALID, False, True),
            (401, JSON, b"not json", False, True),
            (401, JSON, INVALID, True, True),
            (401, JSON, INVALID, False, False),
        ],
    )
    def test_no_retry(
        self,
        tmp_path: Any,
        status: int,
        content_type: str,
        body: bytes,
        from_hop: bool,
        rewindable: bool,
    ) -> None:
        credentials, path = self.file_credentials(tmp_path, INVALID_TOKEN)
        url = "https://a.example/x"
        sent = credentials.attachment(url)
        write_secret(path, {"token": VALID_TOKEN})
        assert (
            credentials.retry_with(
                url, sent, status, content_type, body, from_hop=from_hop, rewindable=rewindable
            )
            is None
        )

    def test_an_explicit_token_is_never_reloaded(self) -> None:
        credentials = Credentials(INVALID_TOKEN)
        sent = credentials.attachment("https://a.example/")
        assert (
            credentials.retry_with(
                "https://a.example/", sent, 401, JSON, INVALID, from_hop=False, rewindable=True
            )
            is None
        )

    def test_a_token_gone_from_the_source_gives_no_retry(self, tmp_path: Any) -> None:
        credentials, path = self.file_credentials(tmp_path, INVALID_TOKEN)
        sent = credentials.attachment("https://a.example/")
        path.unlink()
        with pytest.raises(TokenNotFoundError):
            credentials.attachment("https://b.example/")
        assert (
            credentials.retry_with(
                "https://a.example/", sent, 401, JSON, INVALID, from_hop=False, rewindable=True
            )
            is None
        )


class TestBounds:
    def test_the_origin_cache_is_bounded(self) -> None:
        credentials = Credentials(VALID_TOKEN)
        for n in range(MAX_CACHED_ORIGINS + 50):
            credentials.attachment(f"https://host{n}.example/")
        assert len(credentials._decisions) == MAX_CACHED_ORIGINS

    def test_refusals_are_reported_once_per_origin_and_code_within_a_bound(self) -> None:
        credentials = Credentials(VALID_TOKEN)
        assert credentials.first_report("https://a.example/x", "invalid_token")
        assert not credentials.first_report("https://a.example/y", "invalid_token")
        assert credentials.first_report("https://a.example/y", "missing_tos")
        for n in range(MAX_REPORTED * 3):
            credentials.first_report(f"https://h{n}.example/", "invalid_token")
        assert len(credentials._reported) == MAX_REPORTED


def answer(**kw: Any) -> Answer:
    values: dict[str, Any] = {"method": "GET", "url": "https://a.example/api", "status": 401}
    values.update(kw)
    return Answer(**values)


class TestRefusals:
    def test_a_foreign_hop_without_a_token_is_never_blamed(self) -> None:
        sent = Credentials(VALID_TOKEN).attachment("https://a.example/api")
        first = answer(status=302, location="https://b.example/", bearer=VALID_TOKEN, sent=sent)
        body = b'{"error": "invalid_token", "message": "Invalid"}'
        foreign = answer(
            url="https://b.example/", content_type="application/json", body=body, elsewhere=True
        )
        assert describe([first, foreign]) is None

    def test_a_same_origin_hop_without_the_bearer_is_blamed(self) -> None:
        """.netrc replaced the header on a same-host hop: say so."""
        hop = answer(
            status=400,
            content_type="application/json",
            body=b'{"error": "bad_auth_header"}',
        )
        refusal = describe([answer(status=302, location="/api"), hop])
        assert refusal is not None
        assert refusal.code == "bad_auth_header"

    def test_the_token_is_masked_before_the_text_is_cut(self) -> None:
        said = "x" * 190 + VALID_TOKEN
        body = json.dumps({"error": "forbidden_thing", "message": said}).encode()
        refusal = describe(
            [answer(status=403, content_type="application/json", body=body, bearer=VALID_TOKEN)]
        )
        assert refusal is not None
        for start in range(len(VALID_TOKEN) - 7):
            assert VALID_TOKEN[start : start + 8] not in refusal.message

    @pytest.mark.parametrize("control", ["\x1b]52;c;ZXZpbA==\x07", "\r", "\nFAKE LOG LINE", "\x9b"])
    def test_control_characters_never_reach_a_message(self, control: str) -> None:
        data = {"required_permission": f"edit{control}", "auth_dataset": f"minnie{control}"}
        body = json.dumps({"error": "missing_permission", "data": data}).encode()
        refusal = describe([answer(status=403, content_type="application/json", body=body)])
        assert refusal is not None
        assert refusal.message.isprintable()

    def test_report_warns_once_or_raises(self, caplog: pytest.LogCaptureFixture) -> None:
        credentials = Credentials(VALID_TOKEN)
        sent = credentials.attachment("https://a.example/api")
        body = b'{"error": "invalid_token"}'
        answers = [
            answer(content_type="application/json", body=body, bearer=VALID_TOKEN, sent=sent)
        ]
        with caplog.at_level(logging.WARNING, logger="cave_requests_auth"):
            report(credentials, answers, RuntimeError)
            report(credentials, answers, RuntimeError)
        assert len(caplog.records) == 1
        assert "invalid or expired" in caplog.records[0].getMessage()
        loud = Credentials(VALID_TOKEN, raise_on_auth_error=True)
        with pytest.raises(RuntimeError):
            report(loud, answers, lambda refusal: RuntimeError(refusal.message))
