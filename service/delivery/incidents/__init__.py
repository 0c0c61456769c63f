"""Storms become incidents: many failing calls of one route and group folded into one incident.

- ``policy``: a route's ``storm:`` and ``ratio:`` settings, and their checks;
- ``grouping``: an alert's group (``group_by``) and the facets an incident counts;
- ``store``: the state in Redis, changed only by Lua scripts;
- ``desk``: per alert and route, send it or fold it (what the analysis step asks);
- ``timer``: the incident's timer step (``updated``, ``resolved``);
- ``events``: the ``incident.*`` events and their ``webhook-id``;
- ``event_order``: an incident's events reach each sink in order;
- ``content``: what every human-facing receiver shows for an event (each sink type
  renders it in its own module);
- ``acknowledge``: "someone is on it", kept with the incident (Slack's button);
- ``pager_groups``: PagerDuty pages grouped per problem and resolved when quiet.

``callwatch incidents list`` lives in ``service.cli.incidents``.
"""
