"""text.py: what is quoted from elsewhere is printable, masked, then cut."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cave_requests_auth.text import MAX_QUOTE, MIN_SECRET_RUN, printable, quote, redact
from helpers import OTHER_TOKEN, VALID_TOKEN


def leaks(text: str, secret: str) -> bool:
    """Whether ``text`` holds MIN_SECRET_RUN characters of ``secret`` in a row."""
    runs = len(secret) - MIN_SECRET_RUN + 1
    return any(secret[i : i + MIN_SECRET_RUN] in text for i in range(runs))


class TestRedact:
    @pytest.mark.parametrize(
        "text",
        [
            VALID_TOKEN,
            f"token={VALID_TOKEN}; again {VALID_TOKEN}",
            f"half: {VALID_TOKEN[:16]}",
            f"tail {VALID_TOKEN[-9:]}",
            f"{VALID_TOKEN[3:12]}|{VALID_TOKEN[20:30]}",
            f"{OTHER_TOKEN[:10]} and {VALID_TOKEN[8:20]}",
        ],
    )
    def test_no_run_of_a_secret_survives(self, text: str) -> None:
        masked = redact(text, [VALID_TOKEN, OTHER_TOKEN])
        assert not leaks(masked, VALID_TOKEN)
        assert not leaks(masked, OTHER_TOKEN)

    def test_shorter_runs_and_other_text_are_kept(self) -> None:
        text = f"see {VALID_TOKEN[: MIN_SECRET_RUN - 1]} at https://example.org/"
        assert redact(text, [VALID_TOKEN]) == text

    @given(st.text(max_size=60), st.integers(0, 24), st.integers(8, 32), st.text(max_size=60))
    def test_any_slice_in_any_text(self, before: str, start: int, size: int, after: str) -> None:
        piece = VALID_TOKEN[start : start + size]
        masked = redact(before + piece + after, [VALID_TOKEN])
        assert not leaks(masked, VALID_TOKEN) or leaks(before + after, VALID_TOKEN)


class TestQuote:
    def test_masked_before_cut(self) -> None:
        quoted = quote("x" * (MAX_QUOTE - 10) + VALID_TOKEN, [VALID_TOKEN])
        assert not leaks(quoted, VALID_TOKEN)
        assert len(quoted) <= MAX_QUOTE + 1

    @pytest.mark.parametrize(
        "control", ["\x1b]52;c;ZXZpbA==\x07", "\r", "\n2026-01-01 INFO forged", "\x00", "\u202e"]
    )
    def test_no_control_character_is_quoted(self, control: str) -> None:
        quoted = quote(f"denied{control}here")
        assert quoted.isprintable()
        assert quoted.startswith("denied")

    def test_printable_folds_white_space(self) -> None:
        assert printable("a\r\n\tb") == "a b"
