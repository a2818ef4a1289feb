"""``cave-auth login``: get a token by hand, check it with the server, save it."""

from __future__ import annotations

import argparse

from ..account import NamedSource, new_token_steps, open_in_browser
from ..errors import AuthResponseError, CAVEAuthError
from ..store import check_can_save, check_pasted
from ..urls import new_token_url, token_page_url
from ._common import (
    PROG,
    CommandError,
    check_with_server,
    describe_user,
    places_of,
    same_options,
    save,
    server_of,
    user_lines,
)
from ._output import Output, read_token

NAME = "login"
SUMMARY = "Get a token by hand, check it with the server, and save it."
EXAMPLE = f"{PROG} login --server https://global.daf-apis.com --open"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--existing",
        action="store_true",
        help="reuse a token you have (show the existing-tokens page)",
    )
    parser.add_argument(
        "--open",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="open the page in a web browser (default: no)",
    )
    parser.add_argument(
        "--verify",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="ask the auth server whose the token is before saving it (default: yes)",
    )


def run(io: Output, args: argparse.Namespace) -> int:
    # Before the user fetches a token (which may invalidate the old one): can it be saved?
    check_can_save(places_of(args), args.token_file is None)
    server = server_of(args)
    url = token_page_url(server) if args.existing else new_token_url(server)
    io.say(
        new_token_steps(
            server,
            existing=args.existing,
            save_step="Paste it below (it is not shown) and press Enter.",
        ).rstrip()
    )
    if args.open and not open_in_browser(url):
        io.warn("no web browser could be opened here; open the address above yourself.")
    value, where = read_token(io)
    token = check_pasted(value, where)
    if args.verify:
        try:
            user, issuer = check_with_server(NamedSource(token, where), server)
        except AuthResponseError as error:
            raise CommandError(f"{error} Nothing was saved.") from None
        except CommandError as error:
            raise CommandError(
                f"{str(error).rstrip('.')}. Nothing was saved; to save the token without "
                f"checking it: {PROG} login --no-verify{same_options(args)}"
            ) from None
        io.say(f"The token belongs to {describe_user(user)}.")
        for label, text in user_lines(user, issuer)[1:]:
            io.say(f"{label}: {text}")
    try:
        save(io, args, token)
    except CAVEAuthError as error:
        raise CommandError(
            f"{error} The token was not saved; once that is fixed, save it with "
            f"`{PROG} save -{same_options(args)}`."
        ) from None
    return 0
