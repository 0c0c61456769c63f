"""Delivery: the ledger, the pace, routing, silences, incidents and the delivery step.

What every part of delivery shares lives here.
"""

#: How long work for a sink this process does not know (a delivery, a pager group to
#: resolve) waits for a process that knows it: old and new workers overlap in a rollout,
#: or a worker started without the routing file. Then it is failed (or dropped).
UNKNOWN_SINK_WAIT_S = 3600.0
