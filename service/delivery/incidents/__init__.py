"""Storms become incidents: many failing calls of one route and group folded into one incident.

- ``policy``: a route's ``storm:`` and ``ratio:`` settings, and their checks;
- ``grouping``: an alert's group (``group_by``) and the facets an incident counts;
- ``store``: the state in Redis, changed only by Lua scripts;
- ``triage``: per alert and route, send it or fold it (what the analysis step asks);
- ``timer``: the incident's timer step (``updated``, ``resolved``);
- ``events``: the ``incident.*`` events and their ``webhook-id``;
- ``order``: an incident's events reach each sink in order;
- ``messages``: Slack, PagerDuty, Teams and e-mail renderings of an event;
- ``cli``: ``callwatch incidents list``.
"""
