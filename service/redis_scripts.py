"""Lua scripts registered once per Redis client.

redis-py's ``register_script`` hashes the script (SHA-1) and encodes it every time it is
called, and the stores that run scripts (the intake, the delivery ledger, the pace, the
incident store...) are built for each job: a worker paid that for every script on every
alerting call (about 2 % of its CPU in ``bench/e2e.py``). :func:`script` registers a text
once per client and hands the same ``Script`` back after.
"""

from __future__ import annotations

from typing import Any

from redis.commands.core import Script

#: The client's attribute that holds its scripts: they live and go with the client (a
#: ``Script`` refers to its client, so a table outside the client would keep it alive).
_ATTRIBUTE = "_callwatch_scripts"


def script(redis: Any, text: str) -> Script:
    """``redis.register_script(text)``, once per client."""
    scripts: dict[str, Script] = vars(redis).setdefault(_ATTRIBUTE, {})
    found = scripts.get(text)
    if found is None:
        found = scripts.setdefault(text, redis.register_script(text))
    return found
