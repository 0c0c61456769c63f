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


def test_groups_read_as_words_with_the_agent_first() -> None:
    """An incident's group reads as a person says it: the code and the count, or the agent,
    the count and the problem."""
    from service.delivery.incidents.grouping import group_words

    assert group_words({"issue": "sdk_edge/connection/error/31009"}, None, 56) == "31009 on 56 calls"
    assert group_words({"identity": "bob"}, {"sdk_edge/network-quality-warning/high-jitter": 3},
                       3) == "agent bob: 3 calls with high jitter"
    assert group_words({}, {"call/failed": 2}, 2) == "2 calls of the route"


def test_identity_groups_by_the_agent_on_either_end() -> None:
    """``group_by: [identity]`` puts an agent's calls together whichever end the agent was."""
    from dataclasses import replace

    from devtools.sample_alerts import sample_alert
    from service.analysis.alert import Alert
    from service.delivery.incidents.grouping import group_of

    out = sample_alert()
    inbound = Alert(alert_id="alr_x", created_at=out.created_at,
                    call=replace(out.call, from_="+14155550123", to="client:alice"), issues=out.issues)
    phones = Alert(alert_id="alr_y", created_at=out.created_at,
                   call=replace(out.call, from_="+14155550123", to="+14155550100"), issues=out.issues)
    assert group_of(out, ("identity",)) == group_of(inbound, ("identity",)) == {"identity": "alice"}
    assert group_of(phones, ("identity",)) == {"identity": "none"}
