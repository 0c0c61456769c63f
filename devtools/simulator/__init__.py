"""A local stand-in for Twilio: the Voice Insights Events API and Call Summary, the Calls
API's list of child legs, and signed status callbacks.

``make run``, the tests and the benchmarks use it so the whole pipeline can run
without a Twilio account. Modules:

* ``scenarios``  deterministic calls (events and faults) by scenario name
* ``state``      the simulator's in-memory state: calls, request log, global faults
* ``legs``       multi-leg scenarios: inbound to a browser agent, carrier/SIP summaries, voice agents
* ``app``        ``create_simulator_app(state)``: the Events API and the ``/_sim/`` control API
* ``calls_api``  the Calls list (``ParentCallSid``, paging) and the Call Summary
* ``server``     ``SimulatorServer``: the app on a loopback port in a daemon thread
* ``sender``     signs and posts status callbacks the way Twilio does
* ``receivers``  stand-ins for the alert receivers (Slack, webhooks)

Run it alone with ``python -m devtools.simulator --port 8010``.
"""

from __future__ import annotations

from devtools.simulator.defaults import (
    DEV_ACCOUNT_SID,
    DEV_API_KEY_SECRET,
    DEV_API_KEY_SID,
    DEV_AUTH_TOKEN,
)

__all__ = ["DEV_ACCOUNT_SID", "DEV_API_KEY_SECRET", "DEV_API_KEY_SID", "DEV_AUTH_TOKEN"]
