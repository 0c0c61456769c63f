"""A route's storm and ratio settings (the routing file's ``storm:`` and ``ratio:``,
read by ``service.routing_file.storms``)."""

from __future__ import annotations

from dataclasses import dataclass

#: Keys ``group_by`` may name.
GROUP_KEYS = ("issue", "error_code", "category", "edge", "sdk_type", "country_code", "account_sid",
              "identity")
#: The longest ratio window: the analysed-call buckets are kept this long.
MAX_RATIO_WINDOW_S = 3600
#: Ratio counts are kept in buckets of this many seconds.
RATIO_BUCKET_S = 10


@dataclass(frozen=True)
class StormPolicy:
    """When a group reaches ``calls`` alerts within ``within_s``, an incident opens."""

    calls: int = 10
    within_s: int = 120
    group_by: tuple[str, ...] = ("issue",)
    update_every_s: int = 300
    resolve_after_s: int = 600


@dataclass(frozen=True)
class RatioPolicy:
    """An incident when ``percent`` % of the calls analysed in ``window_s`` had an alert.

    It resolves when the share stays under half of ``percent`` for ``resolve_after_s``.
    Groups are the route's storm ``group_by`` (``issue`` when the storm is off).
    """

    percent: float = 5.0
    min_calls: int = 40
    window_s: int = 600
    resolve_after_s: int = 600


#: The defaults: a route's storm when it names none, and what a check assumes for a field
#: an incident lacks (the values the store wrote when the route named none).
DEFAULT_STORM = StormPolicy()
DEFAULT_RATIO = RatioPolicy()
