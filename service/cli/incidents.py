"""``callwatch incidents list``: open and recently resolved incidents, from Redis.

Registered in ``service.cli.REGISTRARS``. Reads only ``REDIS_URL`` (and
``REDIS_TLS_VERIFY``); prints one line per incident, newest first, or ``--json``
the events' ``data`` objects.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

from redis import RedisError

from service.delivery.incidents.acknowledge import acknowledged_by
from service.delivery.incidents.events import build_event
from service.delivery.incidents.grouping import describe_group
from service.delivery.incidents.store import IncidentStore, Snapshot
from service.errors import CallwatchError, InvalidInput
from service.settings import redis_from_env
from service.text import printable


def add_commands(subparsers: Any) -> None:
    """``incidents list``."""
    incidents = subparsers.add_parser("incidents", help="storm and ratio incidents",
                                      description="Incidents: many calls failing alike, folded into one.")
    commands = incidents.add_subparsers(title="commands", metavar="COMMAND")
    listing = commands.add_parser("list", help="open and recently resolved incidents",
                                  description="Open incidents and those resolved within --hours.")
    listing.add_argument("--hours", type=float, default=24.0,
                         help="also show incidents resolved within this many hours (default 24)")
    listing.add_argument("--json", action="store_true", help="print each incident's data as JSON")
    listing.set_defaults(handler=run_list)
    incidents.set_defaults(handler=lambda args: (incidents.print_help(), 2)[1])


def run_list(args: argparse.Namespace) -> int:
    """Print the incidents; 1 when Redis cannot be read."""
    if args.hours <= 0:
        raise InvalidInput("--hours: a positive number of hours")
    client = redis_from_env(os.environ, socket_timeout=5, socket_connect_timeout=5)
    now = time.time()
    try:
        found = IncidentStore(client).recent(now - args.hours * 3600)
    except RedisError as error:
        raise CallwatchError(f"Redis could not be read ({type(error).__name__})") from None
    finally:
        client.close()
    if args.json:
        print(json.dumps([_data(s, now) for s in found], indent=2))
        return 0
    print(format_table(found, now))
    return 0


def format_table(found: list[Snapshot], now: float) -> str:
    """One line per incident: id, status, trigger, route, calls, age, who acknowledged, group."""
    if not found:
        return "no incidents"
    header = (f"{'INCIDENT':<26} {'STATUS':<9} {'TRIGGER':<8} {'ROUTE':<16} {'CALLS':>6} {'AGE':>8}  "
              f"{'ACKNOWLEDGED':<16} GROUP")
    lines = [header]
    for snap in found:
        fields = snap.fields
        group = describe_group(json.loads(fields.get("group") or "{}"))
        acked = acknowledged_by(fields) or "-"
        # The group's values (issue keys, identities, SDK names) come from Twilio and callers.
        lines.append(printable(
            f"{snap.incident_id:<26} {fields.get('status', '?'):<9} "
            f"{fields.get('trigger', '?'):<8} {fields.get('route', '?')[:16]:<16} "
            f"{int(snap.number('calls')):>6} {age(now - snap.number('opened_at', now)):>8}  "
            f"{acked[:16]:<16} {group}"))
    return "\n".join(lines)


def age(seconds: float) -> str:
    """``45s``, ``12m``, ``3h05m``, ``2d04h``."""
    s = int(max(0, seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _data(snapshot: Snapshot, now: float) -> dict[str, Any]:
    from datetime import UTC, datetime

    event = "resolved" if snapshot.fields.get("status") == "resolved" else "updated"
    return build_event(event, int(snapshot.number("seq", 1)), snapshot,
                       datetime.fromtimestamp(now, UTC)).data
