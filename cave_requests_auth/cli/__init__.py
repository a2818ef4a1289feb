"""``cave-auth``: get a CAVE token onto this machine, and see where it comes from.

One module per command, each with its arguments (``add_arguments``) next to
its code (``run``). Exit status: 0 done, 1 no token / refused / failed,
2 usage, 130 interrupted. Errors are one sentence on standard error, never a
traceback; warnings are ``cave-auth: warning: …`` lines. No command prints a
token, except ``cave-auth token``, whose whole job that is.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from typing import TYPE_CHECKING, Callable

import requests

from .._version import __version__
from ..authserver import unreachable
from ..errors import CAVEAuthError
from . import login, logout, save, status, token, whoami
from ._common import PROG, CommandError, Output, add_common

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import ModuleType

__all__ = ["main"]

COMMANDS: tuple[ModuleType, ...] = (login, save, status, token, whoami, logout)

_EPILOG = f"""\
Start with:
  {PROG} login     get a token, check it and save it
  {PROG} status    see which token requests use, and from where

The options --server, --secrets-dir, --token-file and --token-key go before or
after the command. `{PROG} COMMAND --help` shows a command's options.
Exit status: 0 done, 1 no token, refused or failed, 2 usage."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Get a CAVE token onto this machine, and see where it comes from.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_common(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        sub = commands.add_parser(
            command.NAME,
            help=command.SUMMARY,
            description=textwrap.fill(getattr(command, "DESCRIPTION", command.SUMMARY), 79),
            epilog=f"example:\n  {command.EXAMPLE}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.add_arguments(sub)
        add_common(sub, suppress=True)
        run: Callable[[Output, argparse.Namespace], int] = command.run
        sub.set_defaults(run=run)
    return parser


def _silence_stdout() -> None:
    """After a closed pipe: send what is still buffered nowhere, so exiting raises nothing."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass  # not a real file (a test's capture)


def _run(io: Output, argv: Sequence[str] | None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit:  # --help, --version, or a usage error (2)
        return exit.code if isinstance(exit.code, int) else 2
    if getattr(args, "run", None) is None:  # `cave-auth` alone
        parser.print_help(io.out)
        return 0
    try:
        with io.reporting():
            result: int = args.run(io, args)
        return result
    except CommandError as error:
        io.error(str(error))
        return error.status
    except CAVEAuthError as error:
        io.error(str(error))
        return 1
    except KeyboardInterrupt:
        io.error("interrupted.")
        return 130
    except EOFError:
        io.error("no token was given.")
        return 1
    except requests.RequestException as error:  # one sentence, where the package said it
        said = error if getattr(error, "said", False) else unreachable(error, "ask it")
        io.error(str(said))
        return 1
    except RecursionError:
        io.error("a secret file is nested too deeply to be read; look for a damaged file.")
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``cave-auth`` with ``argv`` (default: the command line); return the exit status."""
    io = Output(sys.stdout, sys.stderr)
    try:
        status = _run(io, argv)
        io.out.flush()
    except BrokenPipeError:  # `cave-auth token | head -c 0`: nobody reads any more
        _silence_stdout()
        return 1
    return status
