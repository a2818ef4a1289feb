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
import sys
import threading
import time
import types
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from cave_requests_auth import (
    DEFAULT_SERVER_ADDRESS,
    CAVEAuthError,
    CAVEAuthWarning,
    DeprecatedTokenFileWarning,
    InvalidTokenError,
    TokenFileError,
    TokenFileModeWarning,
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
from helpers import OTHER_TOKEN, VALID_TOKEN, AuditLog, assert_clean, fingerprint, write_secret

URL = "https://minnie.example.org:8443/segmentation/api"
SERVER = "https://auth.example.org:9443"
CREATE_TOKEN_URL = "https://global.daf-apis.com/auth/api/v1/create_token"
BEARER = re.compile(r"[A-Za-z0-9\-._~+/]+=*")

# The lookup, highest priority first (SPEC.md, "Finding the token").
STEPS = (
    "explicit",
    "environment",
    "environment_file",
    "token_file",
    "netloc_file",
    "host_file",
    "server_file",
    "default_file",
    "deprecated_file",
    "colab",
)
STEP_TOKEN = {step: hashlib.sha256(step.encode()).hexdigest()[:32] for step in STEPS}
STEP_FILE = {
    "netloc_file": "minnie.example.org:8443-cave-secret.json",
    "host_file": "minnie.example.org-cave-secret.json",
    "server_file": "auth.example.org:9443-cave-secret.json",
    "default_file": "cave-secret.json",
    "deprecated_file": "chunkedgraph-secret.json",
}


class SecretNotFoundError(Exception):
    """As google.colab.userdata's: the notebook has no such secret."""


class NotebookAccessError(Exception):
    """As google.colab.userdata's: the user did not let this notebook read the secret."""


def stand_in_colab(
    monkeypatch: pytest.MonkeyPatch, answer: str | BaseException, delay: float = 0.0
) -> list[str]:
    """``google.colab`` as imported in a notebook, whose ``userdata.get`` gives ``answer``
    (or raises it) after ``delay`` seconds; returns the names it is asked for."""
    asked: list[str] = []

    def get(name: str) -> str:
        asked.append(name)
        time.sleep(delay)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    google, colab, userdata = (
        types.ModuleType(name) for name in ("google", "google.colab", "google.colab.userdata")
    )
    userdata.__dict__.update(
        get=get, SecretNotFoundError=SecretNotFoundError, NotebookAccessError=NotebookAccessError
    )
    google.__dict__["colab"], colab.__dict__["userdata"] = colab, userdata
    for module in (google, colab, userdata):
        monkeypatch.setitem(sys.modules, module.__name__, module)
    return asked


def deprecation_warnings(caught: list[warnings.WarningMessage]) -> list[warnings.WarningMessage]:
    return [w for w in caught if issubclass(w.category, DeprecatedTokenFileWarning)]


class Steps:
    """Sets up steps of the lookup, each with its own token."""

    def __init__(self, secrets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.secrets = secrets
        self.own_file = tmp_path / "elsewhere" / "my-token.json"
        self.bare_file = tmp_path / "run" / "secrets" / "cave-token"
        self.monkeypatch = monkeypatch
        self.kwargs: dict[str, Any] = {}

    def set_up(self, step: str) -> None:
        token = STEP_TOKEN[step]
        if step == "explicit":
            self.kwargs["token"] = token
        elif step == "environment":
            self.monkeypatch.setenv("CAVE_TOKEN", token)
        elif step == "environment_file":
            write_secret(self.bare_file, f"{token}\n")
            self.monkeypatch.setenv("CAVE_TOKEN_FILE", str(self.bare_file))
        elif step == "colab":
            stand_in_colab(self.monkeypatch, token)
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
        if step in ("environment", "colab"):
            return (step, None, None)
        if step == "environment_file":
            return ("file", str(self.bare_file), None)
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

    @pytest.mark.parametrize("name", ["CAVE_TOKEN", "CAVE_TOKEN_FILE"])
    @pytest.mark.parametrize("value", ["", " ", "\n"], ids=["empty", "space", "newline"])
    def test_empty_cave_token_is_unset(
        self, secrets: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str
    ) -> None:
        monkeypatch.setenv(name, value)
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
SOURCES = ["argument", "environment", "environment_file", "default_file", "token_file", "colab"]


def reaches_the_token_check(source: str, value: str) -> bool:
    """An empty CAVE_TOKEN or Colab secret is unset (TestLookupOrder), and NUL cannot be in
    the environment; a $CAVE_TOKEN_FILE file that is empty or of several lines is a
    TokenFileError (TestTokenFileVariable)."""
    if source in ("environment", "colab", "environment_file") and not value.strip():
        return False
    if source == "environment":
        return "\x00" not in value
    return source != "environment_file" or len(value.strip().splitlines()) == 1


INVALID_FROM_SOURCES = [
    pytest.param(source, case.values[0], id=f"{source}-{case.id}")
    for source in SOURCES
    for case in INVALID
    if reaches_the_token_check(source, case.values[0])
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
        self.bare_file = tmp_path / "cave-token"
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
        if source == "environment_file":
            write_secret(self.bare_file, value)
            self.monkeypatch.setenv("CAVE_TOKEN_FILE", str(self.bare_file))
            return {}
        if source == "colab":
            stand_in_colab(self.monkeypatch, value)
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
        if source == "environment_file":
            return [str(self.bare_file), "$CAVE_TOKEN_FILE"]
        if source == "colab":
            return ["Colab", "CAVE_TOKEN"]
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
            ("file", "/run/secrets/t", None, "/run/secrets/t (named by $CAVE_TOKEN_FILE)"),
            ("colab", None, None, "the Colab notebook secret CAVE_TOKEN"),
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


# -- step 2b: $CAVE_TOKEN_FILE -----------------------------------------------------------------

POSIX = os.name == "posix"
AS_ROOT = POSIX and os.getuid() == 0
LONG_AGO = time.time() - 3600  # not "just written": what the file held is kept


def make_bad(kind: str, path: Path) -> Path:
    """Put at ``path`` what ``kind`` names; the path the error must name."""
    if kind == "device":
        return Path("/dev/null")
    if kind == "folder":
        path.mkdir(parents=True)
    elif kind == "FIFO":
        path.parent.mkdir(parents=True)
        os.mkfifo(path, 0o600)
    elif kind == "dangling-link":
        path.parent.mkdir(parents=True)
        path.symlink_to(path.parent / "gone")
    elif kind != "missing":
        content = {
            "empty": "",
            "blank": " \n\n\t",
            "two-lines": f"{VALID_TOKEN}\n{OTHER_TOKEN}\n",
            "CRLF-inside": f"{HALF_A}\r\n{HALF_B}",
            "JSON": json.dumps({"token": VALID_TOKEN}),
            "over-1-MiB": VALID_TOKEN + " " * (1 << 20),
        }.get(kind, VALID_TOKEN)
        write_secret(path, content)
        if kind == "another-user's":
            os.chown(path, 4242, -1)
        elif kind == "unreadable":
            path.chmod(0o000)
    return path


def bad(kind: str, saying: str, *, posix: bool = False, root: bool | None = None) -> Any:
    marks = [pytest.mark.skipif(posix and not POSIX, reason="POSIX only")]
    if root is not None:
        marks.append(pytest.mark.skipif(AS_ROOT is not root, reason=f"root={root} only"))
    return pytest.param(kind, saying, id=kind, marks=marks)


class TestTokenFileVariable:
    @pytest.mark.parametrize(
        ("kind", "saying"),
        [
            bad("missing", "does not exist"),
            bad("empty", "is empty"),
            bad("blank", "is empty"),
            bad("two-lines", "more than one line"),
            bad("CRLF-inside", "more than one line"),
            bad("JSON", "holds JSON"),
            bad("folder", "not a regular file"),
            bad("FIFO", "not a regular file", posix=True),
            bad("device", "not a regular file", posix=True),
            bad("over-1-MiB", "larger than 1 MiB"),
            bad("dangling-link", "symbolic link", posix=True),
            bad("another-user's", "uid 4242", posix=True, root=True),
            bad("unreadable", "Permission denied", posix=True, root=False),
        ],
    )
    def test_bad_file_is_an_error_naming_the_variable_and_the_path(
        self, secrets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, saying: str
    ) -> None:
        path = make_bad(kind, tmp_path / "run" / "cave-token")
        monkeypatch.setenv("CAVE_TOKEN_FILE", str(path))
        write_secret(secrets / "cave-secret.json", {"token": OTHER_TOKEN})  # no fall-through
        own = write_secret(tmp_path / "own.json", {"token": OTHER_TOKEN})
        for attempt in (lambda: find_token(), lambda: find_token(token_file=own)):
            with pytest.raises(TokenFileError) as info:
                attempt()
            assert_clean(info.value, path, "$CAVE_TOKEN_FILE", saying)
            if kind != "another-user's":  # the reader's own message, of two sentences
                assert ". " not in str(info.value).replace(str(path), "")
                assert str(info.value).endswith(".")

    @pytest.mark.parametrize("named", ["cave-token", "./cave-token", "~/cave-token"])
    def test_path_relative_to_the_working_folder_or_home(
        self, isolated_home: Path, monkeypatch: pytest.MonkeyPatch, named: str
    ) -> None:
        folder = isolated_home if named.startswith("~") else isolated_home / "work"
        path = write_secret(folder / "cave-token", f"  {VALID_TOKEN}\r\n")
        monkeypatch.chdir(path.parent)
        monkeypatch.setenv("CAVE_TOKEN_FILE", named)
        source = find_token()
        assert (source.token, source.kind, source.path, source.key) == (
            VALID_TOKEN,
            "file",
            str(path),
            None,
        )
        assert str(source) == f"{path} (named by $CAVE_TOKEN_FILE)"
        no_leak(repr(source), VALID_TOKEN)

    def test_not_utf8_is_an_invalid_token_naming_the_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path = write_secret(tmp_path / "cave-token", HALF_A.encode() + b"\xff" + HALF_B.encode())
        monkeypatch.setenv("CAVE_TOKEN_FILE", str(path))
        with pytest.raises(InvalidTokenError) as info:
            find_token()
        assert f"{path} (named by $CAVE_TOKEN_FILE)" in str(info.value)
        no_leak(str(info.value), VALID_TOKEN)

    @pytest.mark.skipif(not POSIX, reason="modes are POSIX")
    def test_a_file_others_can_read_gives_the_mode_warning(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        path = write_secret(tmp_path / "cave-token", VALID_TOKEN, 0o644)
        monkeypatch.setenv("CAVE_TOKEN_FILE", str(path))
        with pytest.warns(TokenFileModeWarning, match="0644") as caught:
            assert find_token().token == VALID_TOKEN
        assert str(path) in str(caught[0].message)

    @pytest.mark.skipif(not POSIX, reason="symbolic links")
    def test_kubernetes_secret_links_are_followed_kept_and_rotated(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, audit: AuditLog
    ) -> None:
        # A mounted Secret: token -> ..data/token, ..data -> ..<timestamp>; an update
        # writes a new ..<timestamp> folder and swaps the ..data link at once.
        mount = tmp_path / "secrets"
        for version, token in (("..2024_01", VALID_TOKEN), ("..2025_01", OTHER_TOKEN)):
            path = write_secret(mount / version / "token", f"{token}\n", 0o600)
            os.utime(path, (LONG_AGO, LONG_AGO))
        (mount / "..data").symlink_to("..2024_01")
        (mount / "token").symlink_to("..data/token")
        monkeypatch.setenv("CAVE_TOKEN_FILE", str(mount / "token"))
        audit.events.clear()
        for _ in range(5):
            assert find_token().token == VALID_TOKEN
        assert audit.opened(mount).count(str(mount / "token")) == 1
        (mount / "..data_tmp").symlink_to("..2025_01")
        os.replace(mount / "..data_tmp", mount / "..data")
        source = find_token()
        assert (source.token, source.path) == (OTHER_TOKEN, str(mount / "token"))


class TestSaveWhileAVariableIsSet:
    @pytest.mark.parametrize("name", ["CAVE_TOKEN", "CAVE_TOKEN_FILE"])
    def test_save_says_the_variable_wins_and_leaves_it_alone(
        self, secrets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
    ) -> None:
        bare = write_secret(tmp_path / "cave-token", OTHER_TOKEN)
        before = fingerprint(bare)
        monkeypatch.setenv(name, OTHER_TOKEN if name == "CAVE_TOKEN" else str(bare))
        with pytest.warns(CAVEAuthWarning, match=f"^{name} is set") as caught:
            paths = save_token(VALID_TOKEN, write_server_file=False)
        assert paths == [str(secrets / "cave-secret.json")]
        assert json.loads((secrets / "cave-secret.json").read_text()) == {"token": VALID_TOKEN}
        [warning] = caught
        assert f"unset {name}" in str(warning.message)
        assert paths[0] in str(warning.message)
        no_leak(str(warning.message), VALID_TOKEN)
        no_leak(str(warning.message), OTHER_TOKEN)
        assert fingerprint(bare) == before
        assert find_token().token == OTHER_TOKEN  # as the warning says

    def test_no_warning_without_a_variable(self, recwarn: pytest.WarningsRecorder) -> None:
        save_token(VALID_TOKEN)
        assert [w for w in recwarn if issubclass(w.category, CAVEAuthWarning)] == []

    @pytest.mark.parametrize("through", ["same-path", "a-link-to-it"])
    def test_save_never_writes_the_file_the_variable_names(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, through: str
    ) -> None:
        bare = write_secret(tmp_path / "cave-token", f"{OTHER_TOKEN}\n")
        before = fingerprint(bare)
        monkeypatch.setenv("CAVE_TOKEN_FILE", str(bare))
        target = bare
        if through == "a-link-to-it":
            target = tmp_path / "link.json"
            target.symlink_to(bare)
        with pytest.raises(TokenFileError) as info:
            save_token(VALID_TOKEN, token_file=target, overwrite=True, write_server_file=False)
        assert_clean(info.value, target, "$CAVE_TOKEN_FILE")
        assert fingerprint(bare) == before


# -- step 8: the Colab notebook secret ---------------------------------------------------------

COLAB_PLACE = "the Colab secret CAVE_TOKEN"


class TestColab:
    def test_the_last_step_asked_once_per_process(self, monkeypatch: pytest.MonkeyPatch) -> None:
        asked = stand_in_colab(monkeypatch, f"{VALID_TOKEN}\n")
        source = find_token(URL)
        assert (source.token, source.kind, source.path, source.key) == (
            VALID_TOKEN,
            "colab",
            None,
            None,
        )
        assert str(source) == "the Colab notebook secret CAVE_TOKEN"
        assert find_token().token == load_token(URL) == VALID_TOKEN
        assert asked == ["CAVE_TOKEN"]

    @pytest.mark.parametrize(
        "answer",
        [SecretNotFoundError("CAVE_TOKEN"), NotebookAccessError("CAVE_TOKEN"), TimeoutError(), ""],
        ids=["no-such-secret", "no-access", "timeout", "empty"],
    )
    def test_no_token_there_is_remembered(
        self, secrets: Path, monkeypatch: pytest.MonkeyPatch, answer: str | BaseException
    ) -> None:
        asked = stand_in_colab(monkeypatch, answer)
        for _ in range(3):
            with pytest.raises(TokenNotFoundError) as info:
                find_token()
            assert info.value.searched[-1] == COLAB_PLACE
            assert info.value.searched[1:-1] == tuple(token_file_paths())
            assert COLAB_PLACE in str(info.value)
        assert asked == ["CAVE_TOKEN"]

    @pytest.mark.parametrize("earlier", ["environment", "environment_file", "default_file"])
    def test_not_asked_where_an_earlier_step_gives_a_token(
        self, steps: Steps, monkeypatch: pytest.MonkeyPatch, earlier: str
    ) -> None:
        asked = stand_in_colab(monkeypatch, VALID_TOKEN)
        steps.set_up(earlier)
        assert find_token(**steps.kwargs).token == STEP_TOKEN[earlier]
        assert asked == []

    def test_not_asked_after_a_token_file_argument(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        asked = stand_in_colab(monkeypatch, VALID_TOKEN)
        with pytest.raises(TokenNotFoundError) as info:
            find_token(token_file=tmp_path / "missing.json")
        assert COLAB_PLACE not in info.value.searched
        assert asked == []

    def test_outside_colab_nothing_is_imported_or_asked(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        asked = stand_in_colab(monkeypatch, VALID_TOKEN)
        monkeypatch.delitem(sys.modules, "google.colab")  # google.colab.userdata stays
        tried: list[str] = []

        class Watcher:
            def find_spec(self, name: str, *args: Any) -> None:
                if name.startswith("google"):
                    tried.append(name)

        monkeypatch.setattr(sys, "meta_path", [Watcher(), *sys.meta_path])
        with pytest.raises(TokenNotFoundError) as info:
            find_token(URL)
        assert COLAB_PLACE not in info.value.searched
        assert COLAB_PLACE not in str(info.value)
        assert (asked, tried) == ([], [])
        assert "google.colab" not in sys.modules

    def test_threads_ask_once(self, monkeypatch: pytest.MonkeyPatch) -> None:
        asked = stand_in_colab(monkeypatch, VALID_TOKEN, delay=0.2)
        found: list[str] = []
        threads = [
            threading.Thread(target=lambda: found.append(find_token().token)) for _ in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert found == [VALID_TOKEN] * 8
        assert asked == ["CAVE_TOKEN"]
