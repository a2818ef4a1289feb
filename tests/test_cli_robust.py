"""``cave-auth`` as a shell command: usage, pipes, encodings, odd files; never a traceback.

Issue 12, items 9 (bare command, options anywhere), 15 (tracebacks) and 16 (the help).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_cli import MASKED, command, leaked

from helpers import VALID_TOKEN, Service, run_cli, write_secret


class TestUsage:
    def test_the_command_alone_prints_the_help(self) -> None:
        done = command()
        assert done.returncode == 0
        assert done.stdout.startswith("usage: cave-auth ")
        assert "Start with:" in done.stdout
        assert done.stderr == ""

    def test_the_epilog_lines_do_not_run_together(self) -> None:
        done = command("--help")
        lines = done.stdout.splitlines()
        assert "  cave-auth login     get a token, check it and save it" in lines
        assert "  cave-auth status    see which token requests use, and from where" in lines

    @pytest.mark.parametrize("before", [True, False])
    def test_common_options_before_or_after_the_command(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path, before: bool
    ) -> None:
        options = ["--secrets-dir", str(tmp_path / "s"), "--token-key", "cave"]
        argv = [*options, "save", VALID_TOKEN] if before else ["save", VALID_TOKEN, *options]
        code, _, err = run_cli(capsys, *argv)
        assert code == 0, err
        assert json.loads((tmp_path / "s" / "cave-secret.json").read_text()) == {
            "cave": VALID_TOKEN
        }
        code, out, _ = run_cli(
            capsys, "--token-key", "cave", "status", "--secrets-dir", str(tmp_path / "s")
        )
        assert code == 0
        assert MASKED in out

    def test_server_before_the_command(self, service: Service, secrets: Path) -> None:
        """`cave-auth --server S whoami` was an "invalid choice"."""
        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        done = command("--server", service.url(""), "whoami")
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("Ada <ada@example.org>, user id 1\n")

    def test_after_wins_over_before(
        self, capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        code, _, _ = run_cli(
            capsys,
            "--secrets-dir",
            str(tmp_path / "a"),
            "save",
            VALID_TOKEN,
            "--secrets-dir",
            str(tmp_path / "b"),
        )
        assert code == 0
        assert (tmp_path / "b" / "cave-secret.json").exists()
        assert not (tmp_path / "a").exists()

    @pytest.mark.parametrize(
        "argv",
        [
            ["save", VALID_TOKEN],
            ["token"],
            ["logout"],
            ["status"],
            ["whoami"],
            ["login", "--no-verify"],
        ],
    )
    @pytest.mark.parametrize("option", ["--token-key", "--secrets-dir", "--token-file"])
    def test_an_empty_option_is_refused(self, secrets: Path, argv: list[str], option: str) -> None:
        """`--token-key ''` was a TypeError, or accepted by save, token and logout."""
        done = command(*argv, option, "", input=VALID_TOKEN)
        assert done.returncode == 2
        assert done.stderr.endswith(f"error: argument {option}: {option} must not be empty\n")
        assert "Traceback" not in done.stderr
        assert not secrets.exists()


class TestNoTraceback:
    def test_a_closed_pipe(self, secrets: Path) -> None:
        """`cave-auth token | head -c 0` raised BrokenPipeError."""
        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        read_end, write_end = os.pipe()
        os.close(read_end)  # nobody will read: the first write fails
        try:
            done = subprocess.run(
                [sys.executable, "-m", "cave_requests_auth", "token"],
                stdout=write_end,
                stderr=subprocess.PIPE,
                text=True,
                timeout=60,
                check=False,
            )
        finally:
            os.close(write_end)
        assert done.returncode == 1
        assert done.stderr == ""

    def test_help_into_a_closed_pipe(self) -> None:
        read_end, write_end = os.pipe()
        os.close(read_end)
        try:
            done = subprocess.run(
                [sys.executable, "-m", "cave_requests_auth", "--help"],
                stdout=write_end,
                stderr=subprocess.PIPE,
                text=True,
                timeout=60,
                check=False,
            )
        finally:
            os.close(write_end)
        assert done.stderr == ""  # no traceback, no "Exception ignored" at exit

    @pytest.mark.parametrize("argv", [["status"], ["token"], ["logout"], ["save", VALID_TOKEN]])
    def test_a_deeply_nested_file(self, secrets: Path, argv: list[str]) -> None:
        path = write_secret(secrets / "cave-secret.json", "[" * 100_000)
        done = command(*argv)
        assert done.returncode == 1
        assert done.stderr.startswith("cave-auth: error: ")
        assert str(path) in done.stderr
        assert "Traceback" not in done.stderr
        assert path.read_text() == "[" * 100_000

    def test_a_latin_1_terminal(self, secrets: Path) -> None:
        """`save -` wrote both files, then exited 2 on the `…` of the masked token."""
        done = command(
            "save",
            "-",
            input=VALID_TOKEN + "\n",
            env={"PYTHONIOENCODING": "latin-1"},
            encoding="latin-1",
        )
        assert done.returncode == 0, done.stderr
        assert f"Saved the token ({VALID_TOKEN[:4]}...{VALID_TOKEN[-4:]}) to:" in done.stdout
        status = command("status", env={"PYTHONIOENCODING": "ascii"}, encoding="ascii")
        assert status.returncode == 0, status.stderr
        assert f"{VALID_TOKEN[:4]}...{VALID_TOKEN[-4:]}" in status.stdout
        assert not leaked(done.stdout + status.stdout)

    def test_no_standard_input(self, secrets: Path) -> None:
        script = (
            "import sys; sys.stdin = None; from cave_requests_auth.cli import main; "
            "raise SystemExit(main(['save', '-']))"
        )
        done = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 1
        assert done.stderr.startswith("cave-auth: error: there is no standard input")
        assert not secrets.exists()
