"""Reading a secret file: within bounds, from its owner, and once while it is unchanged.

Whatever a path names, reading it never hangs, runs out of memory or recurses
without end: anything but a regular file (a FIFO, a device) is refused from its
``os.stat`` before it is opened (opening a device can do something) and again once
opened, without blocking; at most :data:`MAX_BYTES` + 1 bytes are read; JSON nested
deeper than :data:`MAX_DEPTH` levels, or an integer of more than :data:`MAX_DIGITS`
digits, is refused before Python's parser recurses on it or converts it.

A file or folder of another user than us or root is refused, as OpenSSH refuses
such keys; a file group or others can use, or a folder others can write (unless
sticky, as ``/tmp`` is), gives a :class:`.TokenFileModeWarning`. What a file held
is kept under its ``os.stat`` identity (device, inode, size, modification and
change times), unless it was modified within the last seconds (a change in the
same clock tick can leave size and times as they were). Every error names the
file, never quoting it, and is raised ``from None``.
"""

from __future__ import annotations

import copy
import functools
import json
import operator
import os
import re
import stat
import time
import warnings
from typing import Any, Callable, TypeVar

from .errors import TokenFileError, TokenFileModeWarning

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

_POSIX = os.name == "posix"
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)  # a FIFO opens at once instead of waiting for a writer
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)
# A string (to the end of the text where it is not closed: the scan stays linear), or a bracket.
_STRING_OR_BRACKET = re.compile(r'"(?:[^"\\]|\\.)*(?:"|\\?\Z)|[\[\]{}]', re.DOTALL)
_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", int: "a number"}
_JSON_TYPES.update({float: "a number", bool: "a boolean", type(None): "null"})
_KINDS = {"d": "a folder", "p": "a FIFO", "s": "a socket", "c": "a device", "b": "a device"}
_identity = operator.attrgetter("st_dev", "st_ino", "st_size", "st_mtime_ns", "st_ctime_ns")
_T = TypeVar("_T")


def json_type(value: object) -> str:
    """The JSON name of a parsed value's type, for messages: ``"an array"``, ``"null"``."""
    return _JSON_TYPES.get(type(value), f"a {type(value).__name__}")


def reason(error: OSError) -> str:
    """What went wrong, in words: ``"Permission denied"``."""
    return error.strerror or type(error).__name__


def dangling(path: str) -> TokenFileError:
    """The error for a symbolic link whose target does not exist."""
    return TokenFileError(
        f"{path} is a symbolic link to {os.readlink(path)}, which does not exist; "
        "remove the link or create its target.",
        path,
    )


def _check_regular(path: str, status: os.stat_result) -> None:
    """Refuse anything but a regular file of at most :data:`MAX_BYTES`."""
    if not stat.S_ISREG(status.st_mode):
        kind = _KINDS.get(stat.filemode(status.st_mode)[0], "a special file")
        raise TokenFileError(
            f"{path} is not a regular file (it is {kind}); point to the token file itself.", path
        )
    if status.st_size > MAX_BYTES:
        raise _too_large(path)


def _too_large(path: str) -> TokenFileError:
    return TokenFileError(
        f"{path} is larger than 1 MiB, too large for a secret file "
        "(a token file is about 50 bytes); point to the right file, or delete it.",
        path,
    )


def _check_owner(path: str, status: os.stat_result, folder: str | None = None) -> None:
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


def check_folders(path: str, folders: tuple[str, ...]) -> list[tuple[str, int]]:
    """Refuse folders of another user; the folders others can write, with their modes."""
    writable = []
    for folder in folders if _POSIX else ():
        try:
            status = os.stat(folder)
        except OSError:
            continue
        _check_owner(path, status, folder)
        if status.st_mode & stat.S_IWOTH and not status.st_mode & stat.S_ISVTX:
            writable.append((folder, stat.S_IMODE(status.st_mode)))
    return writable


def _warn_of_modes(path: str, mode: int, writable: list[tuple[str, int]]) -> None:
    if _POSIX and mode & 0o077:
        warnings.warn(
            f"{path} can be read or written by other users (mode "
            f"{stat.S_IMODE(mode):04o}); restrict it with: chmod 600 {path}",
            TokenFileModeWarning,
            stacklevel=5,
        )
    for folder, folder_mode in writable:
        warnings.warn(
            f"The folder {folder} of {path} can be written by other users (mode "
            f"{folder_mode:04o}), who could put their own files there; restrict it "
            f"with: chmod 700 {folder}",
            TokenFileModeWarning,
            stacklevel=5,
        )


def read_bounded(path: str) -> tuple[bytes, os.stat_result]:
    """The bytes of the regular file ``path``, and its status as opened.

    Raises:
        OSError: from opening, for the caller.
        TokenFileError: not a regular file, over :data:`MAX_BYTES`, or a read failed.
    """
    fd = os.open(path, _OPEN_FLAGS)
    try:
        status = os.fstat(fd)
        _check_regular(path, status)
        try:
            with open(fd, "rb", closefd=False) as file:
                raw = file.read(MAX_BYTES + 1)  # one byte more tells a file that grew past it
        except OSError as error:
            raise TokenFileError(f"Cannot read {path}: {reason(error)}.", path) from None
    finally:
        os.close(fd)
    if len(raw) > MAX_BYTES:
        raise _too_large(path)
    return raw, status


def _opened(path: str, opener: Callable[[str], _T]) -> _T | None:
    """``opener(path)``; ``None`` where there is no file; other failures named."""
    try:
        return opener(path)
    except TokenFileError:  # an OSError too, already named
        raise
    except FileNotFoundError:
        if os.path.islink(path):
            raise dangling(path) from None
        return None
    except NotADirectoryError:
        problem = "a file is in the way of one of its folders"
    except OSError as error:
        problem = reason(error)
    raise TokenFileError(f"Cannot read {path}: {problem}.", path) from None


_FIX = "fix it, or delete it and save the token again"


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data = dict(pairs)
    if len(data) != len(pairs):
        raise ValueError("has the same key twice; edit it so each key appears once")
    return data


def _integer(text: str) -> int:
    try:
        if len(text) - text.startswith("-") <= MAX_DIGITS:
            return int(text)
    except ValueError:  # a lower limit set with sys.set_int_max_str_digits
        pass
    raise ValueError(f"holds a number of more than {MAX_DIGITS} digits; {_FIX}")


def _too_deep(text: str) -> bool:
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(text):
        first = match.group()[0]  # a string starts with its quote
        depth += (first in "[{") - (first in "]}")
        if depth > MAX_DEPTH:
            return True
    return False


def parse(raw: bytes, path: str) -> dict[str, Any]:
    """The JSON object in ``raw``, the content of ``path``.

    Raises:
        TokenFileError: not UTF-8, empty, nested too deeply, not JSON, a duplicate
            key, a number too long, or not a JSON object.
    """

    def refused(problem: str) -> TokenFileError:
        return TokenFileError(f"{path} {problem}.", path)

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise refused("is not UTF-8 text; delete it or save a new token") from None
    if not text.strip():
        raise refused("is empty; delete it or save a new token with `cave-auth save`")
    if _too_deep(text):
        raise refused(f"holds JSON nested too deeply (more than {MAX_DEPTH} levels); {_FIX}")
    try:
        data = json.loads(text, object_pairs_hook=_object, parse_int=_integer)
    except json.JSONDecodeError as error:
        where = f"line {error.lineno}, column {error.colno}"
        raise refused(f"is not valid JSON ({where}); {_FIX}") from None
    except ValueError as error:  # from _object or _integer, in words
        raise refused(str(error)) from None
    except RecursionError:  # the stack was nearly full already
        raise refused(f"holds JSON nested too deeply; {_FIX}") from None
    if not isinstance(data, dict):
        example = '{"token": "..."}'
        raise refused(f"holds {json_type(data)}, not a JSON object such as {example}; {_FIX}")
    return data


def read_file(
    path: str, parse: Callable[[bytes, str], _T], *, check_mode: bool = True
) -> _T | None:
    """``parse(content, path)`` of the file ``path`` (a link is followed); ``None``: no file.

    ``check_mode``: warn if group or others can use the file, or others write its folder.

    Raises:
        TokenFileError: a dangling link, unreadable, not a regular file, over 1 MiB,
            the file or its folder another user's, or ``parse`` refuses it.
    """
    status = _opened(path, os.stat)
    if status is None:
        return None
    _check_owner(path, status)
    named, real = (os.path.dirname(os.path.abspath(p)) for p in (path, os.path.realpath(path)))
    writable = check_folders(path, (named,) if named == real else (named, real))
    _check_regular(path, status)  # before opening: opening a device can do something
    if check_mode:
        _warn_of_modes(path, status.st_mode, writable)
    fresh = status.st_size > _CACHE_MAX_BYTES or status.st_mtime_ns > time.time_ns() - _RECENT_NS
    read = _read.__wrapped__ if fresh else _read
    return copy.deepcopy(read(path, parse, _identity(status)))  # type: ignore[no-any-return]


@functools.lru_cache(maxsize=CACHE_SIZE)
def _read(path: str, parse: Callable[[bytes, str], Any], identity: tuple[int, ...]) -> Any:
    """``parse`` of the file ``path``, kept while ``identity`` (its status) is unchanged."""
    read = _opened(path, read_bounded)
    if read is None:
        return None  # removed meanwhile
    raw, opened = read
    _check_owner(path, opened)  # replaced meanwhile
    return parse(raw, path)


def read_secret_file(path: str, *, check_mode: bool = True) -> dict[str, Any] | None:
    """The JSON object in ``path`` (``None``: no file); errors: :func:`read_file`, :func:`parse`."""
    return read_file(path, parse, check_mode=check_mode)


def cached_files() -> int:
    """How many files' content is kept (at most :data:`CACHE_SIZE`)."""
    return _read.cache_info().currsize
