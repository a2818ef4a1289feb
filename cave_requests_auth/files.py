"""Secret files: JSON objects on disk, read strictly and written safely.

Knows nothing of tokens or HTTP: a secret file is a JSON object of string keys.

- Reading (:mod:`.secretjson`) is bounded: a regular file of at most 1 MiB,
  JSON within reason. A file or folder owned by another user (root aside) is
  refused; a file group or others can read, or a folder others can write, gives
  a warning. Every error names the file, never quoting it.
- A file that has not changed is not opened again (its content is kept,
  checked against its ``os.stat`` on each read); a write forgets it.
- Writing goes through a temporary file in the same folder, mode 0600 from its
  creation, flushed and fsynced, then renamed over the old file; on any failure
  the old file is untouched and the temporary file is removed. Writers hold an
  exclusive lock on the folder, so concurrent threads and processes lose no key;
  holding it, a writer removes the temporary files of its file that a killed
  writer left.
- Folders this module creates are 0700, files 0600, whatever the umask.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
import threading
import warnings
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from .errors import TokenFileError, TokenFileModeWarning
from .secretjson import (
    check_folders,
    check_owner,
    check_regular,
    copy_of,
    forget,
    json_type,
    keep,
    parse,
    read_bounded,
    recall,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["edit_secret_file", "json_type", "read_secret_file"]

FILE_MODE = 0o600
FOLDER_MODE = 0o700

_POSIX = os.name == "posix"
_T = TypeVar("_T")
_thread_lock = threading.Lock()  # for systems without flock


def _reason(error: OSError) -> str:
    return error.strerror or type(error).__name__


def _opened(path: str, opener: Callable[[str], _T]) -> _T | None:
    """``opener(path)``; ``None`` where there is no file; other failures named."""
    try:
        return opener(path)
    except TokenFileError:  # an OSError too, already named
        raise
    except FileNotFoundError:
        if os.path.islink(path):
            raise TokenFileError(
                f"{path} is a symbolic link to {os.readlink(path)}, which does not "
                "exist; remove the link or create its target.",
                path,
            ) from None
        return None
    except NotADirectoryError:
        raise TokenFileError(
            f"Cannot read {path}: a file is in the way of one of its folders.", path
        ) from None
    except OSError as error:
        raise TokenFileError(f"Cannot read {path}: {_reason(error)}.", path) from None


def _folders(key: str) -> tuple[str, ...]:
    """The folder named in ``key``, and that of the file it leads to where that differs."""
    named = os.path.dirname(key)
    real = os.path.dirname(os.path.realpath(key))
    return (named,) if real == named else (named, real)


def _check_modes(path: str, mode: int, writable: list[tuple[str, int]]) -> None:
    if _POSIX and mode & 0o077:
        warnings.warn(
            f"{path} can be read or written by other users (mode "
            f"{stat.S_IMODE(mode):04o}); restrict it with: chmod 600 {path}",
            TokenFileModeWarning,
            stacklevel=4,
        )
    for folder, folder_mode in writable:
        warnings.warn(
            f"The folder {folder} of {path} can be written by other users (mode "
            f"{folder_mode:04o}), who could put their own files there; restrict it "
            f"with: chmod 700 {folder}",
            TokenFileModeWarning,
            stacklevel=4,
        )


def read_secret_file(path: str, *, check_mode: bool = True) -> dict[str, Any] | None:
    """The JSON object in ``path``, or ``None`` where there is no such file.

    A file that has not changed since it was last read is not opened again.

    Args:
        path: the file; a symbolic link is followed.
        check_mode: warn (:class:`TokenFileModeWarning`) if group or others
            have any access to the file, or others can write its folder.

    Raises:
        TokenFileError: the file is a dangling link, unreadable, not a regular
            file, larger than 1 MiB, owned (or its folder) by another user, not
            UTF-8, not JSON, nested too deeply, has a duplicate key or a number
            too long, or is not a JSON object.
    """
    key = os.path.abspath(path)
    status = _opened(path, os.stat)
    if status is None:
        return None
    kept = recall(key, status)
    folders = kept.folders if kept is not None else _folders(key)
    check_owner(path, status)
    writable = check_folders(path, folders)
    check_regular(path, status)  # before opening: opening a device can do something
    if check_mode:
        _check_modes(path, status.st_mode, writable)
    if kept is not None:
        return copy_of(kept.data)
    read = _opened(path, read_bounded)
    if read is None:
        return None  # removed meanwhile
    raw, opened = read
    check_owner(path, opened)  # replaced meanwhile
    data = parse(raw, path)
    keep(key, opened, folders, data)
    return copy_of(data)


def _make_folders(folder: str) -> None:
    """Create ``folder`` and any missing parent, each 0700 whatever the umask."""
    missing = []
    current = os.path.abspath(folder)
    while not os.path.isdir(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    for path in reversed(missing):
        try:
            os.mkdir(path, FOLDER_MODE)
        except FileExistsError:
            if not os.path.isdir(path):
                raise TokenFileError(
                    f"Cannot create the folder {path}: a file of that name is in the way.",
                    path,
                ) from None
            continue  # made meanwhile by another writer
        except OSError as error:
            raise TokenFileError(
                f"Cannot create the folder {path}: {_reason(error)}.", path
            ) from None
        os.chmod(path, FOLDER_MODE)


@contextmanager
def _folder_lock(folder: str) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (flock on the folder itself)."""
    if not _POSIX:
        with _thread_lock:
            yield
        return
    import fcntl

    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError as error:
        raise TokenFileError(
            f"Cannot lock the folder {folder}: {_reason(error)}.", folder
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _temporary_name(name: str) -> re.Pattern[str]:
    """The names :func:`_write_atomically` gives temporary files of ``name``."""
    return re.compile(rf"\.{re.escape(name)}\.[A-Za-z0-9_]+\.tmp\Z")


def _remove_left_temporaries(folder: str, name: str) -> None:
    """Remove temporary files of ``name`` that a killed writer left in ``folder``.

    Called with the folder locked: no writer of ours is mid-write there. Without
    flock (not POSIX) another process may be, so nothing is removed.
    """
    if not _POSIX:
        return
    left = _temporary_name(name)
    try:
        with os.scandir(folder) as entries:
            found = [
                e.path for e in entries if left.match(e.name) and e.is_file(follow_symlinks=False)
            ]
    except OSError:
        return
    for path in found:
        with suppress(OSError):
            os.unlink(path)


def _write_atomically(path: str, data: dict[str, Any]) -> None:
    folder, name = os.path.split(path)
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    except OSError as error:
        raise TokenFileError(
            f"Cannot write {path}: the folder is not writable ({_reason(error)}).", path
        ) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            if _POSIX:
                os.fchmod(file.fileno(), FILE_MODE)
            json.dump(data, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        with suppress(OSError):
            os.unlink(temporary)
        if isinstance(error, OSError):
            raise TokenFileError(f"Cannot write {path}: {_reason(error)}.", path) from None
        raise
    if _POSIX:
        try:
            dir_fd = os.open(folder, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(dir_fd)
        except OSError:
            pass
        finally:
            os.close(dir_fd)


def _write_target(path: str) -> str:
    """The file a write to ``path`` lands in: the target of a symbolic link."""
    if not os.path.islink(path):
        return path
    target = os.path.realpath(path)
    if not os.path.exists(target):
        raise TokenFileError(
            f"{path} is a symbolic link to {os.readlink(path)}, which does not "
            "exist; remove the link or create its target.",
            path,
        )
    return target


def edit_secret_file(path: str, edit: Callable[[dict[str, Any]], dict[str, Any] | None]) -> bool:
    """Change the JSON object in ``path`` under a lock, atomically.

    ``edit`` gets the current object (empty where the file does not exist) and
    returns the new one, or ``None`` for no change. It may raise to refuse; the
    file is then untouched. A new object that is empty removes the file (a
    symbolic link is kept, and its target emptied to ``{}``). A symbolic link
    is written through, to its target, and stays a link.

    Returns:
        Whether the file was changed.

    Raises:
        TokenFileError: the file is corrupt (it is never overwritten), or the
            folder cannot be created or written.
    """
    path = os.path.abspath(os.path.expanduser(path))
    target = _write_target(path)
    folder = os.path.dirname(target)
    _make_folders(folder)
    with _folder_lock(folder):
        check_folders(target, (folder,))  # refuses another user's folder
        _remove_left_temporaries(folder, os.path.basename(target))
        try:
            return _edit(path, target, edit)
        finally:
            forget(path, target)


def _edit(path: str, target: str, edit: Callable[[dict[str, Any]], dict[str, Any] | None]) -> bool:
    current = read_secret_file(target, check_mode=False)
    new = edit(dict(current or {}))
    if new is None or new == (current or {}):
        return False
    if not new and target == path:
        try:
            os.unlink(target)
        except FileNotFoundError:
            return False
        except OSError as error:
            raise TokenFileError(f"Cannot remove {target}: {_reason(error)}.", target) from None
        return True
    _write_atomically(target, new)
    return True
