"""The token store: where a token is found, what a token may be, saving and deleting.

Contract: SPEC.md, "Finding the token" and "Secret files". The file-level rules
(modes, atomic writes, corrupt files, links) are in ``test_files.py``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from cave_requests_auth import (
    DEFAULT_SERVER_ADDRESS,
    CAVEAuthError,
    DeprecatedTokenFileWarning,
    InvalidTokenError,
    TokenFileError,
    TokenNotFoundError,
    TokenSource,
    delete_token,
    find_token,
    load_token,
    new_token_url,
    save_token,
    token_file_paths,
    token_page_url,
)
from helpers import OTHER_TOKEN, VALID_TOKEN, fingerprint, write_secret

URL = "https://minnie.example.org:8443/segmentation/api"
SERVER = "https://auth.example.org:9443"
CREATE_TOKEN_URL = "https://global.daf-apis.com/auth/api/v1/create_token"
BEARER = re.compile(r"[A-Za-z0-9\-._~+/]+=*")

# The lookup, highest priority first (SPEC.md, "Finding the token").
STEPS = (
    "explicit",
    "environment",
    "token_file",
    "netloc_file",
    "host_file",
    "server_file",
    "default_file",
    "deprecated_file",
)
STEP_TOKEN = {step: hashlib.sha256(step.encode()).hexdigest()[:32] for step in STEPS}
STEP_FILE = {
    "netloc_file": "minnie.example.org:8443-cave-secret.json",
    "host_file": "minnie.example.org-cave-secret.json",
    "server_file": "auth.example.org:9443-cave-secret.json",
    "default_file": "cave-secret.json",
    "deprecated_file": "chunkedgraph-secret.json",
}


def deprecation_warnings(caught: list[warnings.WarningMessage]) -> list[warnings.WarningMessage]:
    return [w for w in caught if issubclass(w.category, DeprecatedTokenFileWarning)]


class Steps:
    """Sets up steps of the lookup, each with its own token."""

    def __init__(self, secrets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.secrets = secrets
        self.own_file = tmp_path / "elsewhere" / "my-token.json"
        self.monkeypatch = monkeypatch
        self.kwargs: dict[str, Any] = {}

    def set_up(self, step: str) -> None:
        token = STEP_TOKEN[step]
        if step == "explicit":
            self.kwargs["token"] = token
        elif step == "environment":
            self.monkeypatch.setenv("CAVE_TOKEN", token)
        elif step == "token_file":
            write_secret(self.own_file, {"token": token})
            self.kwargs["token_file"] = self.own_file
        else:
            write_secret(self.secrets / STEP_FILE[step], {"token": token})
            if step == "server_file":
                self.kwargs["server_address"] = SERVER

    def expected(self, step: str) -> tuple[str, str | None, str | None]:
        """(kind, path, key) of the source a step gives."""
        if step == "explicit":
            return ("explicit", None, None)
        if step == "environment":
            return ("environment", None, None)
        if step == "token_file":
            return ("file", str(self.own_file), "token")
        return ("file", str(self.secrets / STEP_FILE[step]), "token")


@pytest.fixture
def steps(secrets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Steps:
    return Steps(secrets, tmp_path, monkeypatch)


class TestLookupOrder:
    @pytest.mark.parametrize("winner", STEPS)
    def test_first_step_wins_over_every_lower_one(self, steps: Steps, winner: str) -> None:
        for step in STEPS[STEPS.index(winner) :]:
            steps.set_up(step)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            source = find_token(URL, **steps.kwargs)
        assert source.token == STEP_TOKEN[winner]
        assert (source.kind, source.path, source.key) == steps.expected(winner)
        assert len(deprecation_warnings(caught)) == (1 if winner == "deprecated_file" else 0)

    @pytest.mark.parametrize("only", STEPS)
    def test_each_step_alone(self, steps: Steps, only: str) -> None:
        steps.set_up(only)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecatedTokenFileWarning)
            source = find_token(URL, **steps.kwargs)
            assert load_token(URL, **steps.kwargs) == STEP_TOKEN[only]
        assert source.token == STEP_TOKEN[only]
        assert (source.kind, source.path, source.key) == steps.expected(only)

    @pytest.mark.parametrize("value", ["", " ", "\n"], ids=["empty", "space", "newline"])
    def test_empty_cave_token_is_unset(
        self, secrets: Path, monkeypatch: pytest.MonkeyPatch, value: str
    ) -> None:
        monkeypatch.setenv("CAVE_TOKEN", value)
        path = write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        source = find_token()
        assert (source.token, source.kind, source.path) == (VALID_TOKEN, "file", str(path))

    @pytest.mark.parametrize(
        ("content", "problem"),
        [
            pytest.param(None, "does not exist", id="missing-file"),
            pytest.param({"other": VALID_TOKEN}, "has no key 'token'", id="keyless-file"),
        ],
    )
    def test_token_file_is_that_file_only(
        self, secrets: Path, tmp_path: Path, content: Any, problem: str
    ) -> None:
        own = tmp_path / "mine.json"
        if content is not None:
            write_secret(own, content)
        for name in STEP_FILE.values():
            write_secret(secrets / name, {"token": OTHER_TOKEN})
        with pytest.raises(TokenNotFoundError) as info:
            find_token(URL, token_file=own, server_address=SERVER)
        assert str(own) in str(info.value)
        assert problem in str(info.value)
        assert str(own) in info.value.searched
        assert OTHER_TOKEN not in str(info.value)

    def test_token_file_expands_home(self, isolated_home: Path) -> None:
        path = write_secret(isolated_home / "mine.json", {"token": VALID_TOKEN})
        source = find_token(token_file="~/mine.json")
        assert (source.token, source.path) == (VALID_TOKEN, str(path))

    def test_file_without_the_key_falls_through(self, secrets: Path) -> None:
        write_secret(secrets / STEP_FILE["netloc_file"], {"other": OTHER_TOKEN})
        path = write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        source = find_token(URL)
        assert (source.token, source.path) == (VALID_TOKEN, str(path))

    def test_corrupt_file_is_an_error_not_a_fall_through(self, secrets: Path) -> None:
        path = write_secret(secrets / "cave-secret.json", "{")
        write_secret(secrets / "chunkedgraph-secret.json", {"token": VALID_TOKEN})
        with pytest.raises(TokenFileError) as info:
            find_token()
        assert info.value.path == str(path)

    @pytest.mark.parametrize(
        "step", ["netloc_file", "host_file", "server_file", "default_file", "deprecated_file"]
    )
    def test_token_key_picks_the_key(self, secrets: Path, step: str) -> None:
        path = write_secret(secrets / STEP_FILE[step], {"token": OTHER_TOKEN, "alt": VALID_TOKEN})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecatedTokenFileWarning)
            source = find_token(URL, server_address=SERVER, token_key="alt")
        assert (source.token, source.path, source.key) == (VALID_TOKEN, str(path), "alt")

    def test_token_key_for_token_file(self, tmp_path: Path) -> None:
        path = write_secret(tmp_path / "mine.json", {"token": OTHER_TOKEN, "alt": VALID_TOKEN})
        source = find_token(token_file=path, token_key="alt")
        assert (source.token, source.key) == (VALID_TOKEN, "alt")

    def test_server_file_needs_server_address(self, secrets: Path) -> None:
        write_secret(secrets / STEP_FILE["server_file"], {"token": OTHER_TOKEN})
        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        assert find_token(URL).token == VALID_TOKEN
        assert find_token(URL, server_address=SERVER).token == OTHER_TOKEN
        assert find_token(URL, server_address="auth.example.org:9443").token == OTHER_TOKEN

    def test_request_host_files_need_a_url(self, secrets: Path) -> None:
        write_secret(secrets / STEP_FILE["netloc_file"], {"token": OTHER_TOKEN})
        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        assert find_token().token == VALID_TOKEN
        assert find_token("https://other.example.org/x").token == VALID_TOKEN
        assert find_token(URL).token == OTHER_TOKEN

    def test_files_are_read_on_each_call(self, secrets: Path) -> None:
        path = write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        assert find_token().token == VALID_TOKEN
        write_secret(path, {"token": OTHER_TOKEN})
        assert find_token().token == OTHER_TOKEN

    def test_deprecated_file_warns_once_per_file(self, secrets: Path, tmp_path: Path) -> None:
        path = write_secret(secrets / "chunkedgraph-secret.json", {"token": VALID_TOKEN})
        other = write_secret(tmp_path / "s2" / "chunkedgraph-secret.json", {"token": OTHER_TOKEN})
        with warnings.catch_warnings(record=True) as first:
            warnings.simplefilter("always")
            assert find_token().token == VALID_TOKEN
        with warnings.catch_warnings(record=True) as second:
            warnings.simplefilter("always")
            assert find_token().token == VALID_TOKEN
            assert load_token() == VALID_TOKEN
        with warnings.catch_warnings(record=True) as third:
            warnings.simplefilter("always")
            assert find_token(secrets_dir=other.parent).token == OTHER_TOKEN
        [warning] = deprecation_warnings(first)
        assert str(path) in str(warning.message)
        assert "cave-secret.json" in str(warning.message)
        assert VALID_TOKEN not in str(warning.message)
        assert deprecation_warnings(second) == []
        [warning] = deprecation_warnings(third)
        assert str(other) in str(warning.message)


class TestSecretsFolder:
    @pytest.mark.parametrize(
        ("cloud_volume_dir", "secrets_dir", "expected"),
        [
            pytest.param("cv", None, "cv/secrets", id="CLOUD_VOLUME_DIR"),
            pytest.param(None, None, "home/.cloudvolume/secrets", id="default-home"),
            pytest.param("cv", "mine", "mine", id="secrets_dir-beats-env"),
            pytest.param(None, "mine/deeper", "mine/deeper", id="secrets_dir"),
        ],
    )
    def test_folder_choice(
        self,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        cloud_volume_dir: str | None,
        secrets_dir: str | None,
        expected: str,
    ) -> None:
        candidates = ["cv/secrets", "home/.cloudvolume/secrets", "mine", "mine/deeper"]
        for number, folder in enumerate(candidates):
            write_secret(tmp_path / folder / "cave-secret.json", {"token": f"{number}" * 32})
        if cloud_volume_dir is None:
            monkeypatch.delenv("CLOUD_VOLUME_DIR")
        else:
            monkeypatch.setenv("CLOUD_VOLUME_DIR", str(tmp_path / cloud_volume_dir))
        kwargs = {} if secrets_dir is None else {"secrets_dir": tmp_path / secrets_dir}
        source = find_token(**kwargs)
        assert source.path == str(tmp_path / expected / "cave-secret.json")
        assert source.token == f"{candidates.index(expected)}" * 32
        global_file, default_file = token_file_paths(**kwargs)[:2]
        assert global_file.endswith("/global.daf-apis.com-cave-secret.json")
        assert default_file == source.path

    def test_secrets_dir_expands_home(self, isolated_home: Path) -> None:
        write_secret(isolated_home / "s" / "cave-secret.json", {"token": VALID_TOKEN})
        assert find_token(secrets_dir="~/s").token == VALID_TOKEN


class TestHostFileNames:
    @pytest.mark.parametrize(
        ("url", "names"),
        [
            pytest.param(
                "https://minnie.example.org/x", ["minnie.example.org"], id="no-port-one-file"
            ),
            pytest.param(
                "https://MINNIE.Example.ORG:8443/x",
                ["minnie.example.org:8443", "minnie.example.org"],
                id="lower-case",
            ),
            pytest.param(
                "https://user:pw@minnie.example.org:8443/x",
                ["minnie.example.org:8443", "minnie.example.org"],
                id="no-user-info",
            ),
            pytest.param("https://[::1]:8443/x", ["[::1]:8443", "[::1]"], id="ipv6"),
            pytest.param("minnie.example.org", ["minnie.example.org"], id="bare-host"),
        ],
    )
    def test_request_files(self, secrets: Path, url: str, names: list[str]) -> None:
        with pytest.raises(TokenNotFoundError) as info:
            find_token(url)
        expected = [str(secrets / f"{name}-cave-secret.json") for name in names]
        default = [
            str(secrets / "global.daf-apis.com-cave-secret.json"),  # the default server's file
            str(secrets / "cave-secret.json"),
            str(secrets / "chunkedgraph-secret.json"),
        ]
        assert list(info.value.searched) == ["$CAVE_TOKEN", *expected, *default]

    @pytest.mark.parametrize(
        "url",
        [
            "https://../x",
            "https://.../x",
            "https://%2e%2e/x",
            "https://a%2f..%2f..%2fetc/x",
            "https://a\\..\\..\\b/x",
            "https://user:..%2f..@host.example.org/x",
        ],
    )
    def test_paths_stay_inside_the_secrets_folder(self, secrets: Path, url: str) -> None:
        with pytest.raises(TokenNotFoundError) as info:
            find_token(url)
        paths = info.value.searched[1:]
        assert paths
        for path in paths:
            assert os.path.dirname(os.path.abspath(path)) == str(secrets)


class TestTokenNotFound:
    def test_lists_every_place_searched(self, secrets: Path) -> None:
        with pytest.raises(TokenNotFoundError) as info:
            find_token(URL, server_address=SERVER)
        error = info.value
        expected = [
            str(secrets / STEP_FILE[step])
            for step in ("netloc_file", "host_file", "server_file", "default_file")
        ] + [str(secrets / "chunkedgraph-secret.json")]
        assert list(error.searched) == ["$CAVE_TOKEN", *expected]
        message = str(error)
        for path in expected:
            assert path in message
        assert "CAVE_TOKEN" in message
        assert new_token_url(SERVER) in message
        assert "cave-auth login" in message
        assert isinstance(error, LookupError)
        assert isinstance(error, CAVEAuthError)

    def test_default_server_create_token_url(self, secrets: Path) -> None:
        with pytest.raises(TokenNotFoundError) as info:
            find_token()
        assert CREATE_TOKEN_URL in str(info.value)
        assert "cave-auth login" in str(info.value)
        assert list(info.value.searched) == [
            "$CAVE_TOKEN",
            str(secrets / "global.daf-apis.com-cave-secret.json"),
            str(secrets / "cave-secret.json"),
            str(secrets / "chunkedgraph-secret.json"),
        ]

    def test_searched_matches_token_file_paths(self) -> None:
        with pytest.raises(TokenNotFoundError) as info:
            find_token(URL, server_address=URL)
        assert list(info.value.searched[1:]) == token_file_paths(URL)

    def test_keyless_files_are_listed(self, secrets: Path) -> None:
        write_secret(secrets / "cave-secret.json", {"other": VALID_TOKEN})
        with pytest.raises(TokenNotFoundError) as info:
            find_token(token_key="mine")
        assert str(secrets / "cave-secret.json") in info.value.searched
        assert "mine" in str(info.value)
        assert VALID_TOKEN not in str(info.value)

    def test_load_token_gives_none(self) -> None:
        assert load_token(URL) is None

    def test_missing_token_file_says_how_to_get_a_token(self, tmp_path: Path) -> None:
        own = tmp_path / "mine.json"
        with pytest.raises(TokenNotFoundError) as info:
            find_token(token_file=own)
        assert list(info.value.searched) == ["$CAVE_TOKEN", str(own)]
        assert CREATE_TOKEN_URL in str(info.value)
        assert "cave-auth login" in str(info.value)


# Tokens that are not bearer tokens, each long enough that a leak would show.
HALF_A, HALF_B = VALID_TOKEN[:16], VALID_TOKEN[16:]
INVALID = [
    pytest.param("", id="empty"),
    pytest.param(" \n\t ", id="blank"),
    pytest.param(f"{HALF_A} {HALF_B}", id="inner-space"),
    pytest.param(f"{HALF_A}\n{HALF_B}", id="inner-LF"),
    pytest.param(f"{HALF_A}\r{HALF_B}", id="inner-CR"),
    pytest.param(f"{HALF_A}\r\n{HALF_B}", id="inner-CRLF"),
    pytest.param(f"{HALF_A}\t{HALF_B}", id="inner-tab"),
    pytest.param(f"{HALF_A}\x00{HALF_B}", id="NUL"),
    pytest.param(f"{VALID_TOKEN}\x00", id="trailing-NUL"),
    pytest.param(f"{HALF_A}\x7f{HALF_B}", id="DEL"),
    pytest.param(f"{HALF_A}\x1b{HALF_B}", id="ESC"),
    pytest.param(f"{HALF_A};{HALF_B}", id="semicolon"),
    pytest.param(f"{HALF_A},{HALF_B}", id="comma"),
    pytest.param(f"{HALF_A}é{HALF_B}", id="non-ASCII"),
    pytest.param(f"{HALF_A}\u0663{HALF_B}", id="non-ASCII-digit"),
    pytest.param(f"{HALF_A}={HALF_B}", id="inner-equals"),
    pytest.param(f"={VALID_TOKEN}", id="leading-equals"),
    pytest.param(f'{HALF_A}"{HALF_B}', id="quote"),
    pytest.param(VALID_TOKEN * 129, id="4128-chars"),
    pytest.param("a" * 4097, id="4097-chars"),
]
VALID = [
    pytest.param(f"{VALID_TOKEN}\n", VALID_TOKEN, id="pasted-newline"),
    pytest.param(f" \t{VALID_TOKEN}\r\n", VALID_TOKEN, id="surrounding-white-space"),
    pytest.param(f"{VALID_TOKEN} ", VALID_TOKEN, id="trailing-space"),
    pytest.param("AZaz09-._~+/==", "AZaz09-._~+/==", id="every-allowed-character"),
    pytest.param("a" * 4096, "a" * 4096, id="4096-chars"),
]
SOURCES = ["argument", "environment", "default_file", "token_file"]
# An empty CAVE_TOKEN is unset (TestLookupOrder), and NUL cannot be in the environment.
INVALID_FROM_SOURCES = [
    pytest.param(source, case.values[0], id=f"{source}-{case.id}")
    for source in SOURCES
    for case in INVALID
    if source != "environment" or (case.values[0].strip() and "\x00" not in case.values[0])
]


def no_leak(text: str, value: str) -> None:
    """``text`` holds neither the token nor either half of it."""
    stripped = value.strip()
    if len(stripped) >= 4:
        assert stripped not in text
        assert value not in text
    for part in (HALF_A, HALF_B, VALID_TOKEN):
        if part in value:
            assert part not in text


class FromSource:
    """Puts a value where one source of the lookup reads it."""

    def __init__(self, secrets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.secrets = secrets
        self.own_file = tmp_path / "mine.json"
        self.monkeypatch = monkeypatch

    def find(self, source: str, value: Any) -> tuple[TokenSource, list[str]]:
        """The lookup's answer, and words its error messages must hold."""
        return find_token(**self.prepare(source, value)), self.words(source)

    def prepare(self, source: str, value: Any) -> dict[str, Any]:
        if source == "argument":
            return {"token": value}
        if source == "environment":
            self.monkeypatch.setenv("CAVE_TOKEN", value)
            return {}
        if source == "default_file":
            write_secret(self.secrets / "cave-secret.json", {"token": value})
            return {}
        write_secret(self.own_file, {"token": value})
        return {"token_file": self.own_file}

    def words(self, source: str) -> list[str]:
        if source == "argument":
            return ["token= argument"]
        if source == "environment":
            return ["CAVE_TOKEN"]
        if source == "default_file":
            return [str(self.secrets / "cave-secret.json"), "'token'"]
        return [str(self.own_file), "'token'"]


@pytest.fixture
def from_source(secrets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FromSource:
    return FromSource(secrets, tmp_path, monkeypatch)


class TestTokenValidation:
    @pytest.mark.parametrize("source", SOURCES)
    @pytest.mark.parametrize(("value", "expected"), VALID)
    def test_accepted_and_stripped(
        self, from_source: FromSource, source: str, value: str, expected: str
    ) -> None:
        found, _ = from_source.find(source, value)
        assert found.token == expected

    @pytest.mark.parametrize(("source", "value"), INVALID_FROM_SOURCES)
    def test_rejected_naming_the_source_never_the_token(
        self, from_source: FromSource, source: str, value: str
    ) -> None:
        kwargs = from_source.prepare(source, value)
        with pytest.raises(InvalidTokenError) as info:
            find_token(**kwargs)
        message = str(info.value)
        for word in from_source.words(source):
            assert word in message
        no_leak(message, value)
        no_leak(repr(info.value), value)
        assert isinstance(info.value, ValueError)
        assert isinstance(info.value, CAVEAuthError)

    @pytest.mark.parametrize(
        "value",
        [
            pytest.param(12345678901234567890123456789012, id="int"),
            pytest.param(VALID_TOKEN.encode(), id="bytes"),
            pytest.param({"token": VALID_TOKEN}, id="dict"),
            pytest.param([VALID_TOKEN], id="list"),
        ],
    )
    def test_non_string_argument(self, value: Any) -> None:
        with pytest.raises(InvalidTokenError) as info:
            find_token(token=value)
        message = str(info.value)
        assert "token= argument" in message
        assert "12345678901234567890123456789012" not in message
        no_leak(message, VALID_TOKEN)

    def test_load_token_raises_for_invalid(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("CAVE_TOKEN", f"{HALF_A};{HALF_B}")
        with pytest.raises(InvalidTokenError):
            load_token()

    def test_invalid_token_key_is_named(self, secrets: Path) -> None:
        write_secret(secrets / "cave-secret.json", {"alt": f"{HALF_A} {HALF_B}"})
        with pytest.raises(InvalidTokenError) as info:
            find_token(token_key="alt")
        assert "'alt'" in str(info.value)
        assert str(secrets / "cave-secret.json") in str(info.value)
        no_leak(str(info.value), f"{HALF_A} {HALF_B}")

    def test_invalid_token_is_not_saved(self, secrets: Path) -> None:
        with pytest.raises(InvalidTokenError) as info:
            save_token(f"{HALF_A};{HALF_B}")
        no_leak(str(info.value), f"{HALF_A};{HALF_B}")
        assert not secrets.exists()


@functools.cache
def _fixed_message_text() -> str:
    """Everything the InvalidTokenError messages say, whatever the token."""
    texts = []
    for example in ["", "a b", "é", "a;b", "a" * 5000, 5]:
        with pytest.raises(InvalidTokenError) as info:
            find_token(token=example)
        texts.append(str(info.value))
    return "\n".join(texts)


TOKEN_ALPHABET = "ABCXYZabcxyz0189-._~+/="
TOKENS = st.one_of(
    st.text(),
    st.text(alphabet=TOKEN_ALPHABET, min_size=1),
    st.text(alphabet=TOKEN_ALPHABET + " \t\r\n\x00\x7f;,é\u00a0\u2028\"'", min_size=1),
    st.builds(
        lambda head, body, tail: head + body + tail,
        st.text(alphabet=" \t\r\n", max_size=3),
        st.from_regex(BEARER, fullmatch=True),
        st.text(alphabet=" \t\r\n", max_size=3),
    ),
)


class TestTokenShapeProperty:
    @given(value=TOKENS)
    def test_accepted_or_rejected_without_leak(self, value: str) -> None:
        stripped = value.strip()
        if BEARER.fullmatch(stripped) and len(stripped) <= 4096:
            assert find_token(token=value).token == stripped
            return
        with pytest.raises(InvalidTokenError) as info:
            find_token(token=value)
        assert "token= argument" in str(info.value)
        if len(stripped) >= 4:
            assume(stripped not in _fixed_message_text())
            assert stripped not in str(info.value)
            assert stripped not in repr(info.value)

    @given(value=st.from_regex(BEARER, fullmatch=True).filter(lambda t: len(t) <= 4096))
    def test_every_bearer_token_is_accepted(self, value: str) -> None:
        assert find_token(token=value).token == value


class TestTokenSource:
    @pytest.mark.parametrize(
        ("kind", "path", "key", "words"),
        [
            ("explicit", None, None, "token= argument"),
            ("environment", None, None, "CAVE_TOKEN"),
            ("file", "/x/cave-secret.json", "token", "/x/cave-secret.json"),
        ],
    )
    def test_repr_and_str_never_show_the_token(
        self, kind: str, path: str | None, key: str | None, words: str
    ) -> None:
        source = TokenSource(VALID_TOKEN, kind, path, key)
        for text in (repr(source), str(source), f"{source}", f"{source!r}"):
            no_leak(text, VALID_TOKEN)
        assert words in str(source)
        assert kind in repr(source)

    def test_found_source_repr_names_file_and_key(self, secrets: Path) -> None:
        path = write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        source = find_token()
        assert str(path) in repr(source)
        assert "'token'" in repr(source)
        assert str(path) in str(source)
        no_leak(repr(source) + str(source) + repr([source]), VALID_TOKEN)

    def test_masked(self) -> None:
        source = TokenSource(VALID_TOKEN, "explicit")
        assert source.masked == "0123…cdef"
        assert TokenSource(OTHER_TOKEN, "explicit").masked == "fedc…3210"

    def test_masked_short_token_shows_nothing(self) -> None:
        assert "abcd" not in TokenSource("abcdef", "explicit").masked


class TestSaveToken:
    def test_default_and_global_server_file(self, secrets: Path) -> None:
        paths = save_token(VALID_TOKEN)
        default = secrets / "cave-secret.json"
        server = secrets / "global.daf-apis.com-cave-secret.json"
        assert paths == [str(default), str(server)]
        for path in (default, server):
            assert json.loads(path.read_text()) == {"token": VALID_TOKEN}
        assert sorted(p.name for p in secrets.iterdir()) == sorted([default.name, server.name])

    @pytest.mark.parametrize(
        ("server_address", "name"),
        [
            (SERVER, "auth.example.org:9443-cave-secret.json"),
            ("minnie.example.org", "minnie.example.org-cave-secret.json"),
            ("https://Minnie.Example.org/", "minnie.example.org-cave-secret.json"),
            (DEFAULT_SERVER_ADDRESS, "global.daf-apis.com-cave-secret.json"),
        ],
    )
    def test_server_file_of_server_address(
        self, secrets: Path, server_address: str, name: str
    ) -> None:
        paths = save_token(VALID_TOKEN, server_address)
        assert paths == [str(secrets / "cave-secret.json"), str(secrets / name)]
        assert json.loads((secrets / name).read_text()) == {"token": VALID_TOKEN}
        assert find_token(server_address=server_address).path == str(secrets / name)

    def test_write_server_file_false(self, secrets: Path) -> None:
        paths = save_token(VALID_TOKEN, SERVER, write_server_file=False)
        assert paths == [str(secrets / "cave-secret.json")]
        assert [p.name for p in secrets.iterdir()] == ["cave-secret.json"]

    def test_token_file(self, secrets: Path, tmp_path: Path) -> None:
        own = tmp_path / "own" / "mine.json"
        paths = save_token(VALID_TOKEN, token_file=own, write_server_file=False)
        assert paths == [str(own)]
        assert json.loads(own.read_text()) == {"token": VALID_TOKEN}
        assert not (secrets / "cave-secret.json").exists()
        assert find_token(token_file=own).token == VALID_TOKEN

    def test_token_file_with_server_file(self, secrets: Path, tmp_path: Path) -> None:
        own = tmp_path / "mine.json"
        paths = save_token(VALID_TOKEN, token_file=own)
        assert paths[0] == str(own)
        assert not (secrets / "cave-secret.json").exists()
        for path in paths:
            assert json.loads(Path(path).read_text()) == {"token": VALID_TOKEN}

    def test_token_key(self, secrets: Path) -> None:
        write_secret(secrets / "cave-secret.json", {"token": OTHER_TOKEN})
        save_token(VALID_TOKEN, token_key="alt", write_server_file=False)
        data = json.loads((secrets / "cave-secret.json").read_text())
        assert data == {"token": OTHER_TOKEN, "alt": VALID_TOKEN}

    def test_other_keys_are_kept(self, secrets: Path) -> None:
        extra = {"other": "value", "nested": {"a": [1, 2]}, "number": 3}
        write_secret(secrets / "cave-secret.json", {"token": OTHER_TOKEN, **extra})
        write_secret(secrets / "global.daf-apis.com-cave-secret.json", {"x": "y"})
        save_token(VALID_TOKEN, overwrite=True)
        assert json.loads((secrets / "cave-secret.json").read_text()) == {
            "token": VALID_TOKEN,
            **extra,
        }
        assert json.loads((secrets / "global.daf-apis.com-cave-secret.json").read_text()) == {
            "x": "y",
            "token": VALID_TOKEN,
        }

    def test_saves_the_stripped_token(self, secrets: Path) -> None:
        save_token(f"{VALID_TOKEN}\n", write_server_file=False)
        assert json.loads((secrets / "cave-secret.json").read_text()) == {"token": VALID_TOKEN}

    def test_round_trip(self) -> None:
        save_token(VALID_TOKEN, SERVER)
        assert find_token().token == VALID_TOKEN
        assert find_token(server_address=SERVER).token == VALID_TOKEN


class TestOverwrite:
    def test_refuses_a_different_token(self, secrets: Path) -> None:
        path = write_secret(secrets / "cave-secret.json", {"token": OTHER_TOKEN, "k": "v"})
        before = fingerprint(path)
        with pytest.raises(TokenFileError) as info:
            save_token(VALID_TOKEN, write_server_file=False)
        message = str(info.value)
        assert "overwrite=True" in message
        assert str(path) in message
        assert info.value.path == str(path)
        no_leak(message, VALID_TOKEN)
        no_leak(message, OTHER_TOKEN)
        assert fingerprint(path) == before

    def test_identical_token_is_a_no_op(self, secrets: Path) -> None:
        default = write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN, "k": "v"})
        server = write_secret(
            secrets / "global.daf-apis.com-cave-secret.json", {"token": VALID_TOKEN}
        )
        before = [fingerprint(default), fingerprint(server)]
        paths = save_token(f"{VALID_TOKEN}\n")
        assert paths == [str(default), str(server)]
        assert [fingerprint(default), fingerprint(server)] == before

    def test_identical_in_one_file_writes_the_other(self, secrets: Path) -> None:
        default = write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        before = fingerprint(default)
        save_token(VALID_TOKEN)
        assert fingerprint(default) == before
        server = secrets / "global.daf-apis.com-cave-secret.json"
        assert json.loads(server.read_text()) == {"token": VALID_TOKEN}

    def test_overwrite_true_replaces(self, secrets: Path) -> None:
        default = write_secret(secrets / "cave-secret.json", {"token": OTHER_TOKEN, "k": "v"})
        server = write_secret(
            secrets / "global.daf-apis.com-cave-secret.json", {"token": OTHER_TOKEN}
        )
        save_token(VALID_TOKEN, overwrite=True)
        assert json.loads(default.read_text()) == {"token": VALID_TOKEN, "k": "v"}
        assert json.loads(server.read_text()) == {"token": VALID_TOKEN}

    @pytest.mark.parametrize(
        "default_content",
        [None, {"k": "v"}, {"token": VALID_TOKEN}],
        ids=["no-default-file", "default-without-key", "default-identical"],
    )
    def test_server_conflict_writes_nothing(
        self, secrets: Path, default_content: dict[str, str] | None
    ) -> None:
        default = secrets / "cave-secret.json"
        if default_content is not None:
            write_secret(default, default_content)
        before = fingerprint(default) if default.exists() else None
        server = write_secret(
            secrets / "auth.example.org:9443-cave-secret.json", {"token": "a" * 32}
        )
        with pytest.raises(TokenFileError) as info:
            save_token(VALID_TOKEN, SERVER)
        assert info.value.path == str(server)
        assert "overwrite=True" in str(info.value)
        assert (fingerprint(default) if default.exists() else None) == before
        assert json.loads(server.read_text()) == {"token": "a" * 32}

    def test_default_conflict_writes_no_server_file(self, secrets: Path) -> None:
        write_secret(secrets / "cave-secret.json", {"token": OTHER_TOKEN})
        with pytest.raises(TokenFileError):
            save_token(VALID_TOKEN, SERVER)
        assert not (secrets / "auth.example.org:9443-cave-secret.json").exists()


class TestDeleteToken:
    def test_removes_key_keeps_others(self, secrets: Path) -> None:
        default = write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN, "k": "v"})
        server = write_secret(
            secrets / "global.daf-apis.com-cave-secret.json", {"token": VALID_TOKEN, "x": 1}
        )
        assert delete_token() == [str(default), str(server)]
        assert json.loads(default.read_text()) == {"k": "v"}
        assert json.loads(server.read_text()) == {"x": 1}
        assert load_token() is None

    def test_removes_a_file_left_empty(self, secrets: Path) -> None:
        save_token(VALID_TOKEN, SERVER)
        paths = delete_token(SERVER)
        assert paths == [
            str(secrets / "cave-secret.json"),
            str(secrets / "auth.example.org:9443-cave-secret.json"),
        ]
        assert list(secrets.iterdir()) == []

    def test_nothing_to_delete(self, secrets: Path) -> None:
        assert delete_token() == []
        assert delete_token(SERVER) == []
        assert not secrets.exists()

    def test_file_without_the_key_is_untouched(self, secrets: Path) -> None:
        path = write_secret(secrets / "cave-secret.json", {"other": VALID_TOKEN})
        before = fingerprint(path)
        assert delete_token() == []
        assert fingerprint(path) == before

    def test_token_key_and_token_file(self, tmp_path: Path) -> None:
        own = write_secret(tmp_path / "mine.json", {"token": VALID_TOKEN, "alt": OTHER_TOKEN})
        paths = delete_token(token_file=own, token_key="alt", write_server_file=False)
        assert paths == [str(own)]
        assert json.loads(own.read_text()) == {"token": VALID_TOKEN}

    def test_only_the_given_server(self, secrets: Path) -> None:
        save_token(VALID_TOKEN, SERVER)
        global_file = write_secret(
            secrets / "global.daf-apis.com-cave-secret.json", {"token": VALID_TOKEN}
        )
        delete_token(SERVER)
        assert json.loads(global_file.read_text()) == {"token": VALID_TOKEN}


class TestTokenFilePaths:
    @pytest.mark.parametrize(
        ("server_address", "names"),
        [
            (None, ["global.daf-apis.com"]),
            (DEFAULT_SERVER_ADDRESS, ["global.daf-apis.com"]),
            ("minnie.example.org", ["minnie.example.org"]),
            (
                "https://minnie.example.org:8443",
                ["minnie.example.org:8443", "minnie.example.org"],
            ),
        ],
    )
    def test_order(self, secrets: Path, server_address: str | None, names: list[str]) -> None:
        assert token_file_paths(server_address) == [
            *(str(secrets / f"{name}-cave-secret.json") for name in names),
            str(secrets / "cave-secret.json"),
            str(secrets / "chunkedgraph-secret.json"),
        ]

    def test_secrets_dir(self, tmp_path: Path) -> None:
        assert token_file_paths(secrets_dir=tmp_path / "s") == [
            str(tmp_path / "s" / "global.daf-apis.com-cave-secret.json"),
            str(tmp_path / "s" / "cave-secret.json"),
            str(tmp_path / "s" / "chunkedgraph-secret.json"),
        ]

    def test_touches_no_file(self, secrets: Path) -> None:
        token_file_paths(SERVER)
        assert not secrets.exists()


class TestServerUrls:
    @pytest.mark.parametrize(
        ("server_address", "create", "page"),
        [
            (
                None,
                "https://global.daf-apis.com/auth/api/v1/create_token",
                "https://global.daf-apis.com/sticky_auth/settings/tokens",
            ),
            (
                "minnie.example.org",
                "https://minnie.example.org/auth/api/v1/create_token",
                "https://minnie.example.org/sticky_auth/settings/tokens",
            ),
            (
                "https://minnie.example.org/",
                "https://minnie.example.org/auth/api/v1/create_token",
                "https://minnie.example.org/sticky_auth/settings/tokens",
            ),
            (
                "http://localhost:8000",
                "http://localhost:8000/auth/api/v1/create_token",
                "http://localhost:8000/sticky_auth/settings/tokens",
            ),
        ],
    )
    def test_urls(self, server_address: str | None, create: str, page: str) -> None:
        assert new_token_url(server_address) == create
        assert token_page_url(server_address) == page
