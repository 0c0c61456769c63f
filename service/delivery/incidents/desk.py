"""Per alert and route: send it, or fold it into its group's incident.

``IncidentDesk`` is what the analysis step asks once per analysed call (``analysed``,
the ratio's denominator) and once per alert (``deliveries``): for each route that took
the alert it observes the alert in the route's group (``IncidentStore.observe``),
and answers with the deliveries to schedule. A folded alert still goes to the
route's ``webhook`` sinks (they get every ``call.alert``); the alert that opened an
incident also brings the ``opened`` event for every sink of the route. ``checks``
then lists the incident timers the worker must schedule (incident id, due epoch).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from service.analysis.alert import Alert
from service.decisions import Delivery
from service.delivery.incidents.events import build_event
from service.delivery.incidents.grouping import Facets, group_id, group_of
from service.delivery.incidents.pager_groups import (
    MESSAGE_FIELD,
    PagerGroup,
    PagerGroups,
    pager_dedup_key,
)
from service.delivery.incidents.policy import DEFAULT_STORM, RatioPolicy, StormPolicy
from service.delivery.incidents.store import IncidentStore, RidingRead, RouteGroup, Snapshot
from service.delivery.incidents.timer import next_check

log = structlog.get_logger(__name__)

#: Kinds of sink that get every per-call alert, even one folded into an incident (a
#: digest sink only counts them, so its digest counts a storm's calls too).
UNFOLDED_KINDS = frozenset({"webhook", "digest"})
#: A timer this late (s) is taken as lost and scheduled again by the next folded alert.
TIMER_GRACE_S = 60.0


class RouteLike(Protocol):
    """What the desk needs of a router's ``RouteMatch``."""

    @property
    def route(self) -> str: ...
    @property
    def sinks(self) -> tuple[str, ...]: ...
    @property
    def storm(self) -> StormPolicy | None: ...
    @property
    def ratio(self) -> RatioPolicy | None: ...


class Counter(Protocol):
    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None: ...


@dataclass
class IncidentDesk:
    """Decides, per alert and route, what is sent one by one and what is folded."""

    store: IncidentStore
    route: Callable[[Alert], Sequence[RouteLike]]
    #: The ``kind`` of a sink by name (``chat``, ``pager``, ``email``, ``webhook``, ``log``,
    #: ``digest``).
    kind_of: Callable[[str], str]
    metrics: Counter | None = None
    clock: Callable[[], float] = time.time
    #: Incident timers to schedule: (incident id, due epoch second).
    checks: list[tuple[str, float]] = field(default_factory=list)
    #: What the analysis reads after an alert's count (``IncidentStore.count_analysed``).
    reads: Sequence[RidingRead] = ()

    def analysed(self, alert: Alert | None = None) -> None:
        """Count one analysed call (alert or not): the ratio's denominator. With an
        ``alert``, ``reads`` (the silences it is screened against) ride on the same round trip."""
        self.store.count_analysed(self.clock(), reads=self.reads if alert is not None else ())
        self._inc("callwatch_calls_analysed")

    def deliveries(self, alert: Alert, envelope: dict[str, Any]) -> tuple[Delivery, ...]:
        """The deliveries for ``alert``: its own to each sink that takes it, and the events."""
        now = self.clock()
        sinks: dict[str, None] = {}
        events: list[Delivery] = []
        pagers: dict[str, PagerGroup] = {}
        for match in self.route(alert):
            if match.storm is None and match.ratio is None:
                sinks.update(dict.fromkeys(match.sinks))
                self._pager_groups(alert, match, pagers)
                continue
            group = group_of(alert, (match.storm or DEFAULT_STORM).group_by)
            where = RouteGroup(match.route, group, group_id(match.route, group), match.sinks,
                               match.storm, match.ratio)
            seen = self.store.observe(where, alert.alert_id, Facets.of(alert), now)
            if seen.decision == "send" or seen.incident_id is None:
                sinks.update(dict.fromkeys(match.sinks))
                self._pager_groups(alert, match, pagers)
                continue
            sinks.update(dict.fromkeys(s for s in match.sinks if self._kind(s) in UNFOLDED_KINDS))
            log.info("alert_folded", alert_id=alert.alert_id, incident_id=seen.incident_id,
                     route=match.route, counted=seen.counted)
            if seen.counted:
                self._inc("callwatch_alerts_folded", route=match.route)
            if seen.opener:
                events += self._opened(seen.incident_id, seen.opened, match.sinks, now,
                                       new=seen.decision == "opened")
            elif seen.check_due and now > seen.check_due + TIMER_GRACE_S:
                self.checks.append((seen.incident_id, float(int(now) + 1)))
        own = tuple(Delivery(sink, envelope) if sink not in pagers else
                    Delivery(sink, self._touch(sink, pagers[sink], envelope, now)) for sink in sinks)
        return own + tuple(events)

    # -- PagerDuty groups (``service.delivery.incidents.pager_groups``) --------------------

    def _pager_groups(self, alert: Alert, match: RouteLike, pagers: dict[str, PagerGroup]) -> None:
        """The alert's pager group on this route, for each of its pager sinks (first route wins)."""
        policy = match.storm or match.ratio or DEFAULT_STORM
        group_by = (match.storm or DEFAULT_STORM).group_by
        for sink in match.sinks:
            if sink not in pagers and self._kind(sink) == "pager":
                pagers[sink] = PagerGroup(pager_dedup_key(match.route, group_of(alert, group_by)),
                                          match.route, float(policy.resolve_after_s))

    def _touch(self, sink: str, group: PagerGroup, envelope: dict[str, Any],
               now: float) -> dict[str, Any]:
        """The group's quiet time starts again; the delivery carries the group's key."""
        PagerGroups(self.store.redis).touch(sink, group, now)
        return {**envelope, MESSAGE_FIELD: group.to_json()}

    def _opened(self, incident_id: str, snapshot: Snapshot | None, sinks: Sequence[str],
                now: float, *, new: bool) -> list[Delivery]:
        """The ``opened`` event's deliveries (built once, kept), and the incident's first timer."""
        message = self.store.saved_event(incident_id, 1)
        snapshot = snapshot or self.store.read(incident_id)
        if message is None and snapshot is not None:
            if snapshot.calls_since_last == 0:
                snapshot = Snapshot(snapshot.fields, snapshot.samples, int(snapshot.number("calls")))
            event = build_event("opened", 1, snapshot, datetime.fromtimestamp(now, UTC))
            message = self.store.save_event(incident_id, 1, event.to_message())
        if snapshot is not None:
            due = next_check(snapshot, now)
            self.store.set_check_due(incident_id, due)
            self.checks.append((incident_id, due))
            if new:
                fields = snapshot.fields
                log.info("incident_opened", incident_id=incident_id, route=fields.get("route"),
                         group=fields.get("group"), trigger=fields.get("trigger"),
                         calls=int(snapshot.number("calls")))
                self._inc("callwatch_incidents", route=fields.get("route", ""),
                          trigger=fields.get("trigger", ""), event="opened")
        if message is None:
            return []
        return [Delivery(sink, message) for sink in sinks]

    def _kind(self, sink: str) -> str:
        try:
            return self.kind_of(sink)
        except Exception:  # a sink gone from the configuration: fold to be safe
            return "chat"

    def _inc(self, name: str, **labels: str) -> None:
        if self.metrics is not None:
            self.metrics.inc(name, 1.0, **labels)
