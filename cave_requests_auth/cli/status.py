"""``cave-auth status``: which token a request would use, and every token on this machine.

Like ``gh auth status``: one block per token (each variable, server file, the default
file, the deprecated one), masked, with what it is for; where files hold different
tokens, it says so (CAVEclient's ``save_token(overwrite=True)`` replaces one file only).
``--check`` asks each token's auth server whose it is, and when it expires.
"""

from __future__ import annotations

import os
import shlex
import stat
import warnings
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Union

import requests

from ..account import check_token_with, lasts, token_ttl, user_lines
from ..errors import CAVEAuthError, TokenFileModeWarning, TokenNotFoundError
from ..login import options
from ..lookup import checked, environment, environment_file, origin_of, read_value
from ..store import saved_token_files, target_paths
from ..tokens import (
    CAVE_TOKEN_ENV,
    CAVE_TOKEN_FILE_ENV,
    DEFAULT_FILE_NAME,
    DEPRECATED_FILE_NAME,
    SERVER_FILE_SUFFIX,
    TokenSource,
    named_token_file,
    variable,
)
from ..urls import new_token_url, parse_origin
from ._common import PROG, attachment_for, auth_of, places_of, same_options, server_of

if TYPE_CHECKING:
    import argparse

    from ..authserver import AuthServer
    from ..lookup import TokenPlaces
    from ._common import Output

NAME = "status"
SUMMARY = "Show which token a request would use, and every token saved on this machine."
DESCRIPTION = (
    f"{SUMMARY} Exit status 1 where that request gets no token (or, with --check, one "
    "its auth server refuses); problems with other tokens are shown in their blocks."
)
EXAMPLE = f"{PROG} status https://minnie.example.org/segmentation/api --check"

_WIDTH = 7  # of the labels
_SOON = 86400  # seconds: a token that expires sooner gets a warning
Checked = Union[tuple[list[tuple[str, str]], Union[int, None]], str]  # (lines, ttl), or why not


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "url", nargs="?", metavar="URL", help="the URL a request goes to (default: the server)"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="ask the auth server that issued each token whose it is, when it expires, and "
        "which terms of service are still to accept",
    )


class Block(NamedTuple):
    """One token on this machine: where it is, what it is for, and any problem."""

    title: str
    used_for: str
    source: TokenSource | None = None
    problem: str | None = None
    path: str | None = None
    issuer_url: str | None = None
    """Whose auth server to ask, for ``--check``."""


def _found(step: Callable[..., TokenSource | None], *args: str) -> tuple[Any, str | None]:
    """What a step of the lookup finds: a token (or none), or the problem it meets."""
    try:
        return step(*args), None
    except CAVEAuthError as error:
        return None, str(error)


def _in_file(path: str, key: str) -> TokenSource | None:
    return checked(read_value(path, key, check_mode=False), "file", path, key)


def _issuer_url(netloc: str, target: str, server: str) -> str:
    """Where to find the auth server of a server file's host: the target itself where it
    is that host (its path may answer a 401 naming the auth server), else the host with
    the scheme of the server where it is that one, else ``https://<netloc>``."""
    for known in (target, server):
        origin = parse_origin(known)
        if origin is not None and netloc in (origin.file_netloc, origin.name, origin.netloc):
            return known if known == target else f"{origin.scheme}://{netloc}"
    return f"https://{netloc}"


def _used_for(path: str, places: TokenPlaces, target: str, server: str) -> tuple[str, str]:
    """What requests a file's token is for, and where its auth server is found."""
    name = os.path.basename(path)
    if path == places.token_file:
        return "every request (--token-file)", target
    if name.endswith(SERVER_FILE_SUFFIX):
        netloc = name[: -len(SERVER_FILE_SUFFIX)]
        return f"requests to {netloc}", _issuer_url(netloc, target, server)
    others = "requests to hosts without a file of their own"
    if name == DEFAULT_FILE_NAME:
        return others, target
    if name == DEPRECATED_FILE_NAME:
        return f"{others}, where {DEFAULT_FILE_NAME} has no token (a deprecated name)", target
    return "requests that find no other token", target


def _blocks(places: TokenPlaces, target: str, server: str) -> list[Block]:
    blocks = []
    named = named_token_file()
    wins = "every request: it wins over every file"
    for title, step in [
        (f"${CAVE_TOKEN_ENV}", environment if variable(CAVE_TOKEN_ENV) else None),
        (f"${CAVE_TOKEN_FILE_ENV} ({named})", environment_file if named else None),
    ]:
        if step is not None:
            blocks.append(Block(title, wins, *_found(step), None, target))
            wins = f"every request without ${CAVE_TOKEN_ENV}: it wins over every file"
    if places.token_file is not None:
        paths = [places.token_file]
    else:
        searched = places.search_paths(parse_origin(target))
        paths = list(dict.fromkeys([*searched, *saved_token_files(places.folder)]))
    for path in filter(os.path.lexists, paths):
        found, problem = _found(_in_file, path, places.token_key)
        if found is not None or problem is not None:  # else: no token under that key
            used_for, issuer = _used_for(path, places, target, server)
            blocks.append(Block(path, used_for, found, problem, path, issuer))
    return blocks


def _line(io: Output, label: str, text: str, bad: bool = False) -> None:
    (io.bad if bad else io.say)(f"  {label.ljust(_WIDTH)} {text}")


def _is_active(block: Block, active: TokenSource | None) -> bool:
    return active is not None and block.source == active


def _check(
    io: Output,
    block: Block,
    issuers: dict[str, AuthServer],
    checked: dict[tuple[str, str], Checked],
    again: str,
) -> bool:
    """Print what the block's auth server says of its token; whether it accepted it."""
    assert block.source is not None
    assert block.issuer_url is not None
    source, key = block.source, (block.source.token, block.issuer_url)
    found = checked.get(key)
    if found is None:  # once a token and auth server (files may hold the same token)
        try:
            user, issuer = check_token_with(source, block.issuer_url, issuers)
            found = user_lines(user, issuer), token_ttl(source, issuer)
        except (CAVEAuthError, requests.RequestException) as error:
            found = str(error).rstrip(".")
        checked[key] = found
        ttl = None if isinstance(found, str) else found[1]
        if ttl is not None and 0 <= ttl < _SOON:
            fix = f"in ${source.variable}" if source.variable else f"with `{PROG} login{again}`"
            soon = f"the token {source.masked} from {source} expires {lasts(ttl)}"
            io.warn(f"{soon}; get a new one {fix}.")
    if isinstance(found, str):
        _line(io, "check", f"failed: {found}", bad=True)
        return False
    lines, ttl = found
    for label, text in lines:
        _line(io, label, text)
    if ttl is not None:
        _line(io, "expires", "never (an API key)" if ttl < 0 else lasts(ttl))
    return True


def _disagreement(
    io: Output, blocks: list[Block], places: TokenPlaces, args: argparse.Namespace
) -> None:
    """Where saved files hold different tokens: which, why it matters, and the fix.

    The reference is the token a request to the server takes from the files
    (``cave-auth token --server …`` without ``CAVE_TOKEN``): after CAVEclient's
    ``save_token(overwrite=True)``, the newest, in the server's own file.
    """
    files = [block for block in blocks if block.path is not None and block.source is not None]
    if len({block.source.token for block in files if block.source is not None}) < 2:
        return
    server = server_of(args)
    order = places.search_paths(origin_of(server))
    ranked = sorted((b for b in files if b.path in order), key=lambda b: order.index(str(b.path)))
    if not ranked or ranked[0].source is None:
        return
    reference = ranked[0].source
    differing = [block for block in files if block.source and block.source.token != reference.token]
    io.say()
    io.say(
        "The saved files hold different tokens, so programs may send different ones:\n"
        "CAVEclient reads its auth server's file first, CloudVolume the file of the host\n"
        f"it talks to, else {DEFAULT_FILE_NAME} (and CAVEclient's save_token(overwrite=True)\n"
        "replaces the token in one file only)."
    )
    io.say(f"  {reference.masked}  {reference.path}   (what requests to {server} use)")
    for block in differing:
        io.say(f"  {block.source.masked}  {block.path}")  # type: ignore[union-attr]
    unset = "".join(
        f"-u {name} " for name in (CAVE_TOKEN_ENV, CAVE_TOKEN_FILE_ENV) if variable(name)
    )
    unset = f"env {unset}" if unset else ""
    given = same_options(args)
    source = f"{unset}{PROG} token{given}"
    key = options({"token_key": places.token_key})  # nothing for the default key
    own_files = set(target_paths(places, True))
    commands = (
        [f"{source} | {PROG} save -{given}"] if own_files & {b.path for b in differing} else []
    )
    for block in differing:
        if block.path not in own_files:
            commands.append(
                f"{source} | {PROG} save - --token-file {shlex.quote(str(block.path))}{key}"
            )
    io.say(f"To put {reference.masked} in {'it' if len(differing) == 1 else 'them'} too:")
    for command in commands:
        io.say(f"  {command}")


def _loose_modes(io: Output, blocks: list[Block]) -> None:
    """One warning, with one command, for every token file others may read."""
    loose = []
    for path in (block.path for block in blocks if block.path is not None and os.name == "posix"):
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
        except OSError:
            continue
        if mode & 0o077:
            loose.append((path, mode))
    if loose:
        listed = ", ".join(f"{path} ({mode:04o})" for path, mode in loose)
        command = "chmod 600 " + " ".join(shlex.quote(path) for path, _ in loose)
        io.warn(
            f"other users can read or write {listed} (CAVEclient writes with your umask); "
            f"restrict {'it' if len(loose) == 1 else 'them'} with: {command}"
        )


def run(io: Output, args: argparse.Namespace) -> int:
    places = places_of(args)
    server = server_of(args)
    target = args.url or server
    failed = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TokenFileModeWarning)  # one warning for all, below
        try:
            attachment = attachment_for(auth_of(args), target)
            active = None if attachment is None else attachment.source
        except TokenNotFoundError as error:
            active, failed = None, True
            io.bad(f"No token for requests to {target}. Looked in, in order:")
            for place in error.searched:
                io.say(f"    {place}")
            io.say(f"  Create a token at {new_token_url(server)}, then run `{PROG} login`.")
        if active is not None:
            io.good(f"Requests to {target} use the token {active.masked} from {active}.")
        blocks = _blocks(places, target, server)
    issuers: dict[str, AuthServer] = {}
    checked: dict[tuple[str, str], Checked] = {}
    for block in blocks:
        in_use = _is_active(block, active)
        io.say()
        io.say(block.title + ("   (in use)" if in_use else ""))
        if block.problem is not None or block.source is None:
            _line(io, "problem", str(block.problem), bad=True)
            continue
        _line(io, "token", block.source.masked)
        _line(io, "for", block.used_for)
        if args.check and not _check(io, block, issuers, checked, same_options(args)) and in_use:
            failed = True  # the exit status is about the token requests to the target use
    if not blocks:
        io.say()
        io.say(f"No token is saved in {places.token_file or places.folder}.")
    _disagreement(io, blocks, places, args)
    _loose_modes(io, blocks)
    return 1 if failed else 0
