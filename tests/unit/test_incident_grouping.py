"""Which group an alert falls in, for each ``group_by`` key."""

from __future__ import annotations

from dataclasses import replace

from devtools.sample_alerts import sample_alert
from service.analysis.alert import Alert
from service.delivery.incidents.grouping import Facets, describe_group, group_id, group_of


def test_each_group_key_reads_the_alert() -> None:
    """issue and error_code come from the first error; the client gives SDK and country."""
    alert = sample_alert(issues=3)
    keys = ("issue", "error_code", "category", "edge", "sdk_type", "country_code", "account_sid")
    assert group_of(alert, keys) == {
        "issue": "sdk_edge/connection/error/31000", "error_code": "31005", "category": "network",
        "edge": "sdk_edge", "sdk_type": "twilio-voice-js", "country_code": "US",
        "account_sid": "AC" + "1" * 32}


def test_errors_come_first_and_missing_values_are_none() -> None:
    """A warning listed before the error does not name the group; no client: ``none``."""
    alert = sample_alert(issues=2, with_client=False)
    flipped = Alert(alert_id=alert.alert_id, created_at=alert.created_at, call=alert.call,
                    issues=tuple(reversed(alert.issues)))
    assert group_of(flipped, ("issue", "sdk_type")) == {
        "issue": "sdk_edge/connection/error/31000", "sdk_type": "none"}
    assert Facets.of(flipped).sdk == "none"


def test_group_ids_differ_by_route_and_value_and_whole_route_is_one_group() -> None:
    """The id is stable for a route and group, and differs for another route or value."""
    alert = sample_alert()
    other = replace(alert.issues[0], key="sdk_edge/connection/error/31009", error_code=31009)
    second = Alert(alert_id="alr_x", created_at=alert.created_at, call=alert.call, issues=(other,))
    assert group_id("a", group_of(alert, ("issue",))) != group_id("a", group_of(second, ("issue",)))
    assert group_id("a", group_of(alert, ())) == group_id("a", group_of(second, ()))
    assert group_id("a", {}) != group_id("b", {})
    assert describe_group({}) == "every alert of the route"
