"""``cave-auth logout``: the token goes from every file a request would read (issue 12, item 1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli import command, leaked

from helpers import DEFAULT_SERVER_FILE, OTHER_TOKEN, VALID_TOKEN, run_cli, write_secret


def test_the_deprecated_file_alone(capsys: pytest.CaptureFixture[str], secrets: Path) -> None:
    """Only chunkedgraph-secret.json left: requests send it, so logout removes it."""
    path = write_secret(secrets / "chunkedgraph-secret.json", {"token": VALID_TOKEN})
    code, out, err = run_cli(capsys, "logout")
    assert code == 0
    assert f"  {path}\n" in out
    assert not path.exists()
    code, _, _ = run_cli(capsys, "token")
    assert code == 1  # no request gets a token any more
    assert not leaked(out + err)


def test_every_file_a_request_to_the_server_reads(
    capsys: pytest.CaptureFixture[str], secrets: Path
) -> None:
    server = "https://minnie.example.org:8443"
    files = [
        write_secret(secrets / "minnie.example.org:8443-cave-secret.json", {"token": VALID_TOKEN}),
        write_secret(secrets / "minnie.example.org-cave-secret.json", {"token": VALID_TOKEN}),
        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN, "other": "kept"}),
        write_secret(secrets / "chunkedgraph-secret.json", {"token": OTHER_TOKEN}),
    ]
    elsewhere = write_secret(secrets / "other.example.org-cave-secret.json", {"token": OTHER_TOKEN})
    code, out, _ = run_cli(capsys, "logout", "--server", server)
    assert code == 0
    for path in files:
        assert f"  {path}\n" in out
    assert not files[0].exists()
    assert not files[1].exists()
    assert json.loads(files[2].read_text()) == {"other": "kept"}
    assert not files[3].exists()
    assert elsewhere.exists()  # not read by requests to that server...
    assert "Other saved tokens remain (other.example.org-cave-secret.json)" in out  # ...but named
    code, _, _ = run_cli(capsys, "token", "--server", server)
    assert code == 1


def test_all_removes_every_saved_cave_token_and_keeps_other_keys(
    capsys: pytest.CaptureFixture[str], secrets: Path
) -> None:
    """After `login --server X`, a plain `logout` kept X's file; --all removes it too."""
    run_cli(capsys, "save", VALID_TOKEN, "--server", "https://minnie.example.org")
    write_secret(secrets / "chunkedgraph-secret.json", {"token": OTHER_TOKEN, "keep": 1})
    write_secret(secrets / DEFAULT_SERVER_FILE, {"token": OTHER_TOKEN})
    unrelated = write_secret(secrets / "google-secret.json", {"token": "not ours"})
    code, out, err = run_cli(capsys, "logout", "--all")
    assert code == 0, err
    assert sorted(path.name for path in secrets.iterdir()) == [
        "chunkedgraph-secret.json",
        "google-secret.json",
    ]
    assert json.loads((secrets / "chunkedgraph-secret.json").read_text()) == {"keep": 1}
    assert json.loads(unrelated.read_text()) == {"token": "not ours"}
    assert out.count(f"  {secrets}/") == 4
    assert "Other saved tokens remain" not in out


def test_says_when_cave_token_still_gives_one(
    capsys: pytest.CaptureFixture[str], secrets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
    monkeypatch.setenv("CAVE_TOKEN", OTHER_TOKEN)
    code, out, err = run_cli(capsys, "logout")
    assert code == 0
    assert "Removed the token" in out
    assert err == (
        "cave-auth: warning: requests to https://global.daf-apis.com still get a token, "
        "from the CAVE_TOKEN environment variable; unset CAVE_TOKEN to stop that.\n"
    )


def test_nothing_to_remove(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "logout")
    assert (code, out, err) == (0, "No saved token to remove.\n", "")


def test_a_corrupt_file_stops_it_before_any_change(
    capsys: pytest.CaptureFixture[str], secrets: Path
) -> None:
    kept = write_secret(secrets / DEFAULT_SERVER_FILE, {"token": VALID_TOKEN})
    corrupt = write_secret(secrets / "cave-secret.json", "{not json")
    code, _, err = run_cli(capsys, "logout")
    assert code == 1
    assert err.startswith(f"cave-auth: error: {corrupt} is not valid JSON")
    assert json.loads(kept.read_text()) == {"token": VALID_TOKEN}


def test_all_with_a_token_file_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    own = write_secret(tmp_path / "own.json", {"token": VALID_TOKEN})
    code, _, err = run_cli(capsys, "logout", "--all", "--token-file", str(own))
    assert code == 2
    assert "--all" in err
    assert own.exists()


def test_in_a_subprocess(secrets: Path) -> None:
    write_secret(secrets / "chunkedgraph-secret.json", {"token": VALID_TOKEN})
    done = command("logout")
    assert done.returncode == 0, done.stderr
    assert "chunkedgraph-secret.json" in done.stdout
    assert "Traceback" not in done.stderr
    assert not (secrets / "chunkedgraph-secret.json").exists()
