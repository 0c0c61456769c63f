"""A status callback's fields, read straight from the urlencoded body (or query string).

The same parse as Werkzeug's form parser (``parse_qsl`` with blank values kept and
undecodable escapes left as sent; a body that is not UTF-8 reads as no fields), into
a plain mapping: the first value of each name for reading, every value for the
signature (``getall``, the accessor twilio's ``RequestValidator`` looks for first).
A missing name is a plain ``KeyError`` or ``None`` from ``get``, never an HTTP error.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from urllib.parse import parse_qsl

import werkzeug.urls  # noqa: F401 - registers the "werkzeug.url_quote" codec error handler


class FormFields(Mapping[str, str]):
    """Fields in the order sent; each name maps to its first value."""

    __slots__ = ("_values",)

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        values: dict[str, list[str]] = {}
        for name, value in pairs:
            if name in values:
                values[name].append(value)
            else:
                values[name] = [value]
        self._values = values

    @classmethod
    def parse(cls, data: bytes) -> FormFields:
        """Fields of an ``application/x-www-form-urlencoded`` body or a raw query string."""
        try:
            text = data.decode()
        except UnicodeDecodeError:
            return cls()
        return cls(parse_qsl(text, keep_blank_values=True, errors="werkzeug.url_quote"))

    def __getitem__(self, name: str) -> str:
        return self._values[name][0]

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        values = self._values.get(name)
        return values[0] if values else default

    def getall(self, name: str) -> list[str]:
        """Every value sent under ``name``, in order."""
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"FormFields({self._values!r})"
