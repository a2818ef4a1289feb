"""``cave-auth status``: like ``gh auth status``, one block per token (issue 12, items 2, 7, 14).

``--check`` asks the auth server that issued each token: for a service, the one
its ``/auth_info`` names, else the realm of a 401. ``cave_host`` is a service
whose ``/auth_info`` names the loopback ``service`` as its auth server.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import flask
import pytest
from test_cli import MASKED, OTHER_MASKED, command, leaked
from werkzeug.serving import make_server

from helpers import (
    DEFAULT_SERVER_FILE,
    INVALID_TOKEN,
    OTHER_TOKEN,
    TOS_TOKEN,
    VALID_TOKEN,
    Service,
    run_cli,
    write_secret,
)

DEAD = "http://127.0.0.1:9"  # an auth server nobody answers for: asking it fails


@pytest.fixture
def cave_host(service: Service) -> Iterator[str]:
    """A CAVE service on loopback (``http://localhost:<port>``) whose auth server is ``service``."""
    app = flask.Flask("cave-host")
    seen: list[str] = []

    @app.route("/auth_info")
    def auth_info() -> object:
        seen.append(flask.request.headers.get("Authorization", ""))
        return {"login_url": service.url("/sticky_auth"), "supported_datastacks": ["minnie"]}

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)
    assert seen == [""] * len(seen)  # /auth_info is asked without a token


def blocks(out: str) -> dict[str, str]:
    """The blocks of the output, by their title line (a path, or $CAVE_TOKEN)."""
    found = {}
    for block in out.split("\n\n")[1:]:
        title = block.partition("\n")[0]
        if title.startswith(("/", "$")):
            found[title.split("   (")[0]] = block
    return found


class TestEverySavedToken:
    def test_one_block_per_token(
        self, capsys: pytest.CaptureFixture[str], secrets: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        server_file = write_secret(secrets / DEFAULT_SERVER_FILE, {"token": VALID_TOKEN})
        default = write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        deprecated = write_secret(secrets / "chunkedgraph-secret.json", {"token": OTHER_TOKEN})
        host = write_secret(secrets / "minnie.example.org-cave-secret.json", {"token": OTHER_TOKEN})
        write_secret(secrets / "x.example.org-cave-secret.json", {"other": "no token"})
        monkeypatch.setenv("CAVE_TOKEN", OTHER_TOKEN)
        code, out, err = run_cli(capsys, "status")
        assert code == 0, err
        found = blocks(out)
        # Those a request to the server reads, in that order; then the others.
        assert list(found) == ["$CAVE_TOKEN", *map(str, [server_file, default, deprecated, host])]
        assert found["$CAVE_TOKEN"] == (
            f"$CAVE_TOKEN   (in use)\n  token   {OTHER_MASKED}\n"
            "  for     every request: it wins over every file"
        )
        assert (
            f"  token   {MASKED}\n  for     requests to global.daf-apis.com"
            in found[str(server_file)]
        )
        assert "requests to hosts without a file of their own" in found[str(default)]
        assert "requests to minnie.example.org" in found[str(host)]
        assert "(a deprecated name)" in found[str(deprecated)]
        assert not leaked(out + err)

    def test_the_file_in_use_is_marked(
        self, capsys: pytest.CaptureFixture[str], secrets: Path
    ) -> None:
        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        host = write_secret(secrets / "minnie.example.org-cave-secret.json", {"token": OTHER_TOKEN})
        code, out, _ = run_cli(capsys, "status", "https://minnie.example.org/x")
        assert code == 0
        assert f"\n{host}   (in use)\n" in out
        assert out.count("(in use)") == 1

    @pytest.mark.parametrize(
        "stale_name", ["cave-secret.json", "minnie.example.org-cave-secret.json"]
    )
    def test_files_that_disagree_are_named_with_the_commands_that_align_them(
        self, secrets: Path, tmp_path: Path, stale_name: str
    ) -> None:
        """CAVEclient's save_token(overwrite=True) changed the server's file only."""
        server_file = write_secret(secrets / DEFAULT_SERVER_FILE, {"token": OTHER_TOKEN})
        stale = write_secret(secrets / stale_name, {"token": VALID_TOKEN})
        done = command("status")
        assert done.returncode == 0, done.stderr
        assert (
            f"  {OTHER_MASKED}  {server_file}   "
            "(what requests to https://global.daf-apis.com use)\n"
            f"  {MASKED}  {stale}\n"
            f"To put {OTHER_MASKED} in it too:\n"
        ) in done.stdout
        fix = done.stdout.rstrip("\n").rsplit("\n", 1)[1].strip()
        if stale_name == "cave-secret.json":
            assert fix == "cave-auth token | cave-auth save -"
        else:
            assert fix == f"cave-auth token | cave-auth save - --token-file {stale}"
        # The command, run as printed, aligns them (cave-auth: this Python's module).
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        shim = bin_dir / "cave-auth"
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m cave_requests_auth "$@"\n')
        shim.chmod(0o755)
        environment = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
        ran = subprocess.run(
            ["sh", "-c", fix], env=environment, capture_output=True, text=True, timeout=60
        )
        assert ran.returncode == 0, ran.stderr
        assert json.loads(stale.read_text()) == {"token": OTHER_TOKEN}
        again = command("status")
        assert "different tokens" not in again.stdout

    def test_the_mode_warning_is_one_command_for_every_file(
        self, capsys: pytest.CaptureFixture[str], secrets: Path
    ) -> None:
        """CAVEclient writes with the umask: every existing user has 0644 files."""
        loose = [
            write_secret(secrets / DEFAULT_SERVER_FILE, {"token": VALID_TOKEN}, 0o644),
            write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN}, 0o640),
        ]
        write_secret(secrets / "chunkedgraph-secret.json", {"token": VALID_TOKEN}, 0o600)
        code, _, err = run_cli(capsys, "status")
        assert code == 0
        warnings = [line for line in err.splitlines() if "other users" in line]
        assert len(warnings) == 1
        fix = warnings[0].split("restrict them with: ", 1)[1]
        assert fix == f"chmod 600 {loose[0]} {loose[1]}"
        subprocess.run(fix.split(), check=True, timeout=60)
        assert [stat.S_IMODE(path.stat().st_mode) for path in loose] == [0o600, 0o600]
        code, _, err = run_cli(capsys, "status")
        assert "other users" not in err

    def test_a_bad_file_is_shown_in_its_block(
        self, capsys: pytest.CaptureFixture[str], secrets: Path
    ) -> None:
        write_secret(secrets / DEFAULT_SERVER_FILE, {"token": VALID_TOKEN})
        bad = write_secret(secrets / "cave-secret.json", {"token": "two words"})
        code, out, _ = run_cli(capsys, "status")
        assert code == 0  # requests to the server use its own file, which is fine
        assert "  problem The token has white space" in blocks(out)[str(bad)]
        code, out, _ = run_cli(capsys, "status", "--server", "https://other.example.org")
        assert code == 1  # requests to other servers read the bad file: they would fail
        assert out == ""


class TestTheRulesOfARequest:
    """`status` and `token` said what a request would refuse to do (item 7)."""

    @pytest.mark.parametrize("name", ["status", "token"])
    def test_plain_http_to_another_machine(
        self, capsys: pytest.CaptureFixture[str], secrets: Path, name: str
    ) -> None:
        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        code, out, err = run_cli(capsys, name, "http://minnie.example.org/x")
        assert code == 1
        assert out == ""
        assert err == (
            "cave-auth: error: a request to http://minnie.example.org gets no CAVE token: "
            "plain http is allowed only to this machine (localhost, 127.0.0.1, ::1) and not "
            "through a proxy; use https://.\n"
        )
        assert "allow" not in err.split("plain http is allowed")[0]  # no Python argument

    @pytest.mark.parametrize(
        ("url", "says"),
        [("not-a-url", "is not a URL"), ("ftp://x", "is not an http(s) URL")],
    )
    @pytest.mark.parametrize("name", ["status", "token"])
    def test_not_an_http_url(
        self, capsys: pytest.CaptureFixture[str], secrets: Path, name: str, url: str, says: str
    ) -> None:
        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        code, out, err = run_cli(capsys, name, url)
        assert code == 2
        assert out == ""
        assert err.startswith("cave-auth: error: ")
        assert says in err

    def test_loopback_over_http_is_fine(
        self, capsys: pytest.CaptureFixture[str], secrets: Path
    ) -> None:
        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        code, out, _ = run_cli(capsys, "token", "http://127.0.0.1:8080/x")
        assert code == 0
        printed = out == VALID_TOKEN + "\n"
        assert printed, "cave-auth token did not print the token for a loopback URL"


class TestCheck:
    def test_asks_the_server(
        self, capsys: pytest.CaptureFixture[str], service: Service, secrets: Path
    ) -> None:
        path = write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        code, out, _ = run_cli(capsys, "status", "--check", "--server", service.url(""))
        assert code == 0
        assert (
            f"  user    Ada <ada@example.org>, user id 1 (asked {service.url('')})"
            in blocks(out)[str(path)]
        )

    def test_a_refused_token(
        self, capsys: pytest.CaptureFixture[str], service: Service, secrets: Path
    ) -> None:
        path = write_secret(secrets / "cave-secret.json", {"token": INVALID_TOKEN})
        code, out, err = run_cli(capsys, "status", "--check", "--server", service.url(""))
        assert code == 1
        assert (
            f"the token from key 'token' of {path} is invalid or expired" in blocks(out)[str(path)]
        )
        assert not leaked(out + err)

    def test_a_refused_token_not_in_use_is_shown_but_does_not_fail(
        self,
        capsys: pytest.CaptureFixture[str],
        service: Service,
        tls_service: Service,
        secrets: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls_service.ca_file)
        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        stale = write_secret(
            secrets / f"localhost:{tls_service.port}-cave-secret.json", {"token": INVALID_TOKEN}
        )  # checked with https://localhost:<port>, its own auth server
        code, out, _ = run_cli(capsys, "status", "--check", "--server", service.url(""))
        assert code == 0
        assert "  check   failed: " in blocks(out)[str(stale)]
        assert "is invalid or expired" in blocks(out)[str(stale)]

    def test_a_service_url_is_checked_with_the_auth_server_its_auth_info_names(
        self, capsys: pytest.CaptureFixture[str], service: Service, cave_host: str, secrets: Path
    ) -> None:
        """`status URL --check` sent URL's own token to the default auth server."""
        netloc = cave_host.split("://")[1]
        path = write_secret(secrets / f"{netloc}-cave-secret.json", {"token": VALID_TOKEN})
        service.seen.clear()
        code, out, err = run_cli(
            capsys, "status", f"{cave_host}/api/x", "--check", "--server", DEAD
        )
        assert code == 0, out + err
        assert (
            f"Requests to {cave_host}/api/x use the token {MASKED} from key 'token' of {path}."
            in out
        )
        assert f"  user    Ada <ada@example.org>, user id 1 (asked {service.url('')})" in out
        asked = [hit for hit in service.seen if hit["path"] == "/auth/api/v1/user/cache"]
        assert [hit["headers"].get("Authorization") for hit in asked] == [f"Bearer {VALID_TOKEN}"]

    def test_a_service_url_is_checked_with_the_auth_server_of_its_401_realm(
        self,
        capsys: pytest.CaptureFixture[str],
        service: Service,
        tls_service: Service,
        secrets: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """The service has no /auth_info; a 401 names https://localhost:<tls port>."""
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls_service.ca_file)
        url = service.url("/api/data", host="localhost")
        write_secret(secrets / f"localhost:{service.port}-cave-secret.json", {"token": VALID_TOKEN})
        tls_service.seen.clear()
        code, out, err = run_cli(capsys, "status", url, "--check", "--server", DEAD)
        assert code == 0, out + err
        assert f"(asked https://localhost:{tls_service.port})" in out
        asked = [hit for hit in tls_service.seen if hit["path"] == "/auth/api/v1/user/cache"]
        assert len(asked) == 1

    def test_each_token_with_its_own_auth_server(
        self, capsys: pytest.CaptureFixture[str], service: Service, cave_host: str, secrets: Path
    ) -> None:
        netloc = cave_host.split("://")[1]
        own = write_secret(secrets / f"{netloc}-cave-secret.json", {"token": OTHER_TOKEN})
        default = write_secret(secrets / "cave-secret.json", {"token": TOS_TOKEN})
        code, out, _ = run_cli(
            capsys, "status", f"{cave_host}/api", "--check", "--server", service.url("")
        )
        assert code == 0
        found = blocks(out)
        assert "  user    Grace <grace@example.org>, user id 2" in found[str(own)]
        assert "  user    Tess <tess@example.org>, user id 3" in found[str(default)]
        assert (
            "  terms   not accepted: 'MICrONS Terms' (dataset minnie); accept them at "
            f"{service.url('/sticky_auth/api/v1/tos/7/accept')}"
        ) in found[str(default)]

    def test_a_refusal_names_cave_token_once(self, service: Service, secrets: Path) -> None:
        """It said 'the token= argument', once in the output and again after 'error:'."""
        done = command(
            "status", "--check", "--server", service.url(""), env={"CAVE_TOKEN": INVALID_TOKEN}
        )
        both = done.stdout + done.stderr
        assert done.returncode == 1
        assert both.count("is invalid or expired") == 1
        assert "the token from the CAVE_TOKEN environment variable is invalid or expired" in both
        assert "token= argument" not in both
        assert "Traceback" not in both
        assert not leaked(both)
