"""Events API pages saved to files, read back for ``callwatch classify``.

A file holds one page (``{"meta": ..., "events": [...]}``), a list of pages, or a
bare list of events. Several files are the pages of one call; a page whose
``next_page_url`` names a page none of the files holds is reported, so a result
that covers only part of a call is never silent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from service.errors import InvalidInput
from service.insights.events import Event, parse_events
from service.json_files import read_json

_SHAPE = ('expected an Events API page {"meta": ..., "events": [...]}, a list of pages, '
          "or a list of events")


@dataclass(frozen=True)
class SavedPages:
    """The events of some saved files, and the next pages none of them holds."""

    events: list[Event]
    #: ``(file, next_page_url)`` for each page whose next page was not given.
    unread: list[tuple[str, str]]


def read_pages(paths: Iterable[str]) -> SavedPages:
    """Read every file (``-``: stdin); ``InvalidInput`` names the file and what is wrong."""
    events: list[Event] = []
    wanted: dict[int | str, tuple[str, str]] = {}  # the next page (number, else URL) -> where
    given: set[int | str] = set()
    for path in paths:
        data = read_json(path)
        events += parse_events(_raw_events(data, path))
        for meta in (_meta(page) for page in _pages(data)):
            number = meta.get("page")
            page_no = number if isinstance(number, int) and not isinstance(number, bool) else None
            if page_no is not None:
                given.add(page_no)
            if isinstance(meta.get("url"), str):
                given.add(meta["url"])
            if isinstance(meta.get("next_page_url"), str):
                wanted[meta["next_page_url"] if page_no is None else page_no + 1] = (
                    path, meta["next_page_url"])
    unread = [where for page, where in wanted.items() if page not in given]
    return SavedPages(events, unread)


def _meta(page: dict[str, Any]) -> dict[str, Any]:
    meta = page.get("meta")
    return meta if isinstance(meta, dict) else {}


def _pages(data: Any) -> list[dict[str, Any]]:
    """The Events API pages in a saved response (none for a bare list of events)."""
    if isinstance(data, dict):
        return [data]
    if isinstance(data, list) and data and all(isinstance(p, dict) and "events" in p
                                               for p in data):
        return list(data)
    return []


def _raw_events(data: Any, path: str) -> list[Any]:
    if isinstance(data, dict):
        return _page_events(data, path)
    if not isinstance(data, list):
        raise InvalidInput(f"{path}: {_SHAPE}")
    if not all(isinstance(item, dict) for item in data):
        raise InvalidInput(f"{path}: every item of the list must be a JSON object; {_SHAPE}")
    if data and all("events" in item for item in data):
        return [raw for page in data for raw in _page_events(page, path)]
    if any("events" in item for item in data):
        raise InvalidInput(f"{path}: a list mixing pages and events; {_SHAPE}")
    return data


def _page_events(page: dict[str, Any], path: str) -> list[Any]:
    events = page.get("events")
    if not isinstance(events, list):
        raise InvalidInput(f"{path}: no \"events\" list; {_SHAPE}")
    if not all(isinstance(item, dict) for item in events):
        raise InvalidInput(f"{path}: every event must be a JSON object")
    return events
