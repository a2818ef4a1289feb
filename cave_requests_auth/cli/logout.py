"""``cave-auth logout``: remove the saved token from every file a request would read."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..errors import CAVEAuthError
from ..lookup import origin_of
from ..store import remove_token, saved_token_files
from ..tokens import CAVE_TOKEN_ENV
from ._common import PROG, CommandError, auth_of, places_of, server_of

if TYPE_CHECKING:
    import argparse

    from ._output import Output

NAME = "logout"
SUMMARY = (
    "Remove the saved token from every file a request to the server reads "
    "(--all: every saved CAVE token)."
)
EXAMPLE = f"{PROG} logout --all"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--all",
        action="store_true",
        help="remove every saved CAVE token: each *-cave-secret.json, cave-secret.json and "
        "chunkedgraph-secret.json (other keys in them are kept)",
    )


def _holding(paths: list[str], key: str) -> list[str]:
    """The files among ``paths`` with a value under ``key`` (unreadable ones count)."""
    from ..files import read_secret_file

    found = []
    for path in paths:
        try:
            data = read_secret_file(path, check_mode=False)
        except (CAVEAuthError, RecursionError):
            found.append(path)
            continue
        if data is not None and key in data:
            found.append(path)
    return found


def run(io: Output, args: argparse.Namespace) -> int:
    places = places_of(args)
    server = server_of(args)
    if args.all:
        if places.token_file is not None:
            raise CommandError(
                "--all removes the tokens of the secrets folder; without --token-file.", 2
            )
        paths = saved_token_files(places.folder)
    elif places.token_file is not None:
        paths = [places.token_file]
    else:  # every file a request to the server reads, the deprecated one too
        paths = places.search_paths(origin_of(server))
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
        fix = f"unset {CAVE_TOKEN_ENV}" if source.kind == "environment" else f"see `{PROG} status`"
        io.warn(f"requests to {server} still get a token, from {source}; {fix} to stop that.")
    if not args.all and places.token_file is None:
        others = _holding(saved_token_files(places.folder), places.token_key)
        if others:
            names = ", ".join(os.path.basename(path) for path in others)
            io.say(f"Other saved tokens remain ({names}); `{PROG} logout --all` removes them too.")
    return 0
