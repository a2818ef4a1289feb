"""Adversarial tests of reading bounds: whatever a secret file's path names, and
whatever the file holds, reading it is a ``TokenFileError`` that says what is
wrong, never a hang, a ``MemoryError`` or a ``RecursionError``.

Contract: SPEC.md, "Secret files" ("Reading is bounded"); issue 9, item 10.
Everything goes through real files, FIFOs and devices, and a real process where
memory could run out. Nothing here is timed: the joins and timeouts only keep a
broken build from hanging the run. (Owners, killed writers and files not read
again, items 11, 12 and 14: test_security_files.py.)
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest

from cave_requests_auth import (
    TokenFileError,
    find_token,
    save_token,
    secretjson,
)
from helpers import (
    OTHER_TOKEN,
    VALID_TOKEN,
    assert_clean,
    fingerprint,
    write_secret,
)

POSIX = os.name == "posix"
posix_only = pytest.mark.skipif(not POSIX, reason="FIFOs and devices are POSIX")
MIB = 1 << 20


# -- item 10: reading is bounded ---------------------------------------------------------


@posix_only
class TestOnlyRegularFilesOfSaneSize:
    @pytest.mark.parametrize("where", ["token_file", "default-file"])
    def test_fifo_is_not_a_regular_file_and_no_hang(
        self, tmp_path: Path, secrets: Path, where: str
    ) -> None:
        secrets.mkdir(parents=True)
        fifo = tmp_path / "fifo.json" if where == "token_file" else secrets / "cave-secret.json"
        os.mkfifo(fifo, 0o600)
        kwargs: dict[str, Any] = {"token_file": fifo} if where == "token_file" else {}
        outcome: list[BaseException | None] = []

        def attempts() -> None:
            for attempt in (
                lambda: find_token(**kwargs),
                lambda: save_token(VALID_TOKEN, overwrite=True, write_server_file=False, **kwargs),
            ):
                try:
                    attempt()
                    outcome.append(None)
                except BaseException as error:
                    outcome.append(error)

        worker = threading.Thread(target=attempts, daemon=True)
        worker.start()
        worker.join(30)
        hung = worker.is_alive()
        while worker.is_alive():  # a blocked open of the FIFO: give it a writer, then EOF
            with suppress(OSError):  # no reader yet
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            worker.join(1)
        assert not hung
        assert len(outcome) == 2
        for error in outcome:
            assert isinstance(error, TokenFileError)
            assert_clean(error, fifo, "not a regular file")
        assert stat.S_ISFIFO(os.lstat(fifo).st_mode)  # never replaced by a file

    def test_device_is_not_a_regular_file(self) -> None:
        with pytest.raises(TokenFileError) as info:
            find_token(token_file="/dev/null")
        assert_clean(info.value, "/dev/null", "not a regular file")

    def test_endless_device_is_refused_without_running_out_of_memory(
        self, isolated_home: Path
    ) -> None:
        script = (
            "import resource, sys\n"
            "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
            "from cave_requests_auth import find_token\n"
            "try:\n"
            "    find_token(token_file='/dev/zero')\n"
            "except BaseException as error:\n"
            "    print(type(error).__name__, error, sep='|')\n"
        )
        child = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
        )
        name, _, message = child.stdout.strip().partition("|")
        assert (name, child.returncode) == ("TokenFileError", 0)
        assert "/dev/zero" in message
        assert "not a regular file" in message

    def test_file_over_one_mebibyte_is_refused(self, secrets: Path) -> None:
        path = write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN, "pad": "x" * MIB})
        before = fingerprint(path)
        for attempt in (
            lambda: find_token(),
            lambda: save_token(OTHER_TOKEN, overwrite=True, write_server_file=False),
        ):
            with pytest.raises(TokenFileError) as info:
                attempt()
            assert_clean(info.value, path, "larger than 1 MiB")
        assert fingerprint(path) == before

    def test_file_of_exactly_one_mebibyte_is_read(self, secrets: Path) -> None:
        head = json.dumps({"token": VALID_TOKEN, "pad": ""}).encode()
        content = head[:-2] + b"x" * (MIB - len(head)) + head[-2:]
        path = write_secret(secrets / "cave-secret.json", content)
        assert path.stat().st_size == MIB
        assert find_token().token == VALID_TOKEN

    @pytest.mark.parametrize("change", ["FIFO", "grown"])
    def test_file_changed_between_check_and_open_is_still_bounded(
        self, secrets: Path, monkeypatch: pytest.MonkeyPatch, change: str
    ) -> None:
        path = write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN})
        real = secretjson.read_bounded

        def swapped(name: str) -> Any:
            if change == "FIFO":
                path.unlink()
                os.mkfifo(path, 0o600)
            else:
                with open(path, "ab") as file:
                    file.write(b" " * (2 * MIB))
            return real(name)

        monkeypatch.setattr(secretjson, "read_bounded", swapped)
        with pytest.raises(TokenFileError) as info:
            find_token()
        expected = "not a regular file" if change == "FIFO" else "larger than 1 MiB"
        assert_clean(info.value, path, expected)


def nested(depth: int, inner: str = "[", outer: str = "]") -> bytes:
    """A JSON object holding the token, whose deepest value is ``depth`` levels down."""
    extra = depth - 1  # the object itself is the first level
    return (
        f'{{"token": "{VALID_TOKEN}", "deep": '.encode()
        + inner.encode() * extra
        + outer.encode() * extra
        + b"}"
    )


class TestJSONWithinReason:
    @pytest.mark.parametrize(
        "content",
        [
            pytest.param(b"[" * 100_000 + b"]" * 100_000, id="array-100000-deep"),
            pytest.param(nested(100_000), id="under-a-key-100000-deep"),
            pytest.param(b'{"a": ' * 100_000 + b"1" + b"}" * 100_000, id="objects-100000-deep"),
            pytest.param(b"[" * 100_000, id="unclosed-100000-deep"),
            pytest.param(nested(65), id="65-deep"),
        ],
    )
    def test_deep_nesting_is_a_token_file_error_not_a_recursion_error(
        self, secrets: Path, content: bytes
    ) -> None:
        path = write_secret(secrets / "cave-secret.json", content)
        before = fingerprint(path)
        for attempt in (
            lambda: find_token(),
            lambda: save_token(OTHER_TOKEN, overwrite=True, write_server_file=False),
        ):
            with pytest.raises(TokenFileError) as info:
                attempt()
            assert_clean(info.value, path, "nested too deeply")
            assert "[[[[" not in str(info.value)
        assert fingerprint(path) == before

    def test_nesting_of_64_levels_is_read(self, secrets: Path) -> None:
        write_secret(secrets / "cave-secret.json", nested(64))
        assert find_token().token == VALID_TOKEN

    def test_brackets_inside_strings_are_not_nesting(self, secrets: Path) -> None:
        text = '[{\\"' * 200 + "\\\\"
        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN, "note": text})
        assert find_token().token == VALID_TOKEN
        save_token(OTHER_TOKEN, overwrite=True, write_server_file=False)
        saved = json.loads((secrets / "cave-secret.json").read_text())
        assert saved == {"token": OTHER_TOKEN, "note": text}

    @pytest.mark.parametrize("sign", ["", "-"])
    def test_long_number_is_reported_as_such_not_as_a_duplicate_key(
        self, secrets: Path, sign: str
    ) -> None:
        content = f'{{"token": "{VALID_TOKEN}", "n": {sign}{"7" * 5000}}}'.encode()
        path = write_secret(secrets / "cave-secret.json", content)
        before = fingerprint(path)
        for attempt in (
            lambda: find_token(),
            lambda: save_token(OTHER_TOKEN, overwrite=True, write_server_file=False),
        ):
            with pytest.raises(TokenFileError) as info:
                attempt()
            assert_clean(info.value, path, "number", "digits")
            assert "same key" not in str(info.value)
            assert "7777" not in str(info.value)
        assert fingerprint(path) == before

    def test_a_duplicate_key_is_still_named_as_such(self, secrets: Path) -> None:
        content = f'{{"token": "{VALID_TOKEN}", "token": "{OTHER_TOKEN}"}}'.encode()
        path = write_secret(secrets / "cave-secret.json", content)
        with pytest.raises(TokenFileError) as info:
            find_token()
        assert_clean(info.value, path, "same key twice")

    def test_numbers_of_reasonable_length_are_kept(self, secrets: Path) -> None:
        big = int("9" * 300)
        write_secret(secrets / "cave-secret.json", {"token": VALID_TOKEN, "n": big, "f": 1.5})
        save_token(OTHER_TOKEN, overwrite=True, write_server_file=False)
        saved = json.loads((secrets / "cave-secret.json").read_text())
        assert saved == {"token": OTHER_TOKEN, "n": big, "f": 1.5}
