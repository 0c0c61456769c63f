"""Digests: one summary per day (or hour) for a sink, instead of a message per alert.

A sink with ``digest: {every: day, at: "08:00", tz: Europe/Dublin}`` (or ``every: hour``,
``at: ":15"``) takes its alerts and incident events into per-period counters in Redis
(``sending.DigestingSink``: its ``send`` records, it posts nothing). Once a period has
ended, ``sending.send_due`` builds the ``Digest`` (calls analysed, alerts by issue, by
agent and by country, incidents, the worst calls) and sends it through the sink's own
``send_digest``, exactly once per sink and period across every worker and restart: the
period's message id goes through the delivery ledger (a lease while sending, then
"delivered" for a week). A period in which nothing happened is marked done and sends
nothing.

- ``periods``: the ``digest:`` option, and the periods it makes on the wall clock of
  ``tz`` (zoneinfo), so "08:00 Europe/Dublin" stays 08:00 across daylight-saving changes;
- ``store``: the counters in Redis; calls analysed are counted deployment-wide in
  15-minute buckets (every time zone's offset is a multiple of 15 minutes);
- ``sending``: what is due, sending it once, and the sink wrapper that counts;
- ``content``: what a digest says, for every sink type's renderer.
"""
