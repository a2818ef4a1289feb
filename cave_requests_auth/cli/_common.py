"""What the commands share: the common options, what they print, the token rules."""

from __future__ import annotations

import argparse
import logging
import os
import warnings
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

from ..authserver import refused_over_http
from ..core import Credentials
from ..errors import CAVEAuthWarning, InsecureTransportError
from ..login import PROG, options
from ..lookup import TokenPlaces
from ..text import printable
from ..tokens import DEFAULT_TOKEN_KEY
from ..urls import DEFAULT_SERVER_ADDRESS, normalize_server_address, parse_origin

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ..wire import Attachment

__all__ = [
    "PROG", "CommandError", "Output", "add_common", "attachment_for", "auth_of",
    "places_of", "same_options", "server_of",
]  # fmt: skip

COMMON_OPTIONS = ("server", "secrets_dir", "token_file", "token_key")


class CommandError(Exception):
    """A refusal of the command: one sentence for standard error, and an exit status."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def _server(text: str) -> str:
    try:
        return normalize_server_address(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an http(s) address, such as {DEFAULT_SERVER_ADDRESS}"
        ) from None


def _not_empty(what: str) -> Any:
    def check(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"{what} must not be empty")
        return text

    return check


def add_common(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """The options every command takes, before or after its name.

    The main parser holds the defaults; a command's parser (``suppress``) sets
    only what is given after the command's name, so neither undoes the other.
    """
    group = parser.add_argument_group("where the token lives (before or after the command)")
    secrets = "$CLOUD_VOLUME_DIR/secrets, else ~/.cloudvolume/secrets"
    options: list[tuple[str, str, Any, Any, str]] = [
        ("--server", "URL", _server, None,
         f"the CAVE auth server (default: {DEFAULT_SERVER_ADDRESS})"),
        ("--secrets-dir", "DIR", _not_empty("--secrets-dir"), None,
         f"folder of the secret files (default: {secrets})"),
        ("--token-file", "FILE", _not_empty("--token-file"), None, "use this JSON file only"),
        ("--token-key", "KEY", _not_empty("--token-key"), DEFAULT_TOKEN_KEY,
         f"key of the token in the JSON files (default: {DEFAULT_TOKEN_KEY})"),
    ]  # fmt: skip
    for name, metavar, kind, value, text in options:
        default = argparse.SUPPRESS if suppress else value
        group.add_argument(name, metavar=metavar, type=kind, default=default, help=text)


def places_of(args: argparse.Namespace) -> TokenPlaces:
    return TokenPlaces.of(args.server, args.token_file, args.token_key, args.secrets_dir)


def server_of(args: argparse.Namespace) -> str:
    return str(args.server or DEFAULT_SERVER_ADDRESS)


def auth_of(args: argparse.Namespace) -> Credentials:
    """The rules and token a request would use with these options."""
    return Credentials(
        server_address=args.server,
        token_file=args.token_file,
        token_key=args.token_key,
        secrets_dir=args.secrets_dir,
    )


def same_options(args: argparse.Namespace) -> str:
    """The common options given, as they would be typed again (with a leading space)."""
    return options({name: getattr(args, name) for name in COMMON_OPTIONS})


def attachment_for(auth: Credentials, url: str) -> Attachment | None:
    """What a request to ``url`` would carry, by the rules every request follows.

    Raises:
        CommandError: ``url`` is not an http(s) URL (status 2).
        InsecureTransportError: the rules refuse to send a token there.
        TokenNotFoundError, InvalidTokenError, TokenFileError: from the lookup.
    """
    origin = parse_origin(url)
    if origin is None:
        raise CommandError(
            f"{url!r} is not a URL; give a full one, such as https://minnie.example.org/…", 2
        )
    if origin.scheme not in ("http", "https"):
        raise CommandError(
            f"{url} is not an http(s) URL; a CAVE token goes only to https:// addresses "
            "(or plain http:// on this machine).",
            2,
        )
    try:
        return auth.attachment_for(url)
    except InsecureTransportError:
        raise refused_over_http(origin) from None


def _fit(stream: TextIO, text: str) -> str:
    """``text`` as ``stream`` can encode it (``…`` becomes ``...`` where it cannot)."""
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        text = text.replace("…", "...").replace("✓", "+").replace("✗", "x")
        return text.encode(encoding, "replace").decode(encoding)
    except LookupError:
        pass
    return text


class Output(logging.Handler):
    """Standard output and error, colored only on a terminal and without NO_COLOR.

    While :meth:`reporting`, it is also the handler of the package's log
    warnings, and Python's warnings go through it: both as ``cave-auth: warning:`` lines.
    """

    def __init__(self, out: TextIO, err: TextIO) -> None:
        super().__init__(logging.WARNING)
        self.out = out
        self.err = err
        self._warned: set[str] = set()

    @staticmethod
    def _paint(stream: TextIO, text: str, color: str) -> str:
        tty = getattr(stream, "isatty", lambda: False)()
        return f"\x1b[{color}m{text}\x1b[0m" if tty and not os.environ.get("NO_COLOR") else text

    def say(self, text: str = "") -> None:
        print(_fit(self.out, text), file=self.out)

    def good(self, text: str) -> None:
        self.say(self._paint(self.out, text, "32"))

    def bad(self, text: str) -> None:
        self.say(self._paint(self.out, text, "31"))

    def warn(self, text: str) -> None:
        """``cave-auth: warning: text`` on standard error, once per text."""
        if text not in self._warned:
            self._warned.add(text)
            prefix = self._paint(self.err, f"{PROG}: warning:", "33")
            print(_fit(self.err, f"{prefix} {text}"), file=self.err)

    def error(self, text: str) -> None:
        prefix = self._paint(self.err, f"{PROG}: error:", "31")
        print(_fit(self.err, f"{prefix} {text}"), file=self.err)

    def emit(self, record: logging.LogRecord) -> None:
        self.warn(printable(record.getMessage()))

    def _show_warning(self, message: Warning | str, *args: Any, **kwargs: Any) -> None:
        self.warn(printable(str(message)))

    @contextmanager
    def reporting(self) -> Iterator[None]:
        """Python warnings, and the package's log warnings, as ``cave-auth: warning:`` lines."""
        logger = logging.getLogger("cave_requests_auth")
        propagate = logger.propagate
        with warnings.catch_warnings():
            warnings.simplefilter("always", CAVEAuthWarning)
            warnings.showwarning = self._show_warning
            logger.addHandler(self)
            logger.propagate = False
            try:
                yield
            finally:
                logger.removeHandler(self)
                logger.propagate = propagate
