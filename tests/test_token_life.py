"""A token's life past saving it: when it expires, revoking it, and ``login()`` for Python.

Against the loopback ``middle_auth_client`` service, which also serves middle_auth's
own routes of a token's life (``helpers.add_token_life_routes``): ``user/token``,
``DELETE user/token/<id>``, ``logout`` and ``user/token/<token>/ttl``. There,
``VALID_TOKEN`` is an API key (it never expires) and ``OTHER_TOKEN`` a login token.
"""

from __future__ import annotations

import io
import json
import logging
import pickle
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
from test_cli import MASKED, OTHER_MASKED, leaked

import cave_requests_auth
from _loopback import json_answer
from cave_requests_auth import AuthResponseError, InvalidTokenError, TokenFileError
from helpers import (
    INVALID_TOKEN,
    OTHER_TOKEN,
    TTLS,
    VALID_TOKEN,
    Service,
    fingerprint,
    run_cli,
    write_secret,
)


def status_check(capsys: pytest.CaptureFixture[str], service: Service) -> tuple[int, str, str]:
    return run_cli(capsys, "status", "--check", "--server", service.url(""))


class TestExpiry:
    @pytest.mark.parametrize(
        ("token", "line"),
        [
            pytest.param(VALID_TOKEN, "  expires never (an API key)\n", id="an_api_key_never"),
            pytest.param(OTHER_TOKEN, "  expires in 6 days (", id="a_login_token_in_6_days"),
        ],
    )
    def test_status_says_when_the_token_expires(
        self,
        capsys: pytest.CaptureFixture[str],
        service: Service,
        secrets: Path,
        token: str,
        line: str,
    ) -> None:
        write_secret(secrets / "cave-secret.json", {"token": token})
        code, out, err = status_check(capsys, service)
        assert code == 0
        assert line in out
        assert token != OTHER_TOKEN or "UTC)" in out
        assert "warning" not in err

    @pytest.mark.parametrize(("seconds", "words"), [(5 * 3600, "in 5 hours"), (90, "in 1 minute")])
    def test_a_token_that_expires_within_a_day_is_a_warning_naming_login(
        self,
        capsys: pytest.CaptureFixture[str],
        service: Service,
        secrets: Path,
        monkeypatch: pytest.MonkeyPatch,
        seconds: int,
        words: str,
    ) -> None:
        monkeypatch.setitem(TTLS, OTHER_TOKEN, seconds)
        write_secret(secrets / "cave-secret.json", {"token": OTHER_TOKEN})
        code, out, err = status_check(capsys, service)
        assert code == 0
        assert f"  expires {words} (" in out
        assert f"cave-auth: warning: the token {OTHER_MASKED} from key 'token' of" in err
        assert f"expires {words} (" in err
        assert f"get a new one with `cave-auth login --server {service.url('')}`." in err
        assert not leaked(out + err)

    @pytest.mark.parametrize("variable", ["CAVE_TOKEN", "CAVE_TOKEN_FILE"])
    def test_a_token_from_a_variable_that_expires_soon_is_to_be_replaced_there(
        self,
        capsys: pytest.CaptureFixture[str],
        service: Service,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        variable: str,
    ) -> None:
        monkeypatch.setitem(TTLS, OTHER_TOKEN, 3600)
        if variable == "CAVE_TOKEN":
            monkeypatch.setenv(variable, OTHER_TOKEN)
        else:
            (tmp_path / "token").write_text(OTHER_TOKEN + "\n")
            (tmp_path / "token").chmod(0o600)
            monkeypatch.setenv(variable, str(tmp_path / "token"))
        code, _, err = status_check(capsys, service)
        assert code == 0
        assert f"cave-auth: warning: the token {OTHER_MASKED} from " in err
        assert "expires in 1 hour (" in err
        assert f"get a new one in ${variable}." in err
        assert "cave-auth login" not in err
        assert not leaked(err)

    def test_where_the_server_does_not_say_nothing_is_shown(
        self, capsys: pytest.CaptureFixture[str], recorder: Any, secrets: Path
    ) -> None:
        """An auth server without the route (an older middle_auth: 404): no line, no failure."""
        user = {"id": 1, "name": "Ada"}
        recorder.routes["/auth/api/v1/user/cache"] = lambda seen: json_answer(200, user)
        recorder.routes["/auth_info"] = lambda seen: json_answer(404, {})
        write_secret(secrets / "cave-secret.json", {"token": OTHER_TOKEN})
        code, out, _ = run_cli(capsys, "status", "--check", "--server", recorder.origin())
        assert code == 0
        assert "  user    Ada, user id 1" in out
        assert "expires" not in out
        assert any(seen.path.endswith("/ttl") for seen in recorder.seen)  # it was asked

    def test_the_token_in_the_routes_path_is_masked_in_urllib3s_log(
        self,
        capsys: pytest.CaptureFixture[str],
        service: Service,
        secrets: Path,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """middle_auth takes the token in the path of ``ttl``; urllib3 logs paths at DEBUG."""
        write_secret(secrets / "cave-secret.json", {"token": OTHER_TOKEN})
        with caplog.at_level(logging.DEBUG):
            code, out, _ = status_check(capsys, service)
        assert code == 0
        assert "  expires in 6 days" in out
        paths = [r.getMessage() for r in caplog.records if "/ttl" in r.getMessage()]
        assert paths  # urllib3 did log the request
        assert not leaked(caplog.text)


class TestRevoke:
    @pytest.mark.parametrize(
        ("token", "done"),
        [(VALID_TOKEN, "deleted the API key on"), (OTHER_TOKEN, "logged the token out of")],
        ids=["api-key", "login-token"],
    )
    def test_the_token_is_deleted_on_its_server_then_here(
        self,
        capsys: pytest.CaptureFixture[str],
        service: Service,
        secrets: Path,
        token: str,
        done: str,
    ) -> None:
        path = write_secret(secrets / "cave-secret.json", {"token": token, "other": "kept"})
        server = service.url("")
        assert requests.get(
            service.url("/api/data"), headers={"Authorization": f"Bearer {token}"}
        ).ok

        code, out, err = run_cli(capsys, "logout", "--revoke", "--server", server)

        assert code == 0, err
        assert (
            f"Revoked the token {token[:4]}…{token[-4:]} from key 'token' of {path}: {done}" in out
        )
        assert f"Removed the token (key 'token') from:\n  {path}" in out
        refused = requests.get(
            service.url("/api/data"), headers={"Authorization": f"Bearer {token}"}
        )
        assert (refused.status_code, refused.json()["error"]) == (401, "invalid_token")
        assert path.read_text() == '{"other": "kept"}'
        assert not leaked(out + err)

    def test_a_refusal_leaves_the_files_alone(
        self, capsys: pytest.CaptureFixture[str], service: Service, secrets: Path
    ) -> None:
        path = write_secret(secrets / "cave-secret.json", {"token": INVALID_TOKEN})
        before = fingerprint(path)
        code, out, err = run_cli(capsys, "logout", "--revoke", "--server", service.url(""))
        assert code == 1
        assert "is invalid or expired" in err
        assert err.rstrip().endswith(
            "The token was not revoked, and the saved files were left as they are."
        )
        assert fingerprint(path) == before
        assert "Removed" not in out
        assert not leaked(out + err)

    def test_an_unreachable_server_leaves_the_files_alone(
        self, capsys: pytest.CaptureFixture[str], secrets: Path
    ) -> None:
        path = write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        before = fingerprint(path)
        code, _, err = run_cli(capsys, "logout", "--revoke", "--server", "http://127.0.0.1:9")
        assert code == 1
        assert err.startswith("cave-auth: error: cannot reach http://127.0.0.1:9 to find its")
        assert "The token was not revoked, and the saved files were left as they are." in err
        assert fingerprint(path) == before

    def test_no_token_to_revoke(self, capsys: pytest.CaptureFixture[str], service: Service) -> None:
        code, _, err = run_cli(capsys, "logout", "--revoke", "--server", service.url(""))
        assert code == 1
        assert err.endswith(
            f"no token is saved for requests to http://127.0.0.1:{service.port}: none to revoke.\n"
        )

    def test_the_saved_token_is_revoked_not_cave_tokens(
        self,
        capsys: pytest.CaptureFixture[str],
        service: Service,
        secrets: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """CAVE_TOKEN (a shared CI token, say) is not logout's to revoke: the saved one is."""
        monkeypatch.setenv("CAVE_TOKEN", VALID_TOKEN)
        path = write_secret(secrets / "cave-secret.json", {"token": OTHER_TOKEN})
        code, out, err = run_cli(capsys, "logout", "--revoke", "--server", service.url(""))
        assert code == 0, err
        assert f"Revoked the token {OTHER_MASKED} from key 'token' of {path}" in out
        assert not path.exists()
        for token, status in ((VALID_TOKEN, 200), (OTHER_TOKEN, 401)):
            headers = {"Authorization": f"Bearer {token}"}
            assert requests.get(service.url("/api/data"), headers=headers).status_code == status

    def test_not_with_all(self, capsys: pytest.CaptureFixture[str]) -> None:
        code, _, err = run_cli(capsys, "logout", "--revoke", "--all")
        assert code == 2
        assert "--revoke deletes the token of one server" in err

    @pytest.mark.parametrize(
        ("route", "answer"),
        [
            ("/auth/api/v1/user/token", b"<html>a portal</html>"),
            ("/auth/api/v1/user/token", b"17"),
            ("/auth/api/v1/user/token", b'[{"id": "../../evil?x=", "token": "TOKEN"}]'),
            ("/auth/api/v1/logout", b"<html>signed out</html>"),
        ],
        ids=["html-list", "number-list", "path-id", "html-logout"],
    )
    def test_an_answer_that_is_not_middle_auths_revokes_nothing(
        self,
        capsys: pytest.CaptureFixture[str],
        recorder: Any,
        secrets: Path,
        route: str,
        answer: bytes,
    ) -> None:
        path = write_secret(secrets / "cave-secret.json", {"token": OTHER_TOKEN})
        before = fingerprint(path)
        body = answer.replace(b"TOKEN", OTHER_TOKEN.encode())
        recorder.routes[route] = lambda seen: (200, {"Content-Type": "application/json"}, body)
        recorder.routes["/auth/api/v1/user/token"] = recorder.routes.get(
            "/auth/api/v1/user/token", lambda seen: json_answer(200, [])
        )
        code, _, err = run_cli(capsys, "logout", "--revoke", "--server", recorder.origin())
        assert code == 1
        assert "is it the CAVE auth server?" in err
        assert "The token was not revoked, and the saved files were left as they are." in err
        assert fingerprint(path) == before
        assert not [seen for seen in recorder.seen if "evil" in seen.target]
        assert not leaked(err)


class TestLoginInPython:
    """``cave_requests_auth.login()``: the command's steps, and its errors, for a notebook."""

    @pytest.fixture
    def notebook(self, monkeypatch: pytest.MonkeyPatch) -> list[str]:
        """A notebook's kernel: ``getpass`` is its password field; what it was asked."""
        asked: list[str] = []

        def password_field(prompt: str = "Password: ") -> str:
            asked.append(prompt)
            return typed.pop()

        typed: list[str] = []
        monkeypatch.setitem(sys.modules, "ipykernel", type(sys)("ipykernel"))
        monkeypatch.setattr("getpass.getpass", password_field)
        monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # a kernel's stdin is no terminal
        self.typed = typed
        return asked

    def test_prompts_hidden_checks_and_saves(
        self,
        notebook: list[str],
        service: Service,
        secrets: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        self.typed.append(VALID_TOKEN + "\n")
        paths = cave_requests_auth.login(service.url(""))
        out = capsys.readouterr().out
        assert notebook == ["Token: "]
        assert "1. Go to " + service.url("/auth/api/v1/create_token") in out
        assert "The token belongs to Ada <ada@example.org>, user id 1." in out
        assert f"Saved the token ({MASKED}) to:" in out
        assert paths == [
            str(secrets / "cave-secret.json"),
            str(secrets / f"127.0.0.1:{service.port}-cave-secret.json"),
        ]
        assert cave_requests_auth.load_token(secrets_dir=secrets) == VALID_TOKEN
        assert not leaked(out)

    def test_a_refused_token_is_not_saved_and_says_so_as_the_command_does(
        self,
        notebook: list[str],
        service: Service,
        secrets: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        self.typed += [INVALID_TOKEN, INVALID_TOKEN]  # for login(), then the command
        with pytest.raises(AuthResponseError) as caught:
            cave_requests_auth.login(service.url(""))
        capsys.readouterr()
        code, _, err = run_cli(capsys, "login", "--server", service.url(""), stdin=INVALID_TOKEN)
        assert code == 1
        assert err == f"cave-auth: error: {caught.value}\n"
        assert str(caught.value).endswith("Nothing was saved.")
        assert not secrets.exists()

    def test_an_unreachable_server_says_how_to_save_without_checking(
        self, notebook: list[str], secrets: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        self.typed += [VALID_TOKEN, VALID_TOKEN]  # for login(), then the command
        with pytest.raises(requests.ConnectionError) as caught:
            cave_requests_auth.login("http://127.0.0.1:9")
        capsys.readouterr()
        code, _, err = run_cli(capsys, "login", "--server", "http://127.0.0.1:9", stdin=VALID_TOKEN)
        assert code == 1
        assert err == f"cave-auth: error: {caught.value}\n"
        assert str(caught.value).endswith(
            "to save the token without checking it: cave-auth login --no-verify "
            "--server http://127.0.0.1:9"
        )
        assert not secrets.exists()

    def test_what_is_no_token_is_refused_before_anything_is_asked(
        self, notebook: list[str], secrets: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        self.typed.append("Bearer " + VALID_TOKEN)
        with pytest.raises(InvalidTokenError, match="starts with 'Bearer '"):
            cave_requests_auth.login("http://127.0.0.1:9")
        assert not secrets.exists()

    def test_a_folder_that_cannot_be_written_is_refused_before_the_prompt(
        self, notebook: list[str], tmp_path: Path, read_only: Any
    ) -> None:
        folder = tmp_path / "read-only"
        folder.mkdir()
        read_only(folder)
        with pytest.raises(TokenFileError, match="not writable"):
            cave_requests_auth.login(secrets_dir=folder)
        assert notebook == []  # never asked for a token it could not save


class TestTheFileVariableInTheCommand:
    """``$CAVE_TOKEN_FILE`` (a Kubernetes or Docker secret mounted as a file), as
    ``status``, ``token``, ``whoami``, ``save``, ``login`` and ``logout`` show it."""

    @pytest.fixture
    def mounted(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
        secret = tmp_path / "run" / "secrets" / "cave-token"
        secret.parent.mkdir(parents=True)
        secret.write_text(OTHER_TOKEN + "\n")
        secret.chmod(0o600)
        monkeypatch.setenv("CAVE_TOKEN_FILE", str(secret))
        return secret

    def test_status_names_it_and_marks_it_in_use(
        self, capsys: pytest.CaptureFixture[str], mounted: Path, secrets: Path
    ) -> None:
        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        code, out, _ = run_cli(capsys, "status")
        assert code == 0
        named = f"{mounted} (named by $CAVE_TOKEN_FILE)"
        assert f"use the token {OTHER_MASKED} from {named}." in out
        assert f"$CAVE_TOKEN_FILE ({mounted})   (in use)" in out
        assert not leaked(out)

    def test_token_and_whoami_name_it(
        self, capsys: pytest.CaptureFixture[str], mounted: Path, service: Service
    ) -> None:
        code, out, _ = run_cli(capsys, "token", service.url("/"))
        assert (code, out) == (0, OTHER_TOKEN + "\n")
        code, out, _ = run_cli(capsys, "whoami", "--server", service.url(""))
        assert code == 0
        assert f"(the token {OTHER_MASKED} from {mounted} (named by $CAVE_TOKEN_FILE)" in out

    @pytest.mark.parametrize("command", ["save", "login"])
    def test_save_and_login_write_the_secrets_folder_and_say_it_wins(
        self,
        capsys: pytest.CaptureFixture[str],
        mounted: Path,
        secrets: Path,
        service: Service,
        command: str,
    ) -> None:
        before = fingerprint(mounted)
        argv = ["save", "-"] if command == "save" else ["login", "--server", service.url("")]
        code, _, err = run_cli(capsys, *argv, stdin=VALID_TOKEN + "\n")
        assert code == 0, err
        assert fingerprint(mounted) == before  # never written
        assert json.loads((secrets / "cave-secret.json").read_text()) == {"token": VALID_TOKEN}
        assert "cave-auth: warning: CAVE_TOKEN_FILE is set, so requests use it" in err
        assert "unset CAVE_TOKEN_FILE" in err

    def test_a_missing_file_is_one_sentence_naming_the_variable_and_path(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        missing = tmp_path / "nowhere" / "token"
        monkeypatch.setenv("CAVE_TOKEN_FILE", str(missing))
        code, out, err = run_cli(capsys, "token")
        assert code == 1
        assert out == ""
        assert err == (
            f"cave-auth: error: $CAVE_TOKEN_FILE names {missing}, which does not exist; "
            "point it to the file that holds the token, or unset it.\n"
        )

    def test_logout_says_the_variable_still_gives_a_token(
        self, capsys: pytest.CaptureFixture[str], mounted: Path, secrets: Path
    ) -> None:
        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        code, _, err = run_cli(capsys, "logout")
        assert code == 0
        assert "still get a token, from" in err
        assert "unset CAVE_TOKEN_FILE to stop that." in err
        assert mounted.read_text() == OTHER_TOKEN + "\n"


class TestWhatAnAuthServerSays:
    """An auth server's answers, whatever it sends (findings of the outside review)."""

    ESCAPE = "\x1b]52;c;ZXZpbA==\x07"  # OSC 52: a terminal writes the clipboard

    @pytest.mark.parametrize("command", [["whoami"], ["status", "--check"]])
    @pytest.mark.parametrize("echo", ["location", "reason"])
    def test_its_text_is_quoted_without_the_token_or_escapes(
        self,
        capsys: pytest.CaptureFixture[str],
        recorder: Any,
        secrets: Path,
        command: list[str],
        echo: str,
    ) -> None:
        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        if echo == "location":
            answer = (302, {"Location": f"https://x.example/?t={VALID_TOKEN}{self.ESCAPE}"}, b"")
        else:  # the reason phrase of the status line
            answer = (404, {":reason": f"Not{self.ESCAPE} {VALID_TOKEN}"}, b"")
        recorder.routes["/auth_info"] = lambda seen: (404, {}, b"")
        recorder.routes["/auth/api/v1/user/cache"] = lambda seen: answer
        code, out, err = run_cli(capsys, *command, "--server", recorder.origin())
        assert code == 1
        assert "\x1b" not in out + err
        assert not leaked(out + err)
        with pytest.raises(AuthResponseError) as caught:
            cave_requests_auth.whoami(server_address=recorder.origin(), auth=None)
        shown = str(caught.value) + str(pickle.loads(pickle.dumps(caught.value)))
        assert "\x1b" not in shown
        assert not leaked(shown)

    def test_an_answer_past_a_mebibyte_is_no_answer(
        self, recorder: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("CAVE_TOKEN", VALID_TOKEN)
        big = b'{"id": 1, "name": "' + b"a" * (2 << 20) + b'"}'
        recorder.routes["/auth/api/v1/user/cache"] = lambda seen: (200, {}, big)
        with pytest.raises(AuthResponseError, match="did not answer with a CAVE user"):
            cave_requests_auth.whoami(server_address=recorder.origin())

    @pytest.mark.parametrize("ttl", [b"100000000000000000", b"1" * 400, b"-5", b"true", b"1.5"])
    def test_a_time_to_live_that_is_no_answer_shows_nothing(
        self,
        capsys: pytest.CaptureFixture[str],
        recorder: Any,
        secrets: Path,
        ttl: bytes,
    ) -> None:
        user = {"id": 1, "name": "Ada"}
        recorder.routes["/auth/api/v1/user/cache"] = lambda seen: json_answer(200, user)
        recorder.routes["/auth_info"] = lambda seen: json_answer(404, {})
        route = f"/auth/api/v1/user/token/{OTHER_TOKEN}/ttl"
        recorder.routes[route] = lambda seen: (200, {"Content-Type": "application/json"}, ttl)
        write_secret(secrets / "cave-secret.json", {"token": OTHER_TOKEN})
        code, out, err = run_cli(capsys, "status", "--check", "--server", recorder.origin())
        assert code == 0, err
        assert "  user    Ada, user id 1" in out
        assert "expires" not in out
