"""``cave-auth whoami``: ask the auth server whose the token is."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..account import check_token_with, describe_user, user_lines
from ._common import PROG, CommandError, attachment_for, auth_of, server_of

if TYPE_CHECKING:
    import argparse

    from ._common import Output

NAME = "whoami"
SUMMARY = "Ask the auth server whose the token is, and which terms are still to accept."
EXAMPLE = f"{PROG} whoami --server https://global.daf-apis.com"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(io: Output, args: argparse.Namespace) -> int:
    server = server_of(args)
    attachment = attachment_for(auth_of(args), server)
    if attachment is None or attachment.source is None:
        raise CommandError(f"a request to {server} gets no CAVE token.")
    source = attachment.source
    user, issuer = check_token_with(source, server)
    io.say(describe_user(user))
    for label, text in user_lines(user, issuer)[1:]:
        io.say(f"{label}: {text}")
    io.say(f"(the token {source.masked} from {source}, asked {issuer})")
    return 0
