"""What `login` and `save` take: checked before asking, refused with a hint, never lost.

Issue 12, items 4 (files checked before the token is asked for), 6 (several
lines), 8 (the placeholder), 11 (server down, no browser), 12 (Bearer, JSON,
other shapes) and 16 (Ctrl-C at the prompt).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from test_cli import command, in_a_terminal, leaked

from cave_requests_auth import CAVEAuthWarning, InvalidTokenError, save_token
from helpers import DEFAULT_SERVER_FILE, VALID_TOKEN, Service, run_cli, write_secret


class TestLoginChecksTheFilesFirst:
    def test_corrupt_file(
        self, capsys: pytest.CaptureFixture[str], service: Service, secrets: Path
    ) -> None:
        """Before the user creates a token (which may invalidate the old one)."""
        corrupt = write_secret(secrets / "cave-secret.json", '{"token": ')
        service.seen.clear()
        code, out, err = run_cli(capsys, "login", "--server", service.url(""), stdin=VALID_TOKEN)
        assert code == 1
        assert err.startswith(f"cave-auth: error: {corrupt} is not valid JSON")
        assert "Go to" not in out  # the steps were not shown: nobody was asked for a token
        assert service.seen == []  # nor was anything checked with the server

    def test_read_only_folder(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path, read_only: Any
    ) -> None:
        folder = tmp_path / "ro"
        folder.mkdir()
        read_only(folder)
        code, out, err = run_cli(
            capsys, "login", "--no-verify", "--secrets-dir", str(folder), stdin=VALID_TOKEN
        )
        assert code == 1
        assert err.startswith(f"cave-auth: error: Cannot save a token in {folder}")
        assert out == ""

    def test_a_folder_still_to_be_made_is_fine(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        folder = tmp_path / "new" / "secrets"
        code, _, err = run_cli(
            capsys, "login", "--no-verify", "--secrets-dir", str(folder), stdin=VALID_TOKEN
        )
        assert code == 0, err
        assert json.loads((folder / "cave-secret.json").read_text()) == {"token": VALID_TOKEN}
        assert [path.name for path in folder.iterdir() if path.name.startswith(".")] == []


def test_several_lines_on_standard_input_are_refused(secrets: Path) -> None:
    """`printf 'a\\nb\\n' | cave-auth save -` saved `a`."""
    done = command("save", "-", input="a\nb\n")
    assert done.returncode == 1
    assert done.stderr == (
        "cave-auth: error: standard input has 2 lines; give the token alone, on one line "
        "(nothing was saved).\n"
    )
    assert not secrets.exists()


def test_blank_lines_around_the_token_are_fine(
    capsys: pytest.CaptureFixture[str], secrets: Path
) -> None:
    code, _, _ = run_cli(capsys, "save", "-", stdin=f"\n{VALID_TOKEN}\r\n\n")
    assert code == 0
    assert json.loads((secrets / "cave-secret.json").read_text()) == {"token": VALID_TOKEN}


class TestThePlaceholder:
    def test_save_token_refuses_it(self, secrets: Path) -> None:
        """The README's example, run verbatim, saved the placeholder."""
        with pytest.raises(InvalidTokenError, match="placeholder PASTE_YOUR_TOKEN_HERE"):
            save_token("PASTE_YOUR_TOKEN_HERE")
        assert not secrets.exists()
        save_token(VALID_TOKEN)  # the real token then saves without overwrite=True
        assert json.loads((secrets / "cave-secret.json").read_text()) == {"token": VALID_TOKEN}

    def test_the_command_refuses_it(self, secrets: Path) -> None:
        done = command("save", "-", input="PASTE_YOUR_TOKEN_HERE\n")
        assert done.returncode == 1
        assert "placeholder PASTE_YOUR_TOKEN_HERE" in done.stderr
        assert not secrets.exists()


@pytest.mark.parametrize(
    ("pasted", "hint"),
    [
        (f"Bearer {VALID_TOKEN}", "without 'Bearer '"),
        (f"Authorization: Bearer {VALID_TOKEN}", "without 'Bearer '"),
        (f'"{VALID_TOKEN}"', "without quotes or braces"),
        (f'{{"token": "{VALID_TOKEN}"}}', "without quotes or braces"),
    ],
)
def test_a_pasted_header_or_json_is_refused_with_a_hint(
    capsys: pytest.CaptureFixture[str], secrets: Path, pasted: str, hint: str
) -> None:
    code, out, err = run_cli(capsys, "save", "-", stdin=pasted + "\n")
    assert code == 1
    assert hint in err
    assert "white space or a control character" not in err
    assert not secrets.exists()
    assert not leaked(out + err)
    with pytest.raises(InvalidTokenError, match=hint):
        save_token(pasted)


class TestAnotherShape:
    """Other deployments use other formats: saved, with a warning."""

    def test_the_command_warns(self, secrets: Path) -> None:
        done = command("save", "abc")
        assert done.returncode == 0, done.stderr
        assert done.stderr == (
            "cave-auth: warning: The token is 3 characters long and not the 32 hexadecimal "
            "characters of a CAVE token; it is accepted (other deployments use other "
            "formats), but check that it was copied whole.\n"
        )
        assert json.loads((secrets / "cave-secret.json").read_text()) == {"token": "abc"}

    def test_python_warns(self, secrets: Path) -> None:
        with pytest.warns(CAVEAuthWarning, match="3 characters long"):
            save_token("abc")
        assert json.loads((secrets / "cave-secret.json").read_text()) == {"token": "abc"}

    def test_no_warning_for_a_cave_token(self, recwarn: pytest.WarningsRecorder) -> None:
        save_token(VALID_TOKEN.upper())
        assert [w for w in recwarn if issubclass(w.category, CAVEAuthWarning)] == []


class TestLoginThatCannotCheck:
    def test_server_down_says_how_to_save_without_checking(self, secrets: Path) -> None:
        done = command("login", "--server", "http://127.0.0.1:9", input=VALID_TOKEN + "\n")
        assert done.returncode == 1
        assert done.stderr.startswith("cave-auth: error: cannot reach http://127.0.0.1:9")
        assert done.stderr.endswith(
            "Nothing was saved; to save the token without checking it: "
            "cave-auth login --no-verify --server http://127.0.0.1:9\n"
        )
        assert not secrets.exists()
        assert not leaked(done.stdout + done.stderr)

    def test_open_without_a_browser_says_so(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import webbrowser

        empty = tmp_path / "no-programs"
        empty.mkdir()
        monkeypatch.setenv("PATH", str(empty))
        monkeypatch.setenv("BROWSER", str(tmp_path / "no-such-browser"))
        for name in ("DISPLAY", "WAYLAND_DISPLAY"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setattr(webbrowser, "_tryorder", None)
        monkeypatch.setattr(webbrowser, "_browsers", {})
        code, _, err = run_cli(capsys, "login", "--open", "--no-verify", stdin=VALID_TOKEN)
        assert code == 0
        assert (
            "cave-auth: warning: no web browser could be opened here; open the address "
            "above yourself.\n"
        ) in err


def test_ctrl_c_at_the_prompt_ends_the_line(isolated_home: Path, secrets: Path) -> None:
    """`Token: cave-auth: error: interrupted.` ran together on one line."""
    environment = {**os.environ, "TERM": "dumb", "NO_COLOR": "1"}
    code, screen = in_a_terminal(
        ["login", "--no-verify"], environment, answer=(b"Token: ", b"\x03")
    )
    text = screen.decode(errors="replace")
    assert code == 130, text
    assert "Token: cave-auth" not in text
    assert any(line == "cave-auth: error: interrupted." for line in text.splitlines()), text
    assert not secrets.exists()


def test_default_server_file_is_written_too(
    capsys: pytest.CaptureFixture[str], secrets: Path
) -> None:
    code, _, _ = run_cli(capsys, "login", "--no-verify", stdin=VALID_TOKEN)
    assert code == 0
    assert json.loads((secrets / DEFAULT_SERVER_FILE).read_text()) == {"token": VALID_TOKEN}
