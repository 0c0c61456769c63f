"""Routes that can never take an alert: the routing file's silent mistakes, as warnings.

Routes are tried in order and the first that matches wins unless it says
``continue: true``. A route with an empty ``match`` matches every alert, so when it
does not continue, every route after it, and ``default``, is dead configuration:
almost always a catch-all put first by mistake. ``callwatch config check`` prints each
warning; the file stays valid (a process starts with it), since a dead route loses no
alert.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class _Route(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def match(self) -> Any: ...

    @property
    def continue_(self) -> bool: ...


def unreachable(routes: Sequence[_Route], *, has_default: bool) -> list[str]:
    """One warning per route (and ``default``) that no alert can reach."""
    catch_all = next((index for index, route in enumerate(routes)
                      if not route.match.conditions and not route.continue_), None)
    if catch_all is None:
        return []
    cause = (f"{_label(routes[catch_all], catch_all)} matches every alert and has no "
             "`continue: true`")
    warnings = [f"{_label(route, index)} is never reached: {cause}"
                for index, route in enumerate(routes) if index > catch_all]
    if has_default:
        warnings.append(f"default is never used: {cause}")
    return warnings


def _label(route: _Route, index: int) -> str:
    where = f"routes[{index}]"
    return where if route.name == where else f"{where} ({route.name})"
