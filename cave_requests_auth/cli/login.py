"""``cave-auth login``: get a token by hand, check it with the server, save it."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ..login import login
from ._common import PROG

if TYPE_CHECKING:
    from ._common import Output

NAME = "login"
SUMMARY = "Get a token by hand, check it with the server, and save it."
EXAMPLE = f"{PROG} login --server https://global.daf-apis.com --open"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--existing",
        action="store_true",
        help="reuse a token you have (show the existing-tokens page)",
    )
    for name, default, text in [
        ("--open", False, "open the page in a web browser (default: no)"),
        ("--verify", True, "ask the auth server whose the token is before saving it"),
    ]:
        parser.add_argument(name, action=argparse.BooleanOptionalAction, default=default, help=text)


def run(io: Output, args: argparse.Namespace) -> int:
    login(
        args.server,
        existing=args.existing,
        open=args.open,
        verify=args.verify,
        token_file=args.token_file,
        token_key=args.token_key,
        secrets_dir=args.secrets_dir,
        say=io.say,
    )
    return 0
