"""The router: first match wins, continue, default, drop, unrouted; the matchers."""

from __future__ import annotations

from dataclasses import replace

import pytest

from devtools.sample_alerts import sample_alert
from service.delivery.routing import Router
from service.routing_file.parse import parse_config

ALL = ("oncall", "voice-ops", "crm", "teams")
SINKS = "sinks:\n" + "".join(f"  {name}: {{type: log}}\n" for name in ALL)


def router(routes: str, default: str = "") -> Router:
    config = parse_config(SINKS + "routes:\n" + routes + default, {})
    return Router.from_config(config, ALL)


def warning_alert():
    alert = sample_alert(issues=3)
    return replace(alert, issues=alert.issues[1:])


def test_no_routes_every_alert_to_every_sink() -> None:
    """With no routing file, every alert goes to every sink under the default route."""
    [match] = Router.from_config(None, ["slack", "webhook-a"]).route(sample_alert())
    assert match.route == "default" and match.sinks == ("slack", "webhook-a")
    assert match.storm is not None


def test_first_match_wins() -> None:
    """The first matching route takes the alert; later ones are not asked."""
    r = router("  - {match: {severity: error}, sinks: [oncall]}\n"
               "  - {match: {sdk_type: twilio-voice-js}, sinks: [teams]}\n")
    assert r.sinks(sample_alert()) == ["oncall"]


def test_continue_fans_out() -> None:
    """``continue: true`` lets the next matching routes add their sinks."""
    r = router("  - {match: {severity: error}, sinks: [oncall], continue: true}\n"
               "  - {match: {country_code: us}, sinks: [teams, oncall]}\n")
    assert [m.route for m in r.route(sample_alert())] == ["routes[0]", "routes[1]"]
    assert r.sinks(sample_alert()) == ["oncall", "teams"]


def test_unmatched_goes_to_default_and_none_is_unrouted() -> None:
    """An alert no route matches goes to default; with no default it is unrouted."""
    routes = "  - {match: {severity: error}, sinks: [oncall]}\n"
    [match] = router(routes, "default: [crm]\n").route(warning_alert())
    assert match.route == "default" and match.sinks == ("crm",)
    assert router(routes).route(warning_alert()) == []


def test_route_without_sinks_drops() -> None:
    """A route with ``sinks: []`` takes the alert and sends it nowhere (not unrouted)."""
    r = router("  - {match: {error_code: 31005}, sinks: []}\n", "default: [crm]\n")
    [match] = r.route(sample_alert())
    assert match.sinks == () and r.sinks(sample_alert()) == []


@pytest.mark.parametrize(("match", "hits"), [
    ("{severity: warning}", False),
    ("{severity: [warning, error]}", True),
    ("{issue: 'sdk_edge/connection/*'}", True),
    ("{issue: 'sdk_edge/ice*'}", False),
    ("{error_code: [31005, 31009]}", True),
    ("{edge: sdk_edge}", True),
    ("{direction: outbound-api}", True),
    ("{from: 'client:*'}", True),
    ("{to: '+44*'}", False),
    ("{account_sid: " + "AC" + "1" * 32 + "}", True),
    ("{sdk_type: twilio-voice-ios}", False),
    ("{country_code: us}", True),
    ("{severity: error, sdk_type: twilio-voice-ios}", False),
])
def test_matchers(match: str, hits: bool) -> None:
    """Each matcher key reads its part of the alert; all given keys must hold."""
    r = router(f"  - {{match: {match}, sinks: [oncall]}}\n")
    assert bool(r.route(sample_alert())) is hits


def test_default_empty_drops_everything() -> None:
    """``default: []`` with no routes drops every alert (it is not every sink)."""
    r = Router.from_config(parse_config(SINKS + "default: []\n", {}), ALL)
    [match] = r.route(sample_alert())
    assert match.route == "default" and match.sinks == ()


def test_file_without_routes_or_default_sends_everywhere() -> None:
    """A file with only sinks sends every alert to every sink, with the file's storm."""
    r = Router.from_config(parse_config(SINKS + "storm: off\n", {}), ALL)
    [match] = r.route(sample_alert())
    assert match.sinks == ALL and match.storm is None
