"""Storms become incidents: grouping many failing calls into one incident per route and group."""
