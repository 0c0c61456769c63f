"""Every Redis key callwatch itself writes, in one place (RQ's own keys stay in ``workers``).

All keys start with ``callwatch:`` so an operator can tell them from RQ's (``rq:``)
and count them with ``SCAN MATCH callwatch:*``.
"""

from __future__ import annotations

#: Calls waiting for their analysis, scored by when it is due (``service.intake``).
INTAKE = "callwatch:intake"
#: Counters and histograms of every process (``service.metrics``), one hash per metric.
METRICS_PREFIX = "callwatch:metrics:"


def call(call_sid: str) -> str:
    """A call's callback fields, kept a day: its presence makes a repeated callback a no-op."""
    return f"callwatch:call:{call_sid}"


def delivered(sink: str, message_id: str) -> str:
    """Ledger entry: ``sink`` took this alert (or incident event)."""
    return f"callwatch:delivered:{sink}:{message_id}"


def lease(sink: str, message_id: str) -> str:
    """Short lease held while one worker sends this message to this sink."""
    return f"callwatch:lease:{sink}:{message_id}"


def pace(sink: str) -> str:
    """The earliest time the next message may go to ``sink``."""
    return f"callwatch:pace:{sink}"


def pace_book(sink: str) -> str:
    """The end of the line of booked send slots for ``sink``."""
    return f"callwatch:pace-book:{sink}"


def pace_missed(sink: str) -> str:
    """Sends to ``sink`` that missed their turn, in the order they missed (a sorted set)."""
    return f"callwatch:pace-missed:{sink}"


def pace_missed_member_prefix(sink: str) -> str:
    """Prefix of the keys that say a member of ``pace_missed(sink)`` is still coming back."""
    return f"callwatch:pace-missed-back:{sink}:"


def worker_alive(worker_name: str) -> str:
    """A worker's liveness beat (``workers.rq_adaptations.liveness``)."""
    return f"callwatch:worker-alive:{worker_name}"


def worker_dead(worker_name: str) -> str:
    """Set when a worker was found killed (``workers.rq_adaptations.death_watch``): its
    delivery leases may be taken over (``service.delivery.ledger``)."""
    return f"callwatch:worker-dead:{worker_name}"


def sink_slots(sink: str) -> str:
    """Deliveries to a slow ``sink`` running now, by deadline (``workers.rq_adaptations.sink_lines``)."""
    return f"callwatch:sink-slots:{sink}"


def sink_line(sink: str) -> str:
    """Deliveries to a slow ``sink`` waiting, in order, for a slot (``workers.rq_adaptations.sink_lines``)."""
    return f"callwatch:sink-line:{sink}"


#: The sinks that have a line of waiting deliveries (a set of names).
SINK_LINES = "callwatch:sink-lines"


def sink_slow(sink: str) -> str:
    """Present while ``sink`` is slow: its recent sends timed out or took over 5 s."""
    return f"callwatch:sink-slow:{sink}"


#: Active silences (``service.delivery.silences``): a sorted set of silences scored by
#: when each ends; the key itself expires with its last silence.
SILENCES = "callwatch:silences"


#: Every incident, scored by when it opened (``callwatch incidents list``).
INCIDENTS = "callwatch:incidents"
#: Calls analysed (alert or not), per 10-second bucket: the ratio incidents' denominator.
CALLS_ANALYSED = "callwatch:ratio:analysed"
#: The prefix of one incident's hash; the incident id follows (Lua scripts build it).
INCIDENT_PREFIX = "callwatch:incident:"


def incident(incident_id: str) -> str:
    """One incident: its group, trigger, status, times and counts (a hash)."""
    return f"{INCIDENT_PREFIX}{incident_id}"


def incident_samples(incident_id: str) -> str:
    """The first CallSids folded into an incident (a list of at most 20)."""
    return f"{INCIDENT_PREFIX}{incident_id}:samples"


def incident_event(incident_id: str, sequence: int) -> str:
    """Incident event ``sequence`` as first built (the JSON every sink gets)."""
    return f"{INCIDENT_PREFIX}{incident_id}:event:{sequence}"


def incident_slot(route: str, group_id: str) -> str:
    """The id of the incident open for this route and group (absent: none)."""
    return f"callwatch:incident-open:{route}:{group_id}"


def storm_recent(route: str, group_id: str) -> str:
    """The alert ids of a group seen within the storm window, scored by time."""
    return f"callwatch:storm:{route}:{group_id}"


def storm_seen(route: str, alert_id: str) -> str:
    """What the storm decided for one alert on one route (``send`` or an incident id)."""
    return f"callwatch:storm-seen:{route}:{alert_id}"


def ratio_alerts(route: str, group_id: str) -> str:
    """Alerts of a group on a ratio route, per 10-second bucket: the numerator."""
    return f"callwatch:ratio:alerts:{route}:{group_id}"


def settled(sink: str, message_id: str) -> str:
    """``sink`` gave up on this incident event for good: later events need not wait for it."""
    return f"callwatch:settled:{sink}:{message_id}"


#: Worker processes by the time of their last beat (``service.roster``).
WORKERS_ALIVE = "callwatch:workers"
#: Process name -> "<config fingerprint> <time of its last beat>" (``service.roster``).
CONFIG_FINGERPRINTS = "callwatch:config-fingerprints"
#: Taken (``SET NX``, a minute) by the process that pings ``HEARTBEAT_URL`` this minute.
HEARTBEAT_PING = "callwatch:heartbeat-ping"
#: The worker process whose turn it is to run the deployment's maintenance (workers.worker).
MAINTENANCE_TURN = "callwatch:maintenance-turn"
#: The worker process whose turn it is to run RQ's registry clean-up (workers.worker).
REGISTRY_CLEANING_TURN = "callwatch:registry-cleaning-turn"
#: Held while a worker process recovers dead workers' jobs: one recovery at a time
#: (``workers.rq_adaptations.liveness.recovery_turn``).
RECOVERY_TURN = "callwatch:recovery-turn"

def slack_action(action_key: str) -> str:
    """One Slack button click already acted on (``service.delivery.slack_actions``): a
    click Slack or a person sends twice creates one silence."""
    return f"callwatch:slack-action:{action_key}"


#: Calls analysed per 15-minute bucket (a hash, kept 8 days): a digest's "calls analysed"
#: for any period and time zone (every zone's offset is a multiple of 15 minutes).
DIGEST_ANALYSED = "callwatch:digest:analysed"


def digest(sink: str, period_start: int) -> str:
    """One digest sink's counters for the period starting at ``period_start`` (epoch s)."""
    return f"callwatch:digest:{sink}:{period_start}"


#: Open PagerDuty groups (``service.delivery.incidents.pager_groups``): a sorted set of
#: ``"<sink> <grp_…>"`` scored with the epoch second their quiet time ends.
PAGER_GROUPS = "callwatch:pager_groups"
#: Sinks whose own queue (``delivery-for-<sink>``) holds deliveries for workers that know them.
SINK_QUEUES = "callwatch:sink-queues"
