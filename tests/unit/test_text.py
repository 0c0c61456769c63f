"""Text printed in CLI tables cannot forge a row, move the cursor or reverse itself."""

from __future__ import annotations

import pytest

from service.text import printable


@pytest.mark.parametrize(("raw", "shown"), [
    ("deploy window", "deploy window"),
    ("café → ok", "café → ok"),
    ("line\nsil_forged  2099-01-01  me", "line\\nsil_forged  2099-01-01  me"),
    ("\x1b[2J\x1b[31mred", "\\x1b[2J\\x1b[31mred"),
    ("tab\tcr\r", "tab\\tcr\\r"),
    ("abc\u202edcba", "abc\\u202edcba"),
    ("zero\u200bwidth\u2028sep\x85c1", "zero\\u200bwidth\\u2028sep\\x85c1"),
])
def test_non_printable_characters_are_escaped_visibly(raw: str, shown: str) -> None:
    """Controls, separators and format characters appear as escapes; the rest as written."""
    assert printable(raw) == shown
    assert printable(raw).isprintable()


def test_non_text_values_are_shown_as_text() -> None:
    """A number or None prints as str() does."""
    assert printable(31005) == "31005" and printable(None) == "None"
