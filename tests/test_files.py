"""Secret files on disk: modes, atomic replacement, corrupt files, links, read-only folders.

Contract: SPEC.md, "Secret files". Everything goes through real files under
``tmp_path``; the few tests that need to see inside a write wrap ``os.replace`` or
``os.fsync`` and still call the real one or fail it once.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import traceback
import warnings
from pathlib import Path
from typing import Any

import pytest

from cave_requests_auth import (
    TokenFileError,
    TokenFileModeWarning,
    delete_token,
    find_token,
    load_token,
    save_token,
)
from helpers import (
    DEFAULT_SERVER_FILE,
    OTHER_TOKEN,
    VALID_TOKEN,
    assert_not_chained,
    fingerprint,
    in_threads,
    mode_of,
    write_secret,
)


def temporary_files(*folders: Path) -> list[Path]:
    """Leftovers of an atomic write (``.<name>.<random>.tmp``)."""
    return [p for folder in folders if folder.is_dir() for p in folder.glob(".*.tmp")]


class TestModes:
    def test_files_0600_and_every_new_folder_0700(self, umask: int, tmp_path: Path) -> None:
        folder = tmp_path / "a" / "b" / "secrets"
        paths = save_token(VALID_TOKEN, secrets_dir=folder)
        assert len(paths) == 2
        for path in paths:
            assert mode_of(Path(path)) == 0o600
        for created in (tmp_path / "a", tmp_path / "a" / "b", folder):
            assert mode_of(created) == 0o700

    def test_default_folders_under_home(
        self, umask: int, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv("CLOUD_VOLUME_DIR")
        save_token(VALID_TOKEN)
        assert mode_of(isolated_home / ".cloudvolume") == 0o700
        assert mode_of(isolated_home / ".cloudvolume" / "secrets") == 0o700
        assert mode_of(isolated_home / ".cloudvolume" / "secrets" / "cave-secret.json") == 0o600

    def test_token_file_folders(self, umask: int, tmp_path: Path) -> None:
        own = tmp_path / "x" / "y" / "mine.json"
        save_token(VALID_TOKEN, token_file=own, write_server_file=False)
        assert mode_of(own) == 0o600
        assert mode_of(tmp_path / "x") == 0o700
        assert mode_of(tmp_path / "x" / "y") == 0o700

    def test_existing_folder_mode_is_left_alone(self, umask: int, tmp_path: Path) -> None:
        folder = tmp_path / "shared"
        folder.mkdir()
        folder.chmod(0o755)
        save_token(VALID_TOKEN, secrets_dir=folder)
        assert mode_of(folder) == 0o755

    def test_readable_file_becomes_0600_when_replaced(self, umask: int, secrets: Path) -> None:
        path = write_secret(secrets / "cave-secret.json", {"token": OTHER_TOKEN}, 0o644)
        save_token(VALID_TOKEN, overwrite=True, write_server_file=False)
        assert mode_of(path) == 0o600

    def test_delete_keeps_0600(self, umask: int, secrets: Path) -> None:
        save_token(VALID_TOKEN, write_server_file=False)
        path = secrets / "cave-secret.json"
        data = json.loads(path.read_text())
        write_secret(path, {**data, "other": "kept"})
        delete_token(write_server_file=False)
        assert mode_of(path) == 0o600
        assert json.loads(path.read_text()) == {"other": "kept"}


class TestAtomicWrite:
    def test_file_is_replaced_not_rewritten(self, secrets: Path) -> None:
        path = write_secret(secrets / "cave-secret.json", {"token": OTHER_TOKEN, "k": "v"})
        inode = path.stat().st_ino
        save_token(VALID_TOKEN, overwrite=True, write_server_file=False)
        assert path.stat().st_ino != inode
        assert json.loads(path.read_text()) == {"token": VALID_TOKEN, "k": "v"}
        assert temporary_files(secrets) == []
        assert sorted(p.name for p in secrets.iterdir()) == ["cave-secret.json"]

    def test_temporary_file_is_0600_complete_and_beside_the_target(
        self, secrets: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        seen: list[tuple[str, str, int, bytes]] = []
        real_replace = os.replace

        def replace(source: Any, target: Any, **kwargs: Any) -> None:
            seen.append(
                (
                    os.fspath(source),
                    os.fspath(target),
                    stat.S_IMODE(os.stat(source).st_mode),
                    Path(source).read_bytes(),
                )
            )
            real_replace(source, target, **kwargs)

        old = os.umask(0)
        try:
            monkeypatch.setattr(os, "replace", replace)
            save_token(VALID_TOKEN, write_server_file=False)
        finally:
            os.umask(old)
        [(source, target, mode, content)] = seen
        assert target == str(secrets / "cave-secret.json")
        assert os.path.dirname(source) == str(secrets)
        assert os.path.basename(source).startswith(".cave-secret.json.")
        assert source.endswith(".tmp")
        assert mode == 0o600
        assert json.loads(content) == {"token": VALID_TOKEN}

    @pytest.mark.parametrize(
        ("name", "failure"),
        [
            ("replace", OSError(5, "Input/output error")),
            ("fsync", OSError(28, "No space left on device")),
            ("fsync", KeyboardInterrupt()),
        ],
        ids=["replace-fails", "fsync-fails", "interrupted"],
    )
    def test_failure_mid_write_leaves_old_file_and_no_temporary(
        self, secrets: Path, name: str, failure: BaseException
    ) -> None:
        path = write_secret(secrets / "cave-secret.json", {"token": OTHER_TOKEN})
        before = fingerprint(path)

        def fail(*args: Any, **kwargs: Any) -> None:
            raise failure

        expected = TokenFileError if isinstance(failure, OSError) else KeyboardInterrupt
        # A patch of its own, undone after the save; undoing `monkeypatch` would restore HOME.
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(os, name, fail)
            with pytest.raises(expected) as info:
                save_token(VALID_TOKEN, overwrite=True, write_server_file=False)
        if isinstance(info.value, TokenFileError):
            assert info.value.path == str(path)
            assert str(path) in str(info.value)
            assert_not_chained(info.value)
        assert fingerprint(path) == before
        assert temporary_files(secrets) == []


# Files that are not a JSON object of strings under "token".
TOKEN_JSON = json.dumps({"token": VALID_TOKEN}).encode()
CORRUPT = [
    pytest.param(b"", id="empty"),
    pytest.param(b"  \n", id="blank"),
    pytest.param(b'{"token":', id="truncated"),
    pytest.param(b'{"token": "' + VALID_TOKEN.encode(), id="truncated-in-token"),
    pytest.param(TOKEN_JSON[:-1], id="truncated-before-brace"),
    pytest.param(b"[]", id="list"),
    pytest.param(b'["' + VALID_TOKEN.encode() + b'"]', id="list-of-token"),
    pytest.param(b"null", id="null"),
    pytest.param(b'"' + VALID_TOKEN.encode() + b'"', id="bare-string"),
    pytest.param(b'{"token": 123}', id="number-value"),
    pytest.param(b'{"token": null}', id="null-value"),
    pytest.param(b'{"token": ["' + VALID_TOKEN.encode() + b'"]}', id="list-value"),
    pytest.param(b"\xef\xbb\xbf" + TOKEN_JSON, id="UTF-8-BOM"),
    pytest.param(
        b'{"token": "' + OTHER_TOKEN.encode() + b'", "token": "' + VALID_TOKEN.encode() + b'"}',
        id="duplicate-keys",
    ),
    pytest.param(b'{"token": "' + VALID_TOKEN.encode() + b'\xff"}', id="invalid-UTF-8"),
    pytest.param(b"token=" + VALID_TOKEN.encode(), id="not-JSON"),
    pytest.param(b"{'token': '" + VALID_TOKEN.encode() + b"'}", id="single-quotes"),
]


def assert_names_file_not_content(error: TokenFileError, path: Path, content: bytes) -> None:
    assert error.path == str(path)
    message = str(error)
    assert str(path) in message
    text = content.decode("utf-8", "replace").strip()
    if len(text) >= 4 and text not in ("null", "true", "false"):  # a bare literal tells nothing
        assert text not in message.replace(str(path), "<path>")
    for token in (VALID_TOKEN, OTHER_TOKEN):
        assert token not in message
        assert token not in repr(error)
        assert token not in "".join(
            traceback.format_exception(type(error), error, error.__traceback__)
        )
    assert_not_chained(error)


class TestCorruptFiles:
    @pytest.mark.parametrize("content", CORRUPT)
    def test_load(self, secrets: Path, content: bytes) -> None:
        path = write_secret(secrets / "cave-secret.json", content)
        with pytest.raises(TokenFileError) as info:
            find_token()
        assert_names_file_not_content(info.value, path, content)
        with pytest.raises(TokenFileError):
            load_token()

    @pytest.mark.parametrize("content", CORRUPT)
    def test_load_token_file(self, tmp_path: Path, content: bytes) -> None:
        path = write_secret(tmp_path / "mine.json", content)
        with pytest.raises(TokenFileError) as info:
            find_token(token_file=path)
        assert_names_file_not_content(info.value, path, content)

    @pytest.mark.parametrize("content", CORRUPT)
    def test_save_refuses_and_changes_nothing(self, secrets: Path, content: bytes) -> None:
        path = write_secret(secrets / "cave-secret.json", content)
        before = fingerprint(path)
        with pytest.raises(TokenFileError) as info:
            save_token(OTHER_TOKEN, overwrite=True)
        assert_names_file_not_content(info.value, path, content)
        assert fingerprint(path) == before
        assert not (secrets / DEFAULT_SERVER_FILE).exists()
        assert temporary_files(secrets) == []

    @pytest.mark.parametrize("content", CORRUPT)
    def test_save_refuses_corrupt_server_file(self, secrets: Path, content: bytes) -> None:
        default = write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        server = write_secret(secrets / DEFAULT_SERVER_FILE, content)
        before = [fingerprint(default), fingerprint(server)]
        with pytest.raises(TokenFileError) as info:
            save_token(OTHER_TOKEN, overwrite=True)
        assert_names_file_not_content(info.value, server, content)
        assert [fingerprint(default), fingerprint(server)] == before

    @pytest.mark.parametrize("content", CORRUPT)
    def test_delete_refuses_and_changes_nothing(self, secrets: Path, content: bytes) -> None:
        path = write_secret(secrets / "cave-secret.json", content)
        before = fingerprint(path)
        with pytest.raises(TokenFileError) as info:
            delete_token()
        assert_names_file_not_content(info.value, path, content)
        assert fingerprint(path) == before

    def test_folder_in_place_of_the_file(self, secrets: Path) -> None:
        (secrets / "cave-secret.json").mkdir(parents=True)
        with pytest.raises(TokenFileError) as info:
            find_token()
        assert info.value.path == str(secrets / "cave-secret.json")
        with pytest.raises(TokenFileError):
            save_token(VALID_TOKEN)
        assert (secrets / "cave-secret.json").is_dir()


class TestReadOnlyFolder:
    def test_load_works(self, secrets: Path, read_only: Any) -> None:
        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        read_only(secrets)
        assert find_token().token == VALID_TOKEN

    @pytest.mark.parametrize("existing", [True, False], ids=["replace", "create"])
    def test_save_is_a_clear_error(self, secrets: Path, read_only: Any, existing: bool) -> None:
        path = secrets / "cave-secret.json"
        if existing:
            write_secret(path, {"token": OTHER_TOKEN})
        else:
            secrets.mkdir(parents=True)
        before = fingerprint(path) if existing else None
        read_only(secrets)
        with pytest.raises(TokenFileError) as info:
            save_token(VALID_TOKEN, overwrite=True, write_server_file=False)
        assert info.value.path == str(path)
        assert str(path) in str(info.value)
        assert VALID_TOKEN not in str(info.value)
        assert_not_chained(info.value)
        assert (fingerprint(path) if existing else None) == before
        assert not path.exists() or existing
        assert temporary_files(secrets) == []

    def test_save_into_missing_folder_under_read_only_parent(
        self, secrets: Path, read_only: Any
    ) -> None:
        secrets.parent.mkdir(parents=True)
        read_only(secrets.parent)
        with pytest.raises(TokenFileError) as info:
            save_token(VALID_TOKEN)
        assert info.value.path == str(secrets)
        assert str(secrets) in str(info.value)
        assert not secrets.exists()

    def test_identical_save_is_still_a_no_op(self, secrets: Path, read_only: Any) -> None:
        default = write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        server = write_secret(secrets / DEFAULT_SERVER_FILE, {"token": VALID_TOKEN})
        read_only(secrets)
        assert save_token(VALID_TOKEN) == [str(default), str(server)]

    def test_delete_is_a_clear_error(self, secrets: Path, read_only: Any) -> None:
        path = write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        before = fingerprint(path)
        read_only(secrets)
        with pytest.raises(TokenFileError) as info:
            delete_token()
        assert info.value.path == str(path)
        assert fingerprint(path) == before


class TestMissingFolders:
    def test_home_without_cloudvolume(
        self, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv("CLOUD_VOLUME_DIR")
        assert not (isolated_home / ".cloudvolume").exists()
        paths = save_token(VALID_TOKEN)
        secrets = isolated_home / ".cloudvolume" / "secrets"
        assert paths == [str(secrets / "cave-secret.json"), str(secrets / DEFAULT_SERVER_FILE)]
        assert mode_of(isolated_home / ".cloudvolume") == 0o700
        assert mode_of(secrets) == 0o700
        assert find_token().token == VALID_TOKEN

    @pytest.mark.parametrize("in_the_way", ["secrets", "cloudvolume"])
    def test_file_in_place_of_a_folder(self, secrets: Path, in_the_way: str) -> None:
        blocker = secrets if in_the_way == "secrets" else secrets.parent
        blocker.parent.mkdir(parents=True, exist_ok=True)
        blocker.write_text("not a folder")
        with pytest.raises(TokenFileError) as info:
            save_token(VALID_TOKEN)
        # The error may name the folder in the way or the file it stops.
        assert info.value.path.startswith(str(blocker))
        assert info.value.path in str(info.value)
        assert blocker.read_text() == "not a folder"
        with pytest.raises(TokenFileError):
            find_token()


class TestModeWarning:
    @pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o666, 0o620])
    def test_warns_naming_path_and_mode(self, secrets: Path, mode: int) -> None:
        path = write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN}, mode)
        with pytest.warns(TokenFileModeWarning) as caught:
            assert find_token().token == VALID_TOKEN
        [warning] = [w for w in caught if issubclass(w.category, TokenFileModeWarning)]
        message = str(warning.message)
        assert str(path) in message
        assert f"{mode:04o}" in message
        assert VALID_TOKEN not in message

    @pytest.mark.parametrize("mode", [0o600, 0o400])
    def test_private_file_gives_no_warning(self, secrets: Path, mode: int) -> None:
        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN}, mode)
        with warnings.catch_warnings():
            warnings.simplefilter("error", TokenFileModeWarning)
            assert find_token().token == VALID_TOKEN

    def test_token_file_warns(self, tmp_path: Path) -> None:
        path = write_secret(tmp_path / "mine.json", {"token": VALID_TOKEN}, 0o644)
        with pytest.warns(TokenFileModeWarning, match="0644") as caught:
            find_token(token_file=path)
        assert str(path) in str(caught[0].message)


class TestSymlinks:
    @pytest.fixture
    def target(self, tmp_path: Path) -> Path:
        return write_secret(tmp_path / "real" / "target.json", {"token": OTHER_TOKEN, "k": "v"})

    @pytest.mark.parametrize("relative", [False, True], ids=["absolute", "relative"])
    def test_load_follows(self, secrets: Path, target: Path, relative: bool) -> None:
        secrets.mkdir(parents=True)
        link = secrets / "cave-secret.json"
        link.symlink_to(os.path.relpath(target, secrets) if relative else target)
        source = find_token()
        assert (source.token, source.path) == (OTHER_TOKEN, str(link))

    def test_save_writes_through_to_the_target(self, secrets: Path, target: Path) -> None:
        secrets.mkdir(parents=True)
        link = secrets / "cave-secret.json"
        link.symlink_to(target)
        save_token(VALID_TOKEN, overwrite=True, write_server_file=False)
        assert link.is_symlink()
        assert os.readlink(link) == str(target)
        assert json.loads(target.read_text()) == {"token": VALID_TOKEN, "k": "v"}
        assert mode_of(target) == 0o600
        assert temporary_files(secrets, target.parent) == []

    def test_save_through_link_respects_overwrite(self, secrets: Path, target: Path) -> None:
        secrets.mkdir(parents=True)
        link = secrets / "cave-secret.json"
        link.symlink_to(target)
        before = fingerprint(target)
        with pytest.raises(TokenFileError):
            save_token(VALID_TOKEN, write_server_file=False)
        assert fingerprint(target) == before
        assert link.is_symlink()

    def test_delete_keeps_the_link(self, secrets: Path, target: Path) -> None:
        secrets.mkdir(parents=True)
        link = secrets / "cave-secret.json"
        link.symlink_to(target)
        assert delete_token() == [str(link)]
        assert link.is_symlink()
        assert json.loads(target.read_text()) == {"k": "v"}

    def test_delete_of_the_last_key_keeps_the_link(self, secrets: Path, tmp_path: Path) -> None:
        target = write_secret(tmp_path / "real" / "target.json", {"token": OTHER_TOKEN})
        secrets.mkdir(parents=True)
        link = secrets / "cave-secret.json"
        link.symlink_to(target)
        assert delete_token() == [str(link)]
        assert link.is_symlink()
        assert json.loads(target.read_text()) == {}
        assert load_token() is None

    @pytest.mark.parametrize("kind", ["dangling", "loop"])
    def test_broken_link_is_an_error(self, secrets: Path, tmp_path: Path, kind: str) -> None:
        secrets.mkdir(parents=True)
        link = secrets / "cave-secret.json"
        link.symlink_to(tmp_path / "gone.json" if kind == "dangling" else link)
        write_secret(secrets / "chunkedgraph-secret.json", {"token": VALID_TOKEN})
        with pytest.raises(TokenFileError) as load_error:
            find_token()
        assert load_error.value.path == str(link)
        assert str(link) in str(load_error.value)
        with pytest.raises(TokenFileError) as save_error:
            save_token(VALID_TOKEN, write_server_file=False)
        assert save_error.value.path == str(link)
        assert link.is_symlink()
        assert not (tmp_path / "gone.json").exists()
        assert temporary_files(secrets) == []


WRITER = """
import sys
from cave_requests_auth import save_token
folder, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
for number in range(count):
    save_token(sys.argv[4], secrets_dir=folder, token_key=f"{name}-{number}")
"""


class TestConcurrentWriters:
    def test_threads_lose_no_key(self, secrets: Path) -> None:
        count = 16
        barrier = threading.Barrier(count)
        errors: list[BaseException] = []

        def write(number: int) -> None:
            barrier.wait()
            try:
                save_token(VALID_TOKEN, token_key=f"key-{number}")
            except BaseException as error:
                errors.append(error)

        in_threads(write, range(count))
        assert errors == []
        expected = {f"key-{n}": VALID_TOKEN for n in range(count)}
        for name in ("cave-secret.json", DEFAULT_SERVER_FILE):
            assert json.loads((secrets / name).read_text()) == expected
        assert temporary_files(secrets) == []

    def test_processes_lose_no_key(self, tmp_path: Path) -> None:
        folder = tmp_path / "shared"
        processes, count = 4, 15
        children = [
            subprocess.Popen(
                [sys.executable, "-c", WRITER, str(folder), f"p{n}", str(count), VALID_TOKEN]
            )
            for n in range(processes)
        ]
        assert [child.wait(timeout=60) for child in children] == [0] * processes
        data = json.loads((folder / "cave-secret.json").read_text())
        assert set(data) == {f"p{n}-{i}" for n in range(processes) for i in range(count)}
        assert set(data.values()) == {VALID_TOKEN}
        assert temporary_files(folder) == []
