"""Text from elsewhere (a server, a file), made fit to print or log. No I/O.

Every message that quotes a server goes through :func:`quote`: control
characters (terminal escapes such as an OSC 52 clipboard write, ``\\r``, new
lines that forge log lines) are removed, every token sent along the way is
masked, and only then is the text cut to length, so no part of a token survives.
"""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["MASK", "MAX_QUOTE", "MIN_SECRET_RUN", "printable", "quote", "redact"]

MASK = "…"
MAX_QUOTE = 200
"""Characters of server text kept in a message."""
MIN_SECRET_RUN = 8
"""Characters of a secret in a row that are masked wherever they appear."""

_WHITE = re.compile(r"\s+")


def printable(text: str) -> str:
    """``text`` on one line, without control or format characters (``Cc``, ``Cf``, ``Cs``).

    White space of any kind becomes one space, so a newline cannot start a
    forged log line and ``\\r`` cannot overwrite a terminal line.
    """
    text = _WHITE.sub(" ", text)
    if text.isprintable():
        return text
    return "".join(
        character
        for character in text
        if character == " " or unicodedata.category(character) not in ("Cc", "Cf", "Cs", "Co")
    )


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every part of a secret masked: any run of :data:`MIN_SECRET_RUN`
    or more of its characters becomes ``…`` (a server that quotes half a token
    has still quoted too much)."""
    for secret in {s for s in secrets if s}:
        if len(secret) <= MIN_SECRET_RUN:
            text = text.replace(secret, MASK)
            continue
        if secret in text:
            text = text.replace(secret, MASK)
        grams = {secret[i : i + MIN_SECRET_RUN] for i in range(len(secret) - MIN_SECRET_RUN + 1)}
        if not any(gram in text for gram in grams):
            continue
        parts: list[str] = []
        start = i = 0
        while i <= len(text) - MIN_SECRET_RUN:
            if text[i : i + MIN_SECRET_RUN] not in grams:
                i += 1
                continue
            end = i
            while text[end : end + MIN_SECRET_RUN] in grams:
                end += 1
            parts += [text[start:i], MASK]
            start = i = end + MIN_SECRET_RUN - 1
        text = "".join([*parts, text[start:]])
    return text


def quote(text: object, secrets: Iterable[str] = (), limit: int = MAX_QUOTE) -> str:
    """Server text fit for a message: printable, secrets masked, then cut to ``limit``.

    The order matters: masking after cutting would leave all but the last
    characters of a token quoted near the end of a long text.
    """
    cleaned = redact(printable(str(text)), secrets).strip().rstrip(".")
    if len(cleaned) <= limit:
        return cleaned
    return cleaned[:limit] + MASK
