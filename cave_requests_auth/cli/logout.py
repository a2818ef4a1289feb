"""``cave-auth logout``: remove the saved token from every file a request would read."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import requests

from ..account import revoke
from ..authserver import find_auth_server, unreachable
from ..errors import CAVEAuthError
from ..files import read_secret_file
from ..lookup import checked, origin_of, read_value
from ..store import remove_token, saved_token_files
from ._common import PROG, CommandError, auth_of, places_of, server_of

if TYPE_CHECKING:
    import argparse

    from ..tokens import TokenSource
    from ._common import Output

NAME = "logout"
SUMMARY = (
    "Remove the saved token from every file a request to the server reads "
    "(--all: every saved CAVE token; --revoke: delete it on its auth server first)."
)
EXAMPLE = f"{PROG} logout --revoke"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--all",
        action="store_true",
        help="remove every saved CAVE token: each *-cave-secret.json, cave-secret.json and "
        "chunkedgraph-secret.json (other keys in them are kept)",
    )
    parser.add_argument(
        "--revoke",
        action="store_true",
        help="first delete the saved token on its auth server (an API key, or a login "
        "token); where that fails, the files are left as they are",
    )


def _holding(paths: list[str], key: str) -> list[str]:
    """The files among ``paths`` with a value under ``key`` (unreadable ones count)."""
    found = []
    for path in paths:
        try:
            data = read_secret_file(path, check_mode=False)
        except (CAVEAuthError, RecursionError):
            data = {key: None}
        if data is not None and key in data:
            found.append(path)
    return found


def _revoke(io: Output, paths: list[str], key: str, server: str) -> None:
    """Delete the token saved in ``paths`` on its auth server first, or say why not
    (then nothing is removed). A token of ``$CAVE_TOKEN`` is not touched."""
    saved: dict[str, TokenSource] = {}
    for path in paths:
        source = checked(read_value(path, key, check_mode=False), "file", path, key)
        if source is not None:
            saved.setdefault(source.token, source)
    if not saved:
        raise CommandError(f"no token is saved for requests to {server}: none to revoke.")
    try:
        try:
            issuer = find_auth_server(server)
        except requests.RequestException as error:
            raise unreachable(error, "find its auth server") from None
        for source in saved.values():
            done = revoke(source, issuer)
            io.say(f"Revoked the token {source.masked} from {source}: {done}.")
    except (CAVEAuthError, requests.RequestException) as error:
        kept = "The token was not revoked, and the saved files were left as they are."
        raise CommandError(f"{error} {kept}") from None


def run(io: Output, args: argparse.Namespace) -> int:
    places = places_of(args)
    server = server_of(args)
    if args.all and args.revoke:
        raise CommandError(
            "--revoke deletes the token of one server: use it with --server, not --all.", 2
        )
    if args.all and places.token_file is not None:
        raise CommandError(
            "--all removes the tokens of the secrets folder; without --token-file.", 2
        )
    if args.all:
        paths = saved_token_files(places.folder)
    elif places.token_file is not None:
        paths = [places.token_file]
    else:  # every file a request to the server reads, the deprecated one too
        paths = places.search_paths(origin_of(server))
    if args.revoke:
        _revoke(io, paths, places.token_key, server)
    removed = remove_token(paths, places.token_key)
    if removed:
        io.say(f"Removed the token (key {places.token_key!r}) from:")
        for path in removed:
            io.say(f"  {path}")
    else:
        io.say("No saved token to remove.")
    try:
        attachment = auth_of(args).attachment_for(server)
    except CAVEAuthError:
        attachment = None
    source = None if attachment is None else attachment.source
    if source is not None:
        fix = f"unset {source.variable}" if source.variable else f"see `{PROG} status`"
        io.warn(f"requests to {server} still get a token, from {source}; {fix} to stop that.")
    if not args.all and places.token_file is None:
        others = _holding(saved_token_files(places.folder), places.token_key)
        if others:
            names = ", ".join(os.path.basename(path) for path in others)
            io.say(f"Other saved tokens remain ({names}); `{PROG} logout --all` removes them too.")
    return 0
