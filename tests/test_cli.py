"""``cave-auth``: the basics of each command, through ``main(argv)``, and in subprocesses.

The helpers here (a subprocess run, a pseudo-terminal run, a leak check) are
shared by the ``test_cli_*.py`` modules.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from helpers import INVALID_TOKEN, OTHER_TOKEN, VALID_TOKEN, Service, run_cli, write_secret

MASKED = f"{VALID_TOKEN[:4]}…{VALID_TOKEN[-4:]}"
OTHER_MASKED = f"{OTHER_TOKEN[:4]}…{OTHER_TOKEN[-4:]}"


def leaked(text: str, *tokens: str) -> bool:
    """Whether any of ``tokens`` (default: the test tokens) is in ``text``.

    Assert ``not leaked(...)``: the failure message then shows no token.
    """
    return any(token in text for token in tokens or (VALID_TOKEN, OTHER_TOKEN, INVALID_TOKEN))


def command(
    *argv: str,
    input: str | None = None,
    env: dict[str, str] | None = None,
    encoding: str = "utf-8",
) -> subprocess.CompletedProcess[str]:
    """``python -m cave_requests_auth *argv`` in a subprocess, with the test's environment."""
    return subprocess.run(
        [sys.executable, "-m", "cave_requests_auth", *argv],
        input=input,
        capture_output=True,
        text=True,
        encoding=encoding,
        env={**os.environ, **(env or {})},
        timeout=60,
        check=False,
    )


def _read_until(fd: int, wanted: bytes, deadline: float) -> bytes:
    """Read a pseudo-terminal until ``wanted`` shows up (or it closes)."""
    import select
    import time

    seen = b""
    while wanted not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
    return seen


def in_a_terminal(
    argv: list[str], environment: dict[str, str], answer: tuple[bytes, bytes] | None = None
) -> tuple[int, bytes]:
    """Run ``python -m cave_requests_auth *argv`` on a pseudo-terminal; its exit code and screen.

    With ``answer`` = (prompt, typed): wait for the prompt, then type. Typed any
    earlier, the answer would be echoed: getpass turns echo off only when it asks.
    """
    import pty
    import time

    pid, fd = pty.fork()
    if pid == 0:  # the child: the command, on the terminal
        os.execve(sys.executable, [sys.executable, "-m", "cave_requests_auth", *argv], environment)
    deadline = time.monotonic() + 60
    screen = b""
    if answer is not None:
        prompt, typed = answer
        screen = _read_until(fd, prompt, deadline)
        assert prompt in screen, screen.decode(errors="replace")
        os.write(fd, typed)
    screen += _read_until(fd, b"\x00never", deadline)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), screen


class TestStatus:
    def test_no_token(self, capsys: pytest.CaptureFixture[str], secrets: Path) -> None:
        code, out, _ = run_cli(capsys, "status")
        assert code == 1
        assert "No token for requests to https://global.daf-apis.com" in out
        assert str(secrets / "cave-secret.json") in out
        assert "$CAVE_TOKEN" in out
        assert "https://global.daf-apis.com/auth/api/v1/create_token" in out

    def test_found_in_default_file(self, capsys: pytest.CaptureFixture[str], secrets: Path) -> None:
        path = write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        code, out, err = run_cli(capsys, "status")
        assert code == 0
        assert f"use the token {MASKED} from key 'token' of {path}." in out
        assert not leaked(out + err)

    def test_url_picks_the_host_file(
        self, capsys: pytest.CaptureFixture[str], secrets: Path
    ) -> None:
        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        path = write_secret(secrets / "minnie.example.org-cave-secret.json", {"token": OTHER_TOKEN})
        code, out, _ = run_cli(capsys, "status", "https://minnie.example.org/segmentation/api")
        assert code == 0
        assert f"use the token {OTHER_MASKED} from key 'token' of {path}." in out

    def test_environment(
        self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("CAVE_TOKEN", VALID_TOKEN)
        code, out, _ = run_cli(capsys, "status")
        assert code == 0
        assert f"use the token {MASKED} from the CAVE_TOKEN environment variable." in out

    def test_deprecation_warning(self, capsys: pytest.CaptureFixture[str], secrets: Path) -> None:
        write_secret(secrets / "chunkedgraph-secret.json", {"token": VALID_TOKEN})
        code, _, err = run_cli(capsys, "status")
        assert code == 0
        assert err.startswith("cave-auth: warning: ")
        assert "deprecated" in err

    def test_corrupt_file_is_one_sentence(
        self, capsys: pytest.CaptureFixture[str], secrets: Path
    ) -> None:
        path = write_secret(secrets / "cave-secret.json", '{"token": "' + VALID_TOKEN)
        code, out, err = run_cli(capsys, "status")
        assert code == 1
        assert err.startswith("cave-auth: error: ")
        assert err.count("\n") == 1
        assert str(path) in err
        assert not leaked(out + err)


class TestSave:
    def test_from_standard_input(self, capsys: pytest.CaptureFixture[str], secrets: Path) -> None:
        code, out, err = run_cli(capsys, "save", "-", stdin=VALID_TOKEN + "\n")
        assert code == 0
        for name in ("cave-secret.json", "global.daf-apis.com-cave-secret.json"):
            assert json.loads((secrets / name).read_text()) == {"token": VALID_TOKEN}
            assert (secrets / name).stat().st_mode & 0o777 == 0o600
            assert str(secrets / name) in out
        assert MASKED in out
        assert not leaked(out + err)

    def test_argument_and_server(self, capsys: pytest.CaptureFixture[str], secrets: Path) -> None:
        code, _, _ = run_cli(capsys, "save", VALID_TOKEN, "--server", "minnie.example.org")
        assert code == 0
        saved = json.loads((secrets / "minnie.example.org-cave-secret.json").read_text())
        assert saved == {"token": VALID_TOKEN}

    def test_replaces_an_older_token(
        self, capsys: pytest.CaptureFixture[str], secrets: Path
    ) -> None:
        write_secret(secrets / "cave-secret.json", {"token": OTHER_TOKEN, "other": "kept"})
        code, _, _ = run_cli(capsys, "save", VALID_TOKEN)
        assert code == 0
        saved = json.loads((secrets / "cave-secret.json").read_text())
        assert saved == {"token": VALID_TOKEN, "other": "kept"}

    def test_token_file_and_key(self, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
        target = tmp_path / "elsewhere" / "my.json"
        code, _, _ = run_cli(
            capsys, "save", VALID_TOKEN, "--token-file", str(target), "--token-key", "cave"
        )
        assert code == 0
        assert json.loads(target.read_text()) == {"cave": VALID_TOKEN}

    @pytest.mark.parametrize("bad", ["", "two words", "semi;colon", "ünïcode"])
    def test_invalid_token_is_refused(
        self, capsys: pytest.CaptureFixture[str], secrets: Path, bad: str
    ) -> None:
        code, _, err = run_cli(capsys, "save", "-", stdin=bad + "\n")
        assert code == 1
        assert err.startswith("cave-auth: error: The token ")
        assert "(from standard input)" in err
        assert not secrets.exists()

    def test_warns_when_cave_token_wins(
        self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("CAVE_TOKEN", OTHER_TOKEN)
        code, _, err = run_cli(capsys, "save", VALID_TOKEN)
        assert code == 0
        assert "cave-auth: warning: CAVE_TOKEN is set" in err

    def test_read_only_folder(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path, read_only: Any
    ) -> None:
        folder = tmp_path / "ro"
        folder.mkdir()
        read_only(folder)
        code, _, err = run_cli(capsys, "save", VALID_TOKEN, "--secrets-dir", str(folder))
        assert code == 1
        assert "Traceback" not in err
        assert str(folder) in err


class TestToken:
    def test_prints_the_bare_token(self, capsys: pytest.CaptureFixture[str], secrets: Path) -> None:
        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        code, out, _ = run_cli(capsys, "token")
        printed_alone = out == VALID_TOKEN + "\n"
        assert code == 0
        assert printed_alone, "cave-auth token did not print the token alone"

    def test_none(self, capsys: pytest.CaptureFixture[str]) -> None:
        code, out, err = run_cli(capsys, "token")
        assert code == 1
        assert out == ""
        assert "No CAVE token found" in err


class TestUsage:
    def test_bad_server(self, capsys: pytest.CaptureFixture[str]) -> None:
        code, _, err = run_cli(capsys, "status", "--server", "ftp://x.org")
        assert code == 2
        assert "'ftp://x.org' is not an http(s) address" in err
        assert "Traceback" not in err

    @pytest.mark.parametrize("command", ["login", "save", "status", "token", "whoami", "logout"])
    def test_help_has_an_example(self, capsys: pytest.CaptureFixture[str], command: str) -> None:
        code, out, _ = run_cli(capsys, command, "--help")
        assert code == 0
        assert "\nexample:\n  " in out
        assert "cave-auth" in out.split("\nexample:\n")[1]
        assert "--secrets-dir" in out

    def test_version(self, capsys: pytest.CaptureFixture[str]) -> None:
        from cave_requests_auth._version import __version__

        code, out, _ = run_cli(capsys, "--version")
        assert (code, out) == (0, f"cave-auth {__version__}\n")


class TestWhoami:
    def test_shows_the_user(
        self, capsys: pytest.CaptureFixture[str], service: Service, secrets: Path
    ) -> None:
        path = write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        code, out, err = run_cli(capsys, "whoami", "--server", service.url(""))
        assert code == 0
        assert out.startswith("Ada <ada@example.org>, user id 1\ngroups: lab\n")
        assert f"the token {MASKED} from key 'token' of {path}" in out
        assert not leaked(out + err)

    def test_refused_token(
        self, capsys: pytest.CaptureFixture[str], service: Service, secrets: Path
    ) -> None:
        write_secret(secrets / "cave-secret.json", {"token": INVALID_TOKEN})
        code, _, err = run_cli(capsys, "whoami", "--server", service.url(""))
        assert code == 1
        assert "invalid or expired" in err
        assert service.create_token_url in err
        assert not leaked(err)

    def test_unreachable_server(self, capsys: pytest.CaptureFixture[str], secrets: Path) -> None:
        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        code, _, err = run_cli(capsys, "whoami", "--server", "http://127.0.0.1:9")
        assert code == 1
        assert "cannot reach http://127.0.0.1:9" in err
        assert "check the address and the network" in err
        assert "Traceback" not in err


class TestLogin:
    def test_from_standard_input(
        self, capsys: pytest.CaptureFixture[str], service: Service, secrets: Path
    ) -> None:
        server = service.url("")
        code, out, err = run_cli(capsys, "login", "--server", server, stdin=VALID_TOKEN + "\n")
        assert code == 0
        assert f"{server}/auth/api/v1/create_token" in out
        assert "may invalidate" in out
        assert "The token belongs to Ada" in out
        assert json.loads((secrets / "cave-secret.json").read_text()) == {"token": VALID_TOKEN}
        assert not leaked(out + err)

    def test_existing_shows_the_tokens_page(
        self, capsys: pytest.CaptureFixture[str], service: Service
    ) -> None:
        server = service.url("")
        code, out, _ = run_cli(capsys, "login", "--existing", "--server", server, stdin=VALID_TOKEN)
        assert code == 0
        assert f"{server}/sticky_auth/settings/tokens" in out

    def test_refused_token_is_not_saved(
        self, capsys: pytest.CaptureFixture[str], service: Service, secrets: Path
    ) -> None:
        code, _, err = run_cli(capsys, "login", "--server", service.url(""), stdin=INVALID_TOKEN)
        assert code == 1
        assert "the token from standard input is invalid or expired" in err
        assert "Nothing was saved." in err
        assert not (secrets / "cave-secret.json").exists()

    def test_no_verify(self, capsys: pytest.CaptureFixture[str], secrets: Path) -> None:
        code, _, _ = run_cli(
            capsys, "login", "--server", "http://127.0.0.1:9", "--no-verify", stdin=VALID_TOKEN
        )
        assert code == 0
        assert json.loads((secrets / "cave-secret.json").read_text()) == {"token": VALID_TOKEN}

    def test_empty_input(self, capsys: pytest.CaptureFixture[str]) -> None:
        code, _, err = run_cli(capsys, "login", "--no-verify", stdin="")
        assert code == 1
        assert "is empty" in err

    def test_opens_the_page_only_when_asked(
        self, capsys: pytest.CaptureFixture[str], browser: Path
    ) -> None:
        opened = browser  # the file the fake browser notes each URL in
        server = "https://minnie.example.org"
        run_cli(capsys, "login", "--no-verify", "--server", server, stdin=VALID_TOKEN)
        assert not opened.exists()
        code, _, err = run_cli(
            capsys,
            "login",
            "--no-verify",
            "--open",
            "--existing",
            "--server",
            server,
            stdin=VALID_TOKEN,
        )
        assert code == 0
        assert opened.read_text() == f"{server}/sticky_auth/settings/tokens\n"
        assert "browser" not in err


def test_python_dash_m(isolated_home: Path) -> None:
    """The module runs as a program, with the isolated HOME of the test."""
    saved = command("save", "-", input=VALID_TOKEN + "\n")
    assert saved.returncode == 0, saved.stderr
    status = command("status")
    assert status.returncode == 0, status.stderr
    assert MASKED in status.stdout
    assert not leaked(saved.stdout + status.stdout + status.stderr)


def test_login_in_a_terminal_hides_the_token(
    isolated_home: Path, secrets: Path, service: Service
) -> None:
    """`cave-auth login` in a real pseudo-terminal: hidden prompt, token saved, never shown."""
    environment = {**os.environ, "TERM": "dumb"}
    code, screen = in_a_terminal(
        ["login", "--server", service.url("")],
        environment,
        answer=(b"Token: ", VALID_TOKEN.encode() + b"\n"),
    )
    assert b"Token: " in screen
    assert code == 0, screen.decode(errors="replace")
    assert b"The token belongs to Ada" in screen
    assert not leaked(screen.decode(errors="replace"))
    assert json.loads((secrets / "cave-secret.json").read_text()) == {"token": VALID_TOKEN}


@pytest.mark.parametrize(("no_color", "colored"), [(None, True), ("1", False)])
def test_color_only_on_a_terminal_and_never_with_no_color(
    isolated_home: Path, secrets: Path, no_color: str | None, colored: bool
) -> None:
    write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN}, 0o644)
    environment = {**os.environ, "TERM": "xterm"}
    environment.pop("NO_COLOR", None)
    if no_color is not None:
        environment["NO_COLOR"] = no_color
    code, screen = in_a_terminal(["status"], environment)
    assert code == 0
    assert b"cave-auth: warning:" in screen  # the file mode
    assert (b"\x1b[" in screen) is colored
