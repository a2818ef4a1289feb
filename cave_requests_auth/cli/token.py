"""``cave-auth token``: print the bare token a request would send, for use in a shell."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._common import PROG, CommandError, attachment_for, auth_of, server_of

if TYPE_CHECKING:
    import argparse

    from ._common import Output

NAME = "token"
SUMMARY = "Print the bare token a request to URL would send, for use in a shell."
EXAMPLE = f'curl -H "Authorization: Bearer $({PROG} token URL)" URL'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "url", nargs="?", metavar="URL", help="the URL a request goes to (default: the server)"
    )


def run(io: Output, args: argparse.Namespace) -> int:
    url = args.url or server_of(args)
    attachment = attachment_for(auth_of(args), url)
    if attachment is None or attachment.source is None:
        raise CommandError(f"a request to {url} gets no CAVE token.")
    io.out.write(attachment.source.token + "\n")
    return 0
