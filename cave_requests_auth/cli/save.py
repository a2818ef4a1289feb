"""``cave-auth save``: save a token given as argument or on standard input."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..store import check_pasted
from ._common import PROG, save
from ._output import Output, read_token

if TYPE_CHECKING:
    import argparse

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
        value, where = read_token(io)
    else:
        value, where = args.token, "the command line"
    save(io, args, check_pasted(value, where))
    return 0
