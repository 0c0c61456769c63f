"""Text from others, made safe to print in a terminal table (``callwatch`` CLI output).

A silence's comment, an author, a route's matcher or a sink's name can come from a
person, Slack or Twilio. Printed as is, a newline forges a row of ``silence list``, an
ANSI escape moves the cursor or recolours the screen, and a bidirectional override
(U+202E) shows text reversed. ``printable`` escapes every such character visibly
(``\\n``, ``\\x1b``, ``\\u202e``), so what the table shows is what is stored, on one line.
"""

from __future__ import annotations

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(value: object) -> str:
    """``value`` as text whose every non-printable character (C0 and C1 controls, line and
    paragraph separators, format characters such as bidi overrides and zero-width ones) is
    escaped. (A literal backslash is left as is: it can make text look escaped, never
    move the cursor or start a line.)"""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(_escape(char) for char in text)


def _escape(char: str) -> str:
    if char.isprintable():
        return char
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
