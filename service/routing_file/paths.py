"""A mistake at one key path of the routing file, and the mapping check every section uses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class KeyPathError(Exception):
    """A mistake at one key path (``routes[1].match.colour``), turned into ``ConfigError``
    naming the variable by ``service.routing_file.parse``."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


def mapping(raw: Any, path: str, allowed: Sequence[str], *, prefix: str | None = None) -> dict[str, Any]:
    """``raw`` if it is a mapping holding only ``allowed`` keys."""
    if not isinstance(raw, dict):
        raise KeyPathError(path, "must be a mapping")
    base = path if prefix is None else prefix
    for key in raw:
        if key not in allowed:
            where = f"{base}.{key}" if base else str(key)
            raise KeyPathError(where, f"unknown key; use {', '.join(allowed)}")
    return raw
