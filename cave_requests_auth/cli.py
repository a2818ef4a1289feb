"""``cave-auth``: get a CAVE token onto this machine, and see where it comes from.

Exit status: 0 done, 1 no token / refused / failed, 2 usage. Errors are one
sentence on standard error, never a traceback. No command prints a token,
except ``cave-auth token``, whose whole job that is.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from typing import TYPE_CHECKING, Any, Callable, TextIO

import requests

from . import __version__
from .account import new_token_steps, whoami
from .auth import CAVETokenAuth
from .errors import CAVEAuthError, CAVEAuthWarning, TokenNotFoundError
from .lookup import find_token
from .store import delete_token, save_token
from .tokens import CAVE_TOKEN_ENV, check_token, mask_token
from .urls import (
    DEFAULT_SERVER_ADDRESS,
    new_token_url,
    normalize_server_address,
    parse_origin,
    token_page_url,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["main"]

PROG = "cave-auth"


class _Output:
    """Standard output and error, colored only on a terminal and without NO_COLOR."""

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self.out = out
        self.err = err

    @staticmethod
    def _color(stream: TextIO, text: str, code: str) -> str:
        tty = getattr(stream, "isatty", lambda: False)()
        if not tty or os.environ.get("NO_COLOR"):
            return text
        return f"\x1b[{code}m{text}\x1b[0m"

    def say(self, text: str = "") -> None:
        print(text, file=self.out)

    def good(self, text: str) -> None:
        print(self._color(self.out, text, "32"), file=self.out)

    def warn(self, text: str) -> None:
        print(f"{self._color(self.err, f'{PROG}: warning:', '33')} {text}", file=self.err)

    def error(self, text: str) -> None:
        print(f"{self._color(self.err, f'{PROG}: error:', '31')} {text}", file=self.err)


def _token_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "server_address": args.server,
        "token_file": args.token_file,
        "token_key": args.token_key,
        "secrets_dir": args.secrets_dir,
    }


def _warn_if_environment_wins(io: _Output, what: str) -> None:
    if os.environ.get(CAVE_TOKEN_ENV, "").strip():
        io.warn(
            f"{CAVE_TOKEN_ENV} is set, so requests use it, not {what}; unset it to use the files."
        )


def _read_token(prompt: str) -> str:
    """A pasted token: hidden input on a terminal, else one line of standard input."""
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass(prompt)
    return sys.stdin.readline()


def _describe_user(user: dict[str, Any]) -> str:
    name = user.get("name") or "(no name)"
    email = f" <{user['email']}>" if user.get("email") else ""
    return f"{name}{email}, user id {user.get('id')}"


def _save(io: _Output, args: argparse.Namespace, token: str) -> None:
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
    _warn_if_environment_wins(io, "the saved token")


def cmd_login(io: _Output, args: argparse.Namespace) -> int:
    url = token_page_url(args.server) if args.existing else new_token_url(args.server)
    steps = new_token_steps(
        args.server,
        existing=args.existing,
        save_step="Paste it below (it is not shown) and press Enter.",
    )
    io.say(steps.rstrip())
    if args.open:
        import webbrowser

        webbrowser.open(url)
    token = check_token(_read_token("Token: "), "standard input")
    if args.verify:
        user = whoami(CAVETokenAuth(token, server_address=args.server), args.server)
        io.say(f"The token belongs to {_describe_user(user)}.")
    _save(io, args, token)
    return 0


def cmd_save(io: _Output, args: argparse.Namespace) -> int:
    if args.token is None or args.token == "-":
        token = check_token(_read_token("Token: "), "standard input")
    else:
        token = check_token(args.token, "the command line")
    _save(io, args, token)
    return 0


def _target(args: argparse.Namespace) -> str:
    return str(args.url or args.server or DEFAULT_SERVER_ADDRESS)


def cmd_status(io: _Output, args: argparse.Namespace) -> int:
    target = _target(args)
    io.say(f"For requests to {target}:")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", CAVEAuthWarning)
            source = find_token(target, **_token_kwargs(args))
    except TokenNotFoundError as error:
        io.say("  No token found. Looked in, in order:")
        for place in error.searched:
            io.say(f"    {place}")
        server = normalize_server_address(args.server)
        io.say(f"  Create a token at {new_token_url(server)}, then run `{PROG} login`.")
        return 1
    finally:
        for warning in caught:
            io.warn(str(warning.message))
    io.say(f"  token   {source.masked}")
    io.say(f"  from    {source}")
    if args.check:
        user = whoami(CAVETokenAuth(source.token, server_address=args.server), args.server)
        io.good(f"  user    {_describe_user(user)}")
    return 0


def cmd_token(io: _Output, args: argparse.Namespace) -> int:
    print(find_token(_target(args), **_token_kwargs(args)).token, file=io.out)
    return 0


def cmd_whoami(io: _Output, args: argparse.Namespace) -> int:
    user = whoami(CAVETokenAuth(**_token_kwargs(args)), args.server)
    io.say(_describe_user(user))
    groups = user.get("groups")
    if isinstance(groups, list) and groups:
        io.say(f"groups: {', '.join(map(str, groups))}")
    return 0


def cmd_logout(io: _Output, args: argparse.Namespace) -> int:
    removed = delete_token(
        args.server,
        token_file=args.token_file,
        token_key=args.token_key,
        secrets_dir=args.secrets_dir,
        write_server_file=args.token_file is None,
    )
    if removed:
        io.say("Removed the token from:")
        for path in removed:
            io.say(f"  {path}")
    else:
        io.say("No saved token to remove.")
    _warn_if_environment_wins(io, "the files")
    return 0


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("where the token lives")
    group.add_argument(
        "--server", metavar="URL", help=f"the CAVE auth server (default {DEFAULT_SERVER_ADDRESS})"
    )
    group.add_argument(
        "--secrets-dir",
        metavar="DIR",
        help="folder of the secret files (default: ~/.cloudvolume/secrets)",
    )
    group.add_argument("--token-file", metavar="FILE", help="use this JSON file only")
    group.add_argument(
        "--token-key",
        metavar="KEY",
        default="token",
        help="key of the token in the JSON files (default: token)",
    )

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Get a CAVE token onto this machine, and see where it comes from.",
        epilog=f"Start with: {PROG} login   then: {PROG} status",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(
        name: str, run: Callable[[_Output, argparse.Namespace], int], summary: str, example: str
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            parents=[common],
            help=summary,
            description=summary,
            epilog=f"example: {example}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(run=run)
        return sub

    login = add(
        "login",
        cmd_login,
        "Get a token by hand, check it, and save it.",
        f"{PROG} login --server https://global.daf-apis.com",
    )
    login.add_argument(
        "--existing",
        action="store_true",
        help="reuse a token you have (show the existing-tokens page)",
    )
    login.add_argument(
        "--open",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="open the page in a web browser (default: no)",
    )
    login.add_argument(
        "--verify",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="ask the server who the token belongs to before saving (default: yes)",
    )

    save = add(
        "save",
        cmd_save,
        "Save a token given as argument or on standard input.",
        f"pbpaste | {PROG} save -   (an argument stays in your shell history)",
    )
    save.add_argument(
        "token",
        nargs="?",
        metavar="TOKEN",
        help="the token, or - (the default) to read it from standard input",
    )

    status = add(
        "status",
        cmd_status,
        "Show which token a request would use, and from where.",
        f"{PROG} status https://minnie.microns-daf.com",
    )
    status.add_argument(
        "url", nargs="?", metavar="URL", help="the URL a request goes to (default: the server)"
    )
    status.add_argument(
        "--check", action="store_true", help="also ask the server who the token belongs to"
    )

    token = add(
        "token",
        cmd_token,
        "Print the bare token, for use in a shell.",
        f'curl -H "Authorization: Bearer $({PROG} token)" URL',
    )
    token.add_argument(
        "url", nargs="?", metavar="URL", help="the URL a request goes to (default: the server)"
    )

    add(
        "whoami",
        cmd_whoami,
        "Ask the auth server who the token belongs to.",
        f"{PROG} whoami --server https://global.daf-apis.com",
    )
    add("logout", cmd_logout, "Remove the saved token.", f"{PROG} logout")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``cave-auth`` with ``argv`` (default: the command line); return the exit status."""
    io = _Output(sys.stdout, sys.stderr)
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit:  # --help, --version, or a usage error (2)
        return exit.code if isinstance(exit.code, int) else 2
    try:
        result: int = args.run(io, args)
        return result
    except CAVEAuthError as error:
        io.error(str(error))
        return 1
    except ValueError as error:  # a malformed --server
        io.error(str(error))
        return 2
    except KeyboardInterrupt:
        io.error("interrupted.")
        return 130
    except EOFError:
        io.error("no token was given on standard input.")
        return 1
    except requests.RequestException as error:
        request = error.request
        where = parse_origin(str(request.url)) if request is not None else None
        io.error(
            f"cannot reach {where or 'the server'} ({type(error).__name__}); "
            "check the address and the network."
        )
        return 1
