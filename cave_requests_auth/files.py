"""Secret files: JSON objects on disk, read strictly (:mod:`.secretjson`) and written safely.

Knows nothing of tokens or HTTP: a secret file is a JSON object of string keys.

Writing goes through a temporary file in the same folder, mode 0600 from its
creation, flushed and fsynced, then renamed over the old file; on any failure
the old file is untouched and the temporary file is removed. Writers hold an
exclusive lock on the folder, so concurrent threads and processes lose no key;
holding it, a writer removes the temporary files of its file that a killed
writer left. Folders this module creates are 0700, files 0600, whatever the umask.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any, Callable

from .errors import TokenFileError
from .secretjson import check_folders, dangling, json_type, read_secret_file, reason

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["edit_secret_file", "json_type", "missing_folders", "read_secret_file", "write_target"]

FILE_MODE = 0o600
FOLDER_MODE = 0o700

_POSIX = os.name == "posix"
_thread_lock = threading.Lock()  # for systems without flock


def missing_folders(folder: str) -> list[str]:
    """``folder`` and those of its parents that do not exist, outermost first."""
    missing: list[str] = []
    current = os.path.abspath(folder)
    while not os.path.isdir(current) and os.path.dirname(current) != current:
        missing.insert(0, current)
        current = os.path.dirname(current)
    return missing


def write_target(path: str) -> str:
    """The file a write to ``path`` lands in: the target of a symbolic link.

    Raises:
        TokenFileError: ``path`` is a link to nothing.
    """
    if not os.path.islink(path):
        return path
    target = os.path.realpath(path)
    if not os.path.exists(target):
        raise dangling(path)
    return target


def _make_folders(folder: str) -> None:
    """Create ``folder`` and any missing parent, each 0700 whatever the umask."""
    for path in missing_folders(folder):
        try:
            os.mkdir(path, FOLDER_MODE)
            os.chmod(path, FOLDER_MODE)
        except FileExistsError:  # made meanwhile by another writer, or a file
            if not os.path.isdir(path):
                raise TokenFileError(
                    f"Cannot create the folder {path}: a file of that name is in the way.", path
                ) from None
        except OSError as error:
            raise TokenFileError(
                f"Cannot create the folder {path}: {reason(error)}.", path
            ) from None


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
        raise TokenFileError(f"Cannot lock the folder {folder}: {reason(error)}.", folder) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _remove_left_temporaries(folder: str, name: str) -> None:
    """Remove temporary files of ``name`` (as :func:`_write_atomically` names them) in ``folder``.

    Called with the folder locked: no writer of ours is mid-write there. Without
    flock (not POSIX) another process may be, so nothing is removed.
    """
    if not _POSIX:
        return
    left = re.compile(rf"\.{re.escape(name)}\.[A-Za-z0-9_]+\.tmp\Z")
    with suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            if left.match(entry.name) and entry.is_file(follow_symlinks=False):
                with suppress(OSError):
                    os.unlink(entry.path)


def _write_atomically(path: str, data: dict[str, Any]) -> None:
    folder, name = os.path.split(path)
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    except OSError as error:
        raise TokenFileError(
            f"Cannot write {path}: the folder is not writable ({reason(error)}).", path
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
            raise TokenFileError(f"Cannot write {path}: {reason(error)}.", path) from None
        raise
    if _POSIX:  # the rename itself survives a crash once the folder is synced
        with suppress(OSError):
            dir_fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)


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
    target = write_target(path)
    folder = os.path.dirname(target)
    _make_folders(folder)
    with _folder_lock(folder):
        check_folders(target, (folder,))  # refuses another user's folder
        _remove_left_temporaries(folder, os.path.basename(target))
        current = read_secret_file(target, check_mode=False) or {}
        new = edit(dict(current))
        if new is None or new == current:
            return False
        if new or target != path:
            _write_atomically(target, new)
            return True
        try:
            os.unlink(target)
        except FileNotFoundError:
            return False
        except OSError as error:
            raise TokenFileError(f"Cannot remove {target}: {reason(error)}.", target) from None
        return True
