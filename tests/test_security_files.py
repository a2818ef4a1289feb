"""Adversarial tests of the secret files: modes, faults mid-write, concurrent
processes, corrupt files, links, readable files, read-only folders.

Everything goes through real files under ``tmp_path`` and real processes. The
few tests that look inside a write wrap a function the writer calls (the real
one still runs) or make it fail once.
"""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import signal
import stat
import subprocess
import sys
import threading
import time
import traceback
import types
import warnings
from pathlib import Path
from typing import Any

import pytest
import requests

from cave_requests_auth import (
    CAVETokenAuth,
    TokenFileError,
    TokenFileModeWarning,
    TokenNotFoundError,
    delete_token,
    find_token,
    load_token,
    save_token,
    secretjson,
)
from cave_requests_auth import files as files_module
from helpers import (
    DEFAULT_SERVER_FILE,
    OTHER_TOKEN,
    VALID_TOKEN,
    AuditLog,
    Service,
    assert_clean,
    assert_not_chained,
    fingerprint,
    mode_of,
    read_until,
    run_cli,
    save_keys,
    write_secret,
)


def listing(folder: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every entry of ``folder``: name -> (inode, mtime, content) (links: not followed)."""
    found = {}
    for entry in sorted(folder.iterdir()):
        status = os.lstat(entry)
        content = entry.read_bytes() if entry.is_file() and not entry.is_symlink() else b""
        found[entry.name] = (status.st_ino, status.st_mtime_ns, content)
    return found


class TestSecretFiles:
    """Cases 10-16."""

    # -- 10: modes ---------------------------------------------------------------------

    def test_saved_file_0600_and_every_created_folder_0700(
        self, umask: int, isolated_home: Path, secrets: Path
    ) -> None:
        assert not (isolated_home / ".cloudvolume").exists()
        home_mode = mode_of(isolated_home)
        created: list[int] = []
        at_rename: list[tuple[int, bool, bytes]] = []
        real_mkstemp, real_replace = files_module.tempfile.mkstemp, files_module.os.replace

        def mkstemp(*args: Any, **kwargs: Any) -> tuple[int, str]:
            fd, name = real_mkstemp(*args, **kwargs)
            created.append(stat.S_IMODE(os.fstat(fd).st_mode))  # the moment it exists
            return fd, name

        def replace(source: Any, target: Any, **kwargs: Any) -> None:
            status = os.lstat(source)
            same_folder = os.path.dirname(source) == os.path.dirname(target)
            at_rename.append((stat.S_IMODE(status.st_mode), same_folder, Path(source).read_bytes()))
            real_replace(source, target, **kwargs)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(files_module.tempfile, "mkstemp", mkstemp)
            patch.setattr(files_module.os, "replace", replace)
            written = save_token(VALID_TOKEN)

        assert [Path(p).name for p in written] == ["cave-secret.json", DEFAULT_SERVER_FILE]
        assert created == [0o600, 0o600]
        for mode, same_folder, content in at_rename:
            assert (mode, same_folder) == (0o600, True)
            assert json.loads(content) == {"token": VALID_TOKEN}  # complete before the rename
        for path in written:
            assert mode_of(Path(path)) == 0o600
        assert mode_of(isolated_home / ".cloudvolume") == 0o700
        assert mode_of(secrets) == 0o700
        assert mode_of(isolated_home) == home_mode  # not made by the library: left alone

    def test_deep_token_file_folders_are_0700(self, umask: int, tmp_path: Path) -> None:
        path = tmp_path / "a" / "b" / "c" / "token.json"
        outer_mode = mode_of(tmp_path)
        save_token(VALID_TOKEN, token_file=path, write_server_file=False)
        assert mode_of(path) == 0o600
        for folder in (tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "b" / "c"):
            assert mode_of(folder) == 0o700
        assert mode_of(tmp_path) == outer_mode  # not made by the library: left alone

    def test_a_readable_file_is_replaced_by_a_private_one(self, umask: int, secrets: Path) -> None:
        path = write_secret(secrets / "cave-secret.json", {"token": OTHER_TOKEN, "x": "1"}, 0o644)
        save_token(VALID_TOKEN, overwrite=True, write_server_file=False)
        assert mode_of(path) == 0o600
        assert json.loads(path.read_text()) == {"token": VALID_TOKEN, "x": "1"}

    # -- 11: a fault mid-write ---------------------------------------------------------------

    @pytest.mark.parametrize(
        "fault",
        ["dump-half-then-ENOSPC", "dump-raises-interrupt", "fsync-EIO", "replace-EXDEV"],
    )
    def test_fault_mid_write_changes_nothing(self, secrets: Path, fault: str) -> None:
        path = write_secret(secrets / "cave-secret.json", {"token": OTHER_TOKEN, "keep": "me"})
        before = listing(secrets)

        def dump(data: Any, file: Any, **kwargs: Any) -> None:
            file.write(json.dumps(data)[:7])  # a half-written file, then the disk is full
            file.flush()
            if fault == "dump-raises-interrupt":
                raise KeyboardInterrupt
            raise OSError(errno.ENOSPC, "No space left on device")

        def fail(*args: Any, **kwargs: Any) -> None:
            raise OSError(errno.EIO if "fsync" in fault else errno.EXDEV, fault)

        expected = KeyboardInterrupt if "interrupt" in fault else TokenFileError
        # A patch of its own, undone before the checks; the test's monkeypatch also
        # holds the isolated HOME, which must stay.
        with pytest.MonkeyPatch.context() as patch:
            if fault.startswith("dump"):
                fake_json = types.SimpleNamespace(
                    dump=dump, loads=json.loads, JSONDecodeError=json.JSONDecodeError
                )
                patch.setattr(files_module, "json", fake_json)
            else:
                patch.setattr(os, "fsync" if "fsync" in fault else "replace", fail)
            with pytest.raises(expected) as info:
                save_token(VALID_TOKEN, overwrite=True, write_server_file=False)

        assert listing(secrets) == before  # same inode, same bytes, no temporary file
        if isinstance(info.value, TokenFileError):
            assert info.value.path == str(path)
            assert str(path) in str(info.value)
            assert_not_chained(info.value)
        # The lock was released: the next save goes through.
        save_token(VALID_TOKEN, overwrite=True, write_server_file=False)
        assert json.loads(path.read_text()) == {"token": VALID_TOKEN, "keep": "me"}

    def test_fault_in_the_second_file_leaves_the_first_written_and_no_temporary(
        self, secrets: Path
    ) -> None:
        calls = []
        real_fsync = os.fsync

        def fsync(fd: int) -> None:
            calls.append(fd)
            if len(calls) == 3:  # file 1, its folder, then file 2
                raise OSError(errno.EIO, "I/O error")
            real_fsync(fd)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(os, "fsync", fsync)
            with pytest.raises(TokenFileError) as info:
                save_token(VALID_TOKEN)
        assert info.value.path == str(secrets / DEFAULT_SERVER_FILE)
        assert [entry.name for entry in secrets.iterdir()] == ["cave-secret.json"]

    # -- 12: concurrent processes ----------------------------------------------------------

    def test_processes_save_different_keys_at_once(
        self, secrets: Path, isolated_home: Path
    ) -> None:
        path = write_secret(secrets / "cave-secret.json", {"seed": VALID_TOKEN})
        context = multiprocessing.get_context("spawn")  # fork, in a process with threads, may hang
        environment = {
            "HOME": str(isolated_home),
            "CLOUD_VOLUME_DIR": os.environ["CLOUD_VOLUME_DIR"],
        }
        start, stop, results = context.Event(), context.Event(), context.Queue()
        writers = [
            context.Process(target=save_keys, args=(environment, n, 20, start)) for n in range(6)
        ]
        readers = [
            context.Process(target=read_until, args=(str(path), stop, results)) for _ in range(2)
        ]
        for process in (*readers, *writers):
            process.start()
        began = time.monotonic()
        start.set()
        for writer in writers:
            writer.join(30)
        stop.set()
        reports = [results.get(timeout=10) for _ in readers]
        for reader in readers:
            reader.join(10)
        elapsed = time.monotonic() - began

        assert [writer.exitcode for writer in writers] == [0] * 6
        assert [reader.exitcode for reader in readers] == [0, 0]
        data = json.loads(path.read_text())
        assert set(data) == {"seed"} | {f"k{n}_{i}" for n in range(6) for i in range(20)}
        assert set(data.values()) == {VALID_TOKEN}
        assert mode_of(path) == 0o600
        assert [entry.name for entry in secrets.iterdir()] == ["cave-secret.json"]
        for reads, bad, examples, _, shrank in reports:
            assert reads > 0
            assert (bad, examples, shrank) == (0, [], 0)
        assert max(sizes for *_, sizes, _ in reports) > 2  # the readers ran during the writes
        assert elapsed < 30

    # -- 13: corrupt files -------------------------------------------------------------------

    @pytest.mark.parametrize(
        "content",
        [
            pytest.param(b"", id="empty"),
            pytest.param(b'{"token":', id="truncated"),
            pytest.param(b'{"token": "' + VALID_TOKEN.encode(), id="truncated-in-token"),
            pytest.param(b"[]", id="array"),
            pytest.param(b"null", id="null"),
            pytest.param(b'{"token": 123}', id="number"),
            pytest.param(b'{"token": null}', id="null-value"),
            pytest.param(
                b"\xef\xbb\xbf" + json.dumps({"token": VALID_TOKEN}).encode(), id="UTF-8-BOM"
            ),
            pytest.param(
                f'{{"token": "{OTHER_TOKEN}", "token": "{VALID_TOKEN}"}}'.encode(),
                id="duplicate-keys",
            ),
            pytest.param(f'{{"token": "{VALID_TOKEN}"}} {{}}'.encode(), id="trailing-data"),
            pytest.param(f'{{"token": "{VALID_TOKEN}\xff"}}'.encode("latin-1"), id="not-UTF-8"),
        ],
    )
    def test_corrupt_file_is_a_typed_error_and_never_overwritten(
        self,
        secrets: Path,
        service: Service,
        seen: list[Any],
        capsys: pytest.CaptureFixture[str],
        content: bytes,
    ) -> None:
        path = write_secret(secrets / "cave-secret.json", content)
        before = listing(secrets)
        errors: list[TokenFileError] = []
        for attempt in (
            lambda: find_token(),
            lambda: load_token(),
            lambda: requests.get(service.url("/echo"), auth=CAVETokenAuth()),
            lambda: save_token(OTHER_TOKEN, overwrite=True, write_server_file=False),
            lambda: save_token(OTHER_TOKEN, overwrite=True),
        ):
            with pytest.raises(TokenFileError) as info:
                attempt()
            errors.append(info.value)
        assert seen == []
        assert listing(secrets) == before
        assert not (secrets / DEFAULT_SERVER_FILE).exists()  # refused before writing anything
        text = content.decode("utf-8", "replace").strip()
        for error in errors:
            assert error.path == str(path)
            message = str(error)
            assert str(path) in message
            if len(text) >= 4 and text not in ("null",):  # a bare literal says nothing
                assert text not in message.replace(str(path), "<path>")
            assert VALID_TOKEN not in message
            assert OTHER_TOKEN not in message
            assert_not_chained(error)
            shown = "".join(traceback.format_exception(type(error), error, error.__traceback__))
            assert VALID_TOKEN not in shown
        code, out, err = run_cli(capsys, "status")
        assert code == 1
        assert str(path) in err
        assert "Traceback" not in out + err
        assert VALID_TOKEN not in out + err

    # -- 14: symbolic links --------------------------------------------------------------

    @pytest.fixture
    def linked(self, secrets: Path, tmp_path: Path) -> tuple[Path, Path]:
        target = write_secret(tmp_path / "real" / "token.json", {"token": OTHER_TOKEN, "x": "1"})
        secrets.mkdir(parents=True)
        link = secrets / "cave-secret.json"
        link.symlink_to(os.path.relpath(target, secrets))
        return link, target

    def test_link_loads_and_save_writes_the_target(self, linked: tuple[Path, Path]) -> None:
        link, target = linked
        pointed = os.readlink(link)
        assert find_token().token == OTHER_TOKEN
        # The spec allows writing the target or refusing; this library writes it.
        save_token(VALID_TOKEN, overwrite=True, write_server_file=False)
        assert json.loads(target.read_text()) == {"token": VALID_TOKEN, "x": "1"}
        assert mode_of(target) == 0o600
        assert link.is_symlink()
        assert os.readlink(link) == pointed
        assert find_token().token == VALID_TOKEN

    def test_chain_of_links(self, linked: tuple[Path, Path], tmp_path: Path) -> None:
        link, target = linked
        middle = tmp_path / "middle.json"
        middle.symlink_to(target)
        link.unlink()
        link.symlink_to(middle)
        save_token(VALID_TOKEN, overwrite=True, write_server_file=False)
        assert link.is_symlink()
        assert middle.is_symlink()
        assert os.readlink(link) == str(middle)
        assert json.loads(target.read_text())["token"] == VALID_TOKEN

    def test_link_into_a_read_only_folder_is_refused_and_kept(
        self, linked: tuple[Path, Path], read_only: Any
    ) -> None:
        link, target = linked
        read_only(target.parent)
        with pytest.raises(TokenFileError) as info:
            save_token(VALID_TOKEN, overwrite=True, write_server_file=False)
        assert str(target) in str(info.value) or str(link) in str(info.value)
        assert link.is_symlink()
        assert json.loads(target.read_text())["token"] == OTHER_TOKEN

    @pytest.mark.parametrize("kind", ["dangling", "loop"])
    def test_broken_link_is_a_clear_error(self, secrets: Path, tmp_path: Path, kind: str) -> None:
        secrets.mkdir(parents=True)
        link = secrets / "cave-secret.json"
        gone = tmp_path / "gone" / "token.json"
        link.symlink_to(gone if kind == "dangling" else link)
        for attempt in (
            lambda: find_token(),
            lambda: save_token(VALID_TOKEN, write_server_file=False),
            lambda: save_token(VALID_TOKEN, overwrite=True, write_server_file=False),
        ):
            with pytest.raises(TokenFileError) as info:
                attempt()
            assert info.value.path == str(link)
            assert str(link) in str(info.value)
            assert_not_chained(info.value)
        if kind == "dangling":
            assert "does not exist" in str(info.value)
        assert link.is_symlink()
        assert not gone.parent.exists()
        assert [entry.name for entry in secrets.iterdir()] == ["cave-secret.json"]

    def test_linked_secrets_folder(self, secrets: Path, tmp_path: Path) -> None:
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir(mode=0o700)
        secrets.parent.mkdir(parents=True)
        secrets.symlink_to(elsewhere)
        save_token(VALID_TOKEN, write_server_file=False)
        assert secrets.is_symlink()
        assert json.loads((elsewhere / "cave-secret.json").read_text()) == {"token": VALID_TOKEN}
        assert find_token().token == VALID_TOKEN

    # -- 15: readable token files ----------------------------------------------------------------

    @pytest.mark.parametrize("mode", [0o604, 0o640, 0o644, 0o660, 0o666, 0o606, 0o620])
    def test_readable_file_warns_naming_path_and_mode(
        self, secrets: Path, service: Service, mode: int
    ) -> None:
        path = write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN}, mode)
        with pytest.warns(TokenFileModeWarning) as caught:
            response = requests.get(service.url("/api/data"), auth=CAVETokenAuth())
        assert response.status_code == 200
        messages = [str(w.message) for w in caught if w.category is TokenFileModeWarning]
        assert any(str(path) in m and f"{mode:04o}" in m for m in messages)
        assert all(VALID_TOKEN not in m for m in messages)

    @pytest.mark.parametrize("mode", [0o600, 0o400])
    def test_private_file_gives_no_warning(
        self, secrets: Path, recwarn: pytest.WarningsRecorder, mode: int
    ) -> None:
        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN}, mode)
        assert find_token().token == VALID_TOKEN
        assert [w for w in recwarn if issubclass(w.category, TokenFileModeWarning)] == []

    def test_readable_target_of_a_link_warns(self, secrets: Path, tmp_path: Path) -> None:
        target = write_secret(tmp_path / "token.json", {"token": VALID_TOKEN}, 0o644)
        secrets.mkdir(parents=True)
        (secrets / "cave-secret.json").symlink_to(target)
        with pytest.warns(TokenFileModeWarning, match="0644"):
            find_token()

    # -- 16: read-only folders ------------------------------------------------------------------

    def test_read_only_secrets_folder(
        self, secrets: Path, read_only: Any, capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        read_only(secrets)
        before = listing(secrets)
        assert find_token().token == VALID_TOKEN
        with pytest.raises(TokenFileError) as info:
            save_token(OTHER_TOKEN, overwrite=True, write_server_file=False)
        assert str(path) in str(info.value) or str(secrets) in str(info.value)
        assert_not_chained(info.value)
        assert len(traceback.extract_tb(info.value.__traceback__)) < 15  # no recursion
        for argv in (("save", OTHER_TOKEN), ("logout",)):
            code, out, err = run_cli(capsys, *argv)
            assert code == 1
            assert "Traceback" not in out + err
            assert err.startswith("cave-auth: error: ")
            assert len(err.strip().splitlines()) == 1
            assert str(secrets) in err
        code, out, err = run_cli(capsys, "status")
        assert code == 0
        assert listing(secrets) == before

    def test_home_without_cloudvolume_that_cannot_be_written(
        self, isolated_home: Path, secrets: Path, read_only: Any, capsys: pytest.CaptureFixture[str]
    ) -> None:
        read_only(isolated_home)
        assert load_token() is None
        code, out, err = run_cli(capsys, "status")
        assert code == 1
        assert str(secrets / "cave-secret.json") in out
        with pytest.raises(TokenFileError) as info:
            save_token(VALID_TOKEN)
        assert str(isolated_home / ".cloudvolume") in str(info.value)
        assert len(traceback.extract_tb(info.value.__traceback__)) < 15
        code, out, err = run_cli(capsys, "save", VALID_TOKEN)
        assert code == 1
        assert "Traceback" not in out + err
        assert err.startswith("cave-auth: error: ")
        assert str(isolated_home / ".cloudvolume") in err
        assert list(isolated_home.iterdir()) == []

    def test_home_without_cloudvolume_is_made_on_save(self, isolated_home: Path) -> None:
        assert load_token() is None
        save_token(VALID_TOKEN)
        assert load_token() == VALID_TOKEN
        assert mode_of(isolated_home / ".cloudvolume") == 0o700

    @pytest.mark.parametrize("kind", ["deep-under-read-only", "file-in-the-way"])
    def test_secrets_folder_that_cannot_be_made(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read_only: Any, kind: str
    ) -> None:
        top = tmp_path / "top"
        top.mkdir()
        if kind == "file-in-the-way":
            (top / "a").write_text("not a folder")
            base = top / "a" / "b"
        else:
            base = top.joinpath(*["d"] * 300)  # deeper than any recursion would go
            read_only(top)
        monkeypatch.setenv("CLOUD_VOLUME_DIR", str(base))
        if kind == "deep-under-read-only":
            assert load_token() is None
        with pytest.raises(TokenFileError) as info:
            save_token(VALID_TOKEN)
        assert_not_chained(info.value)
        assert len(traceback.extract_tb(info.value.__traceback__)) < 15
        assert str(top / ("a" if kind == "file-in-the-way" else "d")) in str(info.value)


# == issue 9, items 11, 12 and 14 ==============================================================

POSIX = os.name == "posix"
AS_ROOT = POSIX and os.getuid() == 0
needs_root = pytest.mark.skipif(not AS_ROOT, reason="giving a file to another user needs root")
posix_only = pytest.mark.skipif(not POSIX, reason="owners and modes are POSIX")
STRANGER = 4242  # a uid that is neither ours nor root's
LONG_AGO = time.time() - 3600  # a file saved an hour ago: no longer "just written"


def temporary_files(folder: Path) -> list[Path]:
    return sorted(folder.glob(".*.tmp"))


def long_ago(path: Path, seconds: float = LONG_AGO) -> Path:
    os.utime(path, (seconds, seconds))
    return path


# -- item 11: owners and folders -------------------------------------------------------------


@posix_only
class TestOwners:
    @needs_root
    @pytest.mark.parametrize("where", ["default-file", "token_file"])
    def test_file_owned_by_another_user_is_refused(
        self, secrets: Path, tmp_path: Path, where: str
    ) -> None:
        if where == "token_file":
            path = write_secret(tmp_path / "mine" / "token.json", {"token": OTHER_TOKEN})
            kwargs: dict[str, Any] = {"token_file": path}
        else:
            path = write_secret(secrets / "cave-secret.json", {"token": OTHER_TOKEN})
            kwargs = {}
        os.chown(path, STRANGER, -1)
        before = fingerprint(path)
        for attempt in (
            lambda: find_token(**kwargs),
            lambda: save_token(VALID_TOKEN, overwrite=True, write_server_file=False, **kwargs),
        ):
            with pytest.raises(TokenFileError) as info:
                attempt()
            assert_clean(info.value, path, f"uid {STRANGER}")
        assert fingerprint(path) == before
        assert os.stat(path).st_uid == STRANGER

    @needs_root
    def test_folder_owned_by_another_user_is_refused(self, secrets: Path) -> None:
        path = write_secret(secrets / "cave-secret.json", {"token": OTHER_TOKEN})
        os.chown(secrets, STRANGER, -1)
        before = fingerprint(path)
        for attempt in (
            lambda: find_token(),
            lambda: save_token(VALID_TOKEN, overwrite=True, write_server_file=False),
        ):
            with pytest.raises(TokenFileError) as info:
                attempt()
            assert_clean(info.value, path, str(secrets), f"uid {STRANGER}")
        assert fingerprint(path) == before

    @needs_root
    def test_save_into_an_empty_folder_owned_by_another_user_is_refused(
        self, secrets: Path
    ) -> None:
        secrets.mkdir(parents=True)
        os.chown(secrets, STRANGER, -1)
        with pytest.raises(TokenFileError) as info:
            save_token(VALID_TOKEN, write_server_file=False)
        assert str(secrets) in str(info.value)
        assert f"uid {STRANGER}" in str(info.value)
        assert list(secrets.iterdir()) == []

    @needs_root
    def test_link_to_a_file_of_another_user_is_refused(self, secrets: Path, tmp_path: Path) -> None:
        target = write_secret(tmp_path / "theirs" / "token.json", {"token": OTHER_TOKEN})
        os.chown(target, STRANGER, -1)
        secrets.mkdir(parents=True)
        (secrets / "cave-secret.json").symlink_to(target)
        with pytest.raises(TokenFileError) as info:
            find_token()
        assert f"uid {STRANGER}" in str(info.value)
        assert str(secrets / "cave-secret.json") in str(info.value)

    def test_folder_others_can_write_warns_naming_it_and_the_fix(self, secrets: Path) -> None:
        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        secrets.chmod(0o777)
        with pytest.warns(TokenFileModeWarning) as caught:
            assert find_token().token == VALID_TOKEN
        messages = [str(w.message) for w in caught if w.category is TokenFileModeWarning]
        assert any(f"chmod 700 {secrets}" in message for message in messages)
        assert all(VALID_TOKEN not in message for message in messages)

    @pytest.mark.parametrize("mode", [0o700, 0o755, 0o1777])
    def test_folder_others_cannot_write_or_replace_in_gives_no_warning(
        self, secrets: Path, recwarn: pytest.WarningsRecorder, mode: int
    ) -> None:
        # 1777 (sticky, as /tmp): others may add files but not replace or remove ours,
        # and a file they add is refused for its owner.
        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        secrets.chmod(mode)
        assert find_token().token == VALID_TOKEN
        assert [w for w in recwarn if issubclass(w.category, TokenFileModeWarning)] == []


# -- item 12: a killed writer's temporary file -----------------------------------------------

KILLED_WRITER = """
import os, signal, sys
from cave_requests_auth import files, save_token

def killed(source, target):
    os.kill(os.getpid(), signal.SIGKILL)  # after the temporary file is complete

files.os.replace = killed
save_token(sys.argv[1], overwrite=True, write_server_file=False)
"""

PAUSED_WRITER = """
import os, sys
from cave_requests_auth import files, save_token

real_replace = os.replace

def paused(source, target):
    print(os.path.basename(source), flush=True)
    sys.stdin.readline()
    real_replace(source, target)

files.os.replace = paused
save_token(sys.argv[1], token_key="child", write_server_file=False)
"""

# Files a careless clean-up would reach; none is a temporary file of cave-secret.json.
DECOYS = [
    ".cave-secret.json.tmp",
    "cave-secret.json.a1b2c3d4.tmp",
    ".cave-secret.json.a1b2c3d4.tmp.bak",
    ".cave-secret.json.a1b2c3d4.json",
    ".other.json.a1b2c3d4.tmp",
    ".cave-secret.json.a1.b2.tmp",
    "x.cave-secret.json.a1b2c3d4.tmp",
    ".global.daf-apis.com-cave-secret.json.a1b2c3d4.tmp",
]


@posix_only
class TestKilledWriter:
    def test_killed_writers_temporary_file_is_removed_by_the_next_save(self, secrets: Path) -> None:
        path = write_secret(secrets / "cave-secret.json", {"token": OTHER_TOKEN, "keep": "me"})
        child = subprocess.run(
            [sys.executable, "-c", KILLED_WRITER, VALID_TOKEN], capture_output=True, timeout=120
        )
        assert child.returncode == -signal.SIGKILL
        [left] = temporary_files(secrets)
        assert left.name.startswith(".cave-secret.json.")
        assert mode_of(left) == 0o600
        assert json.loads(left.read_text())["token"] == VALID_TOKEN  # the leak
        assert json.loads(path.read_text())["token"] == OTHER_TOKEN  # the old file intact

        save_token(VALID_TOKEN, overwrite=True, write_server_file=False)
        assert temporary_files(secrets) == []
        assert sorted(p.name for p in secrets.iterdir()) == ["cave-secret.json"]
        assert json.loads(path.read_text()) == {"token": VALID_TOKEN, "keep": "me"}

    @pytest.mark.parametrize("then", ["save", "delete", "identical-save"])
    def test_left_temporary_file_is_removed_by_the_next_write_and_nothing_else(
        self, secrets: Path, then: str
    ) -> None:
        path = write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN, "k": "v"})
        # Exactly what a killed writer leaves: mkstemp's name, mode 0600, the new token.
        left = write_secret(secrets / ".cave-secret.json.x7_k2m9q.tmp", {"token": OTHER_TOKEN})
        decoys = {name: write_secret(secrets / name, {"token": OTHER_TOKEN}) for name in DECOYS}
        (secrets / ".cave-secret.json.folder00.tmp").mkdir()
        (secrets / ".cave-secret.json.link0000.tmp").symlink_to(decoys[DECOYS[0]])
        kept = {name: fingerprint(p) for name, p in decoys.items()}

        if then == "save":
            save_token(OTHER_TOKEN, overwrite=True, write_server_file=False)
        elif then == "identical-save":
            save_token(VALID_TOKEN, write_server_file=False)
        else:
            assert delete_token(write_server_file=False) == [str(path)]

        assert not left.exists()
        assert {name: fingerprint(p) for name, p in decoys.items()} == kept
        assert (secrets / ".cave-secret.json.folder00.tmp").is_dir()
        assert (secrets / ".cave-secret.json.link0000.tmp").is_symlink()
        expected = {"save": OTHER_TOKEN, "identical-save": VALID_TOKEN, "delete": None}[then]
        assert json.loads(path.read_text()).get("token") == expected

    def test_concurrent_writers_temporary_file_is_not_removed(self, secrets: Path) -> None:
        import fcntl

        path = write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        child = subprocess.Popen(
            [sys.executable, "-c", PAUSED_WRITER, OTHER_TOKEN],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout is not None
            assert child.stdin is not None
            name = child.stdout.readline().strip()  # the child holds the lock, mid-write
            assert name.startswith(".cave-secret.json.")
            assert (secrets / name).exists()

            locking = threading.Event()
            real_flock = fcntl.flock

            def flock(fd: int, operation: int) -> None:
                locking.set()
                real_flock(fd, operation)

            errors: list[BaseException] = []

            def save() -> None:
                try:
                    save_token(VALID_TOKEN, token_key="parent", write_server_file=False)
                except BaseException as error:
                    errors.append(error)

            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(fcntl, "flock", flock)
                saver = threading.Thread(target=save)
                saver.start()
                assert locking.wait(60)
                # Our save has done all it does before the lock, and waits for it.
                assert (secrets / name).exists()
                child.stdin.write("go\n")
                child.stdin.flush()
                assert child.wait(120) == 0
                saver.join(120)
            assert not saver.is_alive()
            assert errors == []
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        assert json.loads(path.read_text()) == {
            "token": VALID_TOKEN,
            "child": OTHER_TOKEN,
            "parent": VALID_TOKEN,
        }
        assert temporary_files(secrets) == []


# -- item 14: an unchanged file is not read again --------------------------------------------


def opened(audit: AuditLog, path: Path) -> int:
    """How many times ``path`` was opened since the last ``audit.events.clear()``."""
    return audit.opened(path.parent).count(str(path))


class TestUnchangedFileIsNotReadAgain:
    def test_unchanged_file_is_not_opened_again_over_300_hosts(
        self, secrets: Path, audit: AuditLog
    ) -> None:
        path = long_ago(write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN}))
        auth = CAVETokenAuth(hosts=["*.example.org"])
        audit.events.clear()
        for number in range(1000):
            url = f"https://h{number % 300}.example.org/api"
            assert find_token(url).token == VALID_TOKEN
            request = requests.Request("GET", url).prepare()
            auth(request)
            assert request.headers["Authorization"] == f"Bearer {VALID_TOKEN}"
        assert opened(audit, path) <= 1
        assert audit.opened(secrets) == [str(path)] * opened(audit, path)  # missing: not opened

    @pytest.mark.parametrize(
        "change", ["longer", "same-size-new-mtime", "replaced-same-size-same-mtime", "removed"]
    )
    def test_a_changed_file_is_read_again(
        self, secrets: Path, audit: AuditLog, change: str
    ) -> None:
        path = long_ago(write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN}))
        audit.events.clear()
        for _ in range(3):
            assert find_token().token == VALID_TOKEN
        assert opened(audit, path) <= 1
        if change == "longer":
            path.write_text(json.dumps({"token": OTHER_TOKEN, "more": "x"}))
            long_ago(path)
        elif change == "same-size-new-mtime":
            inode = path.stat().st_ino
            path.write_text(json.dumps({"token": OTHER_TOKEN}))  # in place, same size
            long_ago(path, LONG_AGO + 1)
            assert path.stat().st_ino == inode
        elif change == "replaced-same-size-same-mtime":
            new = long_ago(write_secret(secrets / "new.json", {"token": OTHER_TOKEN}))
            os.replace(new, path)
        else:
            path.unlink()
            with pytest.raises(TokenNotFoundError):
                find_token()
            return
        assert find_token().token == OTHER_TOKEN

    def test_file_written_just_now_is_read_again_at_the_same_size_and_time(
        self, secrets: Path
    ) -> None:
        # Written within one tick of the clock, two versions can share size and times;
        # a file this fresh is not trusted to the cache.
        path = secrets / "cave-secret.json"
        now = time.time_ns()
        for token in (VALID_TOKEN, OTHER_TOKEN, VALID_TOKEN):
            write_secret(path, {"token": token})
            os.utime(path, ns=(now, now))
            assert find_token().token == token

    def test_save_and_delete_are_seen_at_once(self, secrets: Path) -> None:
        path = long_ago(write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN}))
        assert find_token().token == VALID_TOKEN
        save_token(OTHER_TOKEN, overwrite=True, write_server_file=False)
        assert find_token().token == OTHER_TOKEN
        long_ago(path)
        assert find_token().token == OTHER_TOKEN
        delete_token(write_server_file=False)
        with pytest.raises(TokenNotFoundError):
            find_token()

    def test_file_that_appears_is_seen_and_a_missing_one_is_never_opened(
        self, secrets: Path, audit: AuditLog
    ) -> None:
        secrets.mkdir(parents=True)
        for _ in range(100):
            with pytest.raises(TokenNotFoundError):
                find_token("https://minnie.example.org")
        assert audit.opened(secrets) == []
        long_ago(
            write_secret(secrets / "minnie.example.org-cave-secret.json", {"token": OTHER_TOKEN})
        )
        assert find_token("https://minnie.example.org").token == OTHER_TOKEN

    @posix_only
    def test_mode_warning_is_given_for_each_lookup_without_opening_again(
        self, secrets: Path, audit: AuditLog
    ) -> None:
        path = long_ago(write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN}, 0o644))
        audit.events.clear()
        for _ in range(3):
            with pytest.warns(TokenFileModeWarning, match="0644"):
                assert find_token().token == VALID_TOKEN
        assert opened(audit, path) <= 1
        path.chmod(0o600)  # the mode is not part of what is cached
        with warnings.catch_warnings():
            warnings.simplefilter("error", TokenFileModeWarning)
            assert find_token().token == VALID_TOKEN

    def test_what_is_returned_is_a_copy(self, secrets: Path) -> None:
        path = long_ago(
            write_secret(
                secrets / "cave-secret.json", {"token": VALID_TOKEN, "list": [1, {"a": 2}]}
            )
        )
        first = files_module.read_secret_file(str(path))
        assert first is not None
        first["token"] = "changed"
        first["list"][1]["a"] = 3
        first["list"].append(4)
        assert files_module.read_secret_file(str(path)) == {
            "token": VALID_TOKEN,
            "list": [1, {"a": 2}],
        }

    def test_lookups_while_another_thread_saves_see_a_whole_token(self, secrets: Path) -> None:
        long_ago(write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN}))
        seen: set[str] = set()
        errors: list[BaseException] = []
        done = threading.Event()

        def read() -> None:
            try:
                while not done.is_set():
                    seen.add(find_token().token)
            except BaseException as error:
                errors.append(error)

        readers = [threading.Thread(target=read) for _ in range(4)]
        for reader in readers:
            reader.start()
        try:
            for number in range(40):
                save_token(
                    (VALID_TOKEN, OTHER_TOKEN)[number % 2], overwrite=True, write_server_file=False
                )
        finally:
            done.set()
            for reader in readers:
                reader.join(60)
        assert errors == []
        assert seen <= {VALID_TOKEN, OTHER_TOKEN}
        assert find_token().token == OTHER_TOKEN

    def test_the_cache_is_bounded(self, tmp_path: Path) -> None:
        for number in range(600):
            path = long_ago(
                write_secret(tmp_path / "many" / f"{number}.json", {"token": VALID_TOKEN})
            )
            assert find_token(token_file=path).token == VALID_TOKEN
        assert 0 < secretjson.cached_files() <= secretjson.CACHE_SIZE
