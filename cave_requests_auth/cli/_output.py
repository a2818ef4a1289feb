"""What the command prints: standard output and error, warnings, and the token prompt."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

from ..errors import CAVEAuthWarning
from ..text import printable

if TYPE_CHECKING:
    from collections.abc import Iterator

PROG = "cave-auth"
MAX_INPUT = 64 * 1024
"""Characters of standard input read for a token; more is no token."""


class CommandError(Exception):
    """A refusal of the command: one sentence for standard error, and an exit status."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


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


class Output:
    """Standard output and error, colored only on a terminal and without NO_COLOR."""

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self.out = out
        self.err = err
        self.prompting = False
        """Whether the cursor is after a prompt (an error then starts a new line)."""
        self._warned: set[str] = set()

    @staticmethod
    def _color(stream: TextIO, text: str, code: str) -> str:
        tty = getattr(stream, "isatty", lambda: False)()
        if not tty or os.environ.get("NO_COLOR"):
            return text
        return f"\x1b[{code}m{text}\x1b[0m"

    def _print(self, stream: TextIO, text: str) -> None:
        print(_fit(stream, text), file=stream)

    def say(self, text: str = "") -> None:
        self._print(self.out, text)

    def good(self, text: str) -> None:
        self._print(self.out, self._color(self.out, text, "32"))

    def bad(self, text: str) -> None:
        self._print(self.out, self._color(self.out, text, "31"))

    def warn(self, text: str) -> None:
        """``cave-auth: warning: text`` on standard error, once per text."""
        if text in self._warned:
            return
        self._warned.add(text)
        self._print(self.err, f"{self._color(self.err, f'{PROG}: warning:', '33')} {text}")

    def error(self, text: str) -> None:
        if self.prompting:  # the cursor is after "Token: "
            self.prompting = False
            self._print(self.err, "")
        self._print(self.err, f"{self._color(self.err, f'{PROG}: error:', '31')} {text}")

    def _show_warning(
        self,
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        self.warn(printable(str(message)))

    @contextmanager
    def reporting(self) -> Iterator[None]:
        """Python warnings, and the package's log warnings, as ``cave-auth: warning:`` lines."""
        logger = logging.getLogger("cave_requests_auth")
        handler = _WarningHandler(self)
        propagate = logger.propagate
        with warnings.catch_warnings():
            warnings.simplefilter("always", CAVEAuthWarning)
            warnings.showwarning = self._show_warning
            logger.addHandler(handler)
            logger.propagate = False
            try:
                yield
            finally:
                logger.removeHandler(handler)
                logger.propagate = propagate


class _WarningHandler(logging.Handler):
    def __init__(self, output: Output) -> None:
        super().__init__(logging.WARNING)
        self.output = output

    def emit(self, record: logging.LogRecord) -> None:
        self.output.warn(printable(record.getMessage()))


def read_token(io: Output, prompt: str = "Token: ") -> tuple[str, str]:
    """A pasted token and where it was read: hidden input on a terminal, else standard input.

    Standard input must hold one line (surrounding blank lines aside).

    Raises:
        CommandError: no standard input, not text, too long, or several lines.
        KeyboardInterrupt, EOFError: at the prompt (``io.prompting`` stays set).
    """
    stdin: Any = sys.stdin
    if stdin is None:
        raise CommandError(
            "there is no standard input to read the token from; give it as an argument "
            f"(`{PROG} save TOKEN`) or on standard input."
        )
    if stdin.isatty():
        import getpass

        io.prompting = True
        value = getpass.getpass(prompt)
        io.prompting = False
        return value, "the terminal"
    try:
        text = str(stdin.read(MAX_INPUT + 1))
    except UnicodeDecodeError:
        raise CommandError(
            f"standard input is not text in {stdin.encoding}; give the token alone, as text."
        ) from None
    if len(text) > MAX_INPUT:
        raise CommandError(
            f"standard input holds more than {MAX_INPUT} characters: that is no token; "
            "give the token alone."
        )
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) > 1:
        raise CommandError(
            f"standard input has {len(lines)} lines; give the token alone, on one line "
            "(nothing was saved)."
        )
    return text, "standard input"
