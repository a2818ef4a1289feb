"""``cave-auth whoami``: the user, the terms still to accept, and clear failures.

Issue 12, items 2 (a refusal once, naming the real source), 3 (warnings as
``cave-auth: warning:``), 5 (a server that answers 404) and 13 (missing terms).
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_cli import command, leaked

from helpers import INVALID_TOKEN, TOS_TOKEN, USERS, VALID_TOKEN, Service, run_cli, write_secret


@pytest.fixture
def not_cave(tmp_path: Path) -> Iterator[str]:
    """A plain web server on loopback that answers 404 to everything CAVE asks for."""
    folder = tmp_path / "www"
    folder.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(folder), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_a_server_that_answers_404_was_reached(
    capsys: pytest.CaptureFixture[str], not_cave: str, secrets: Path
) -> None:
    """It said "cannot reach … check the address and the network"."""
    write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
    code, _, err = run_cli(capsys, "whoami", "--server", not_cave)
    assert code == 1
    assert err == (
        f"cave-auth: error: {not_cave} answered 404 File not found for "
        "/auth/api/v1/user/cache: it was reached, but it is probably not a CAVE auth "
        "server; check the address.\n"
    )


def test_terms_not_accepted_with_the_link_to_accept_them(
    capsys: pytest.CaptureFixture[str], service: Service, secrets: Path
) -> None:
    write_secret(secrets / "cave-secret.json", {"token": TOS_TOKEN})
    code, out, _ = run_cli(capsys, "whoami", "--server", service.url(""))
    assert code == 0
    assert out.startswith(
        "Tess <tess@example.org>, user id 3\n"
        "terms: not accepted: 'MICrONS Terms' (dataset minnie); accept them at "
        f"{service.url('/sticky_auth/api/v1/tos/7/accept')}\n"
    )


def test_server_text_is_shown_without_control_characters(
    capsys: pytest.CaptureFixture[str],
    service: Service,
    secrets: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = "e" * 32
    monkeypatch.setitem(
        USERS,
        token,
        {
            **USERS[TOS_TOKEN],
            "id": 9,
            "name": "Eve\x1b]52;c;cm0gLXJmIH4=\x07",
            "email": "eve@example.org\r\nforged line",
            "groups": ["lab\x1b[2J"],
            "missing_tos": [{"dataset_name": "min\x1bnie", "tos_id": 7, "tos_name": "T\x07oS"}],
        },
    )
    write_secret(secrets / "cave-secret.json", {"token": token})
    code, out, _ = run_cli(capsys, "whoami", "--server", service.url(""))
    assert code == 0
    assert "\x1b" not in out
    assert "\x07" not in out
    assert "\r" not in out
    assert out.startswith("Eve]52;c;cm0gLXJmIH4= <eve@example.org forged line>, user id 9\n")


def test_a_refused_token_is_said_once_naming_its_file(service: Service, secrets: Path) -> None:
    path = write_secret(secrets / "cave-secret.json", {"token": INVALID_TOKEN})
    done = command("whoami", "--server", service.url(""))
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith(
        f"cave-auth: error: GET {service.url('/auth/api/v1/user/cache')} was refused: "
        f"the token from key 'token' of {path} is invalid or expired (401 invalid_token)."
    )
    assert not leaked(done.stderr)


def test_cave_token_is_named(service: Service) -> None:
    done = command("whoami", "--server", service.url(""), env={"CAVE_TOKEN": INVALID_TOKEN})
    assert done.returncode == 1
    assert "the token from the CAVE_TOKEN environment variable is invalid" in done.stderr
    assert "token= argument" not in done.stderr
    assert done.stderr.count("\n") == 1


def test_warnings_are_cave_auth_warnings(service: Service, secrets: Path) -> None:
    """It printed Python's `…/auth.py:237: TokenFileModeWarning: … source = lookup(` lines."""
    path = write_secret(secrets / "chunkedgraph-secret.json", {"token": VALID_TOKEN}, 0o644)
    done = command("whoami", "--server", service.url(""))
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 2
    assert all(line.startswith("cave-auth: warning: ") for line in lines)
    assert any(f"chmod 600 {path}" in line for line in lines)  # the mode, with its fix
    assert any("deprecated file name" in line for line in lines)
    assert "Warning:" not in done.stderr
    assert ".py:" not in done.stderr
