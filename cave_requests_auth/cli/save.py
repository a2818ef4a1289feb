"""``cave-auth save``: save a token given as argument or on standard input."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..login import read_token
from ..store import check_pasted, save_token
from ..tokens import mask_token
from ._common import PROG

if TYPE_CHECKING:
    import argparse

    from ._common import Output

NAME = "save"
SUMMARY = "Save a token given as argument or on standard input."
EXAMPLE = (
    f"{PROG} save -     (paste the token, then Enter; an argument would stay in the shell's "
    "history)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "token",
        nargs="?",
        metavar="TOKEN",
        help="the token, or - (the default) to read it from standard input",
    )


def run(io: Output, args: argparse.Namespace) -> int:
    if args.token is None or args.token == "-":
        value, where = read_token()
    else:
        value, where = args.token, "the command line"
    token = check_pasted(value, where)
    paths = save_token(
        token,
        args.server,
        token_file=args.token_file,
        token_key=args.token_key,
        secrets_dir=args.secrets_dir,
        overwrite=True,
        write_server_file=args.token_file is None,
    )
    io.good(f"Saved the token ({mask_token(token)}) to:")
    for path in paths:
        io.say(f"  {path}")
    return 0
