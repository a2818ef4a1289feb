"""Reading a secret file: within bounds, from its owner, and once while it is unchanged.

Whatever a path names, reading it never hangs, never runs out of memory and
never recurses without end:

- Anything but a regular file (a FIFO, a socket, a device such as
  ``/dev/zero``, a folder) is refused, from its ``os.stat`` before it is opened
  (opening a device can do something) and again from the open descriptor; it is
  opened without blocking (a FIFO would wait for a writer), and at most
  :data:`MAX_BYTES` + 1 bytes are read.
- JSON nested deeper than :data:`MAX_DEPTH` levels (the object itself is the
  first) is refused before it is parsed; Python's parser would recurse once per
  level. An integer of more than :data:`MAX_DIGITS` digits is refused rather
  than converted (Python refuses such numbers itself, by default, and converting
  them takes time quadratic in their length).

A file or folder owned by another user than us or root is refused, as OpenSSH
refuses such keys. A folder others can write is noted for a warning, unless it
is sticky (as ``/tmp`` is): there others cannot replace or remove our files, and
a file they add is refused for its owner.

The parsed content of a file is kept (at most :data:`CACHE_SIZE` files),
checked against its ``os.stat`` (device, inode, size, modification and change
times) on each read. A file modified within the last seconds is not kept: a
change within the same clock tick can leave its size and times as they were.

Every error names the file and says what is wrong, never quoting the file
(a JSON error quotes it, token and all), and is raised ``from None``.
"""

from __future__ import annotations

import copy
import json
import os
import re
import stat
import threading
import time
from collections import OrderedDict
from typing import Any, NamedTuple

from .errors import TokenFileError

_POSIX = os.name == "posix"

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_DIGITS",
    "cached_files",
    "check_folders",
    "check_owner",
    "check_regular",
    "copy_of",
    "forget",
    "json_type",
    "keep",
    "parse",
    "read_bounded",
    "recall",
]

MAX_BYTES = 1 << 20
"""The largest secret file read (1 MiB); a token file is about 50 bytes."""
MAX_DEPTH = 64
"""The deepest nesting read; CAVEclient's files are one level deep."""
MAX_DIGITS = 4300
"""The longest integer read: Python's own default limit, on every Python version."""
CACHE_SIZE = 256
"""The most files whose content is kept."""
_CACHE_MAX_BYTES = 1 << 16  # a larger file is read each time
_RECENT_NS = 3 * 10**9  # a file modified this recently is not kept (FAT: 2 s times)

_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)  # a FIFO opens at once instead of waiting for a writer
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)

# A string (to the end of the text where it is not closed: the scan stays linear),
# or a bracket.
_STRING_OR_BRACKET = re.compile(r'"(?:[^"\\]|\\.)*(?:"|\\?\Z)|[\[\]{}]', re.DOTALL)


class _DuplicateKey(Exception):
    pass


class _NumberTooLong(Exception):
    pass


def json_type(value: object) -> str:
    """The JSON name of a parsed value's type, for messages: ``"an array"``, ``"null"``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    names = {
        dict: "an object",
        list: "an array",
        str: "a string",
        int: "a number",
        float: "a number",
    }
    return names.get(type(value), f"a {type(value).__name__}")


def kind(mode: int) -> str:
    """What a file that is not a regular one is, for messages: ``"a FIFO"``."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def check_regular(path: str, status: os.stat_result) -> None:
    """Refuse anything but a regular file of at most :data:`MAX_BYTES`."""
    if not stat.S_ISREG(status.st_mode):
        raise TokenFileError(
            f"{path} is not a regular file (it is {kind(status.st_mode)}); "
            "a token file must be a JSON file such as cave-secret.json.",
            path,
        )
    if status.st_size > MAX_BYTES:
        _too_large(path)


def _too_large(path: str) -> None:
    raise TokenFileError(
        f"{path} is larger than 1 MiB, too large for a secret file "
        "(a token file is about 50 bytes); point to the right file, or delete it.",
        path,
    )


def check_owner(path: str, status: os.stat_result, folder: str | None = None) -> None:
    """Refuse a file (or its ``folder``) owned by another user than us or root."""
    if not _POSIX or status.st_uid in (0, os.getuid()):
        return
    what = path if folder is None else f"The folder {folder} of {path}"
    raise TokenFileError(
        f"{what} is owned by another user (uid {status.st_uid}), "
        "so it is not used: their token would send your work to their account. A "
        "secret file and its folder must be yours (or root's); move the file to a "
        "folder of your own, or delete it.",
        path,
    )


def _folder_status(folder: str) -> os.stat_result | None:
    try:
        return os.stat(folder)
    except OSError:
        return None


def check_folders(path: str, folders: tuple[str, ...]) -> list[tuple[str, int]]:
    """Refuse folders of another user; the folders others can write, with their modes."""
    writable = []
    for folder in folders:
        status = _folder_status(folder) if _POSIX else None
        if status is None:
            continue
        check_owner(path, status, folder)
        if status.st_mode & stat.S_IWOTH and not status.st_mode & stat.S_ISVTX:
            writable.append((folder, stat.S_IMODE(status.st_mode)))
    return writable


def read_bounded(path: str) -> tuple[bytes, os.stat_result]:
    """The bytes of the regular file ``path``, and its status as opened.

    Raises:
        FileNotFoundError, NotADirectoryError, OSError: from opening, for the caller.
        TokenFileError: not a regular file, larger than :data:`MAX_BYTES`, or a
            read failed.
    """
    fd = os.open(path, _OPEN_FLAGS)
    try:
        status = os.fstat(fd)
        check_regular(path, status)
        chunks: list[bytes] = []
        left = MAX_BYTES + 1  # one byte more tells a file that grew past the limit
        try:
            while left > 0:
                chunk = os.read(fd, min(left, 1 << 16))
                if not chunk:
                    break
                chunks.append(chunk)
                left -= len(chunk)
        except OSError as error:
            raise TokenFileError(
                f"Cannot read {path}: {error.strerror or type(error).__name__}.", path
            ) from None
        if left <= 0:
            _too_large(path)
        return b"".join(chunks), status
    finally:
        os.close(fd)


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data = dict(pairs)
    if len(data) != len(pairs):
        raise _DuplicateKey
    return data


def _integer(text: str) -> int:
    if len(text) - text.startswith("-") > MAX_DIGITS:
        raise _NumberTooLong
    try:
        return int(text)
    except ValueError:  # a lower limit set with sys.set_int_max_str_digits
        raise _NumberTooLong from None


def _too_deep(text: str) -> bool:
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        first = match.group()[0]  # a string starts with its quote
        if first in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif first in "]}":
            depth -= 1
    return False


def _corrupt(path: str, problem: str) -> TokenFileError:
    return TokenFileError(f"{path} {problem}; fix it, or delete it and save the token again.", path)


def parse(raw: bytes, path: str) -> dict[str, Any]:
    """The JSON object in ``raw``, the content of ``path``.

    Raises:
        TokenFileError: not UTF-8, empty, nested too deeply, not JSON, a duplicate
            key, a number too long, or not a JSON object.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise TokenFileError(
            f"{path} is not UTF-8 text; delete it or save a new token.", path
        ) from None
    if not text.strip():
        raise TokenFileError(
            f"{path} is empty; delete it or save a new token with `cave-auth save`.", path
        )
    if _too_deep(text):
        raise _corrupt(path, f"holds JSON nested too deeply (more than {MAX_DEPTH} levels)")
    try:
        data = json.loads(text, object_pairs_hook=_object, parse_int=_integer)
    except json.JSONDecodeError as error:
        problem = f"is not valid JSON (line {error.lineno}, column {error.colno})"
        raise _corrupt(path, problem) from None
    except _DuplicateKey:
        raise TokenFileError(
            f"{path} has the same key twice; edit it so each key appears once.", path
        ) from None
    except _NumberTooLong:
        raise _corrupt(path, f"holds a number of more than {MAX_DIGITS} digits") from None
    except RecursionError:  # the stack was nearly full already
        raise _corrupt(path, "holds JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise _corrupt(
            path, f'holds {json_type(data)}, not a JSON object such as {{"token": "..."}}'
        )
    return data


# -- files that have not changed are not read again --------------------------------


class _Kept(NamedTuple):
    identity: tuple[int, ...]
    folders: tuple[str, ...]
    data: dict[str, Any]


_kept: OrderedDict[str, _Kept] = OrderedDict()
_kept_lock = threading.Lock()


def _identity(status: os.stat_result) -> tuple[int, ...]:
    return (
        status.st_dev,
        status.st_ino,
        status.st_size,
        status.st_mtime_ns,
        status.st_ctime_ns,
    )


def recall(key: str, status: os.stat_result) -> _Kept | None:
    """What was kept of the file ``key``, if ``status`` shows it unchanged since."""
    with _kept_lock:
        kept = _kept.get(key)
        if kept is None or kept.identity != _identity(status):
            return None
        _kept.move_to_end(key)
        return kept


def keep(key: str, status: os.stat_result, folders: tuple[str, ...], data: dict[str, Any]) -> None:
    """Keep ``data``, read from the file ``key`` as ``status`` shows it (unless too fresh)."""
    if status.st_size > _CACHE_MAX_BYTES or status.st_mtime_ns > time.time_ns() - _RECENT_NS:
        return
    with _kept_lock:
        _kept[key] = _Kept(_identity(status), folders, data)
        _kept.move_to_end(key)
        while len(_kept) > CACHE_SIZE:
            _kept.popitem(last=False)


def forget(*paths: str) -> None:
    """Drop what was kept of ``paths`` (after a write)."""
    with _kept_lock:
        for path in paths:
            _kept.pop(os.path.abspath(path), None)


def cached_files() -> int:
    """How many files' content is kept (at most :data:`CACHE_SIZE`)."""
    with _kept_lock:
        return len(_kept)


def copy_of(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of kept ``data`` that the caller may change (deep where anything nests)."""
    if any(isinstance(value, (dict, list)) for value in data.values()):
        return copy.deepcopy(data)
    return dict(data)
