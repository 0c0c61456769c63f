"""The simulator's Calls API and Call Summary against Twilio's OpenAPI descriptions.

The Calls list is checked against ``tests/data/twilio_api_v2010_calls.json``, an extract
of ``twilio_api_v2010.json`` (ListCall's parameters and 200 schema, the call resource's
properties and status values). The Summary is checked against ``insights.v1.call.summary``
in the Insights description (skipped where that file is not beside the clone).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests

from devtools.simulator.legs import child_sid
from devtools.simulator.server import SimulatorServer
from tests.integration.test_simulator_openapi import SPEC_PATH, _openapi_to_jsonschema

EXTRACT = json.loads((Path(__file__).resolve().parents[1] / "data"
                      / "twilio_api_v2010_calls.json").read_text())
TYPES = {"string": str, "integer": int, "object": dict, "boolean": bool}


def list_calls(sim: SimulatorServer, parent: str, **params: Any) -> requests.Response:
    return requests.get(f"{sim.url}/2010-04-01/Accounts/{sim.account_sid}/Calls.json",
                        params={"ParentCallSid": parent, **params},
                        auth=(sim.account_sid, sim.auth_token), timeout=5)


def test_a_calls_page_has_the_specs_fields_and_types(simulator: SimulatorServer) -> None:
    """Each page has ListCallResponse's fields; each call exactly the call resource's
    properties, typed as the spec says, with a status from its enum."""
    parent = simulator.add_call("inbound-to-agent", children=3)
    page = list_calls(simulator, parent, PageSize=2).json()
    assert set(page) == {*EXTRACT["list_response_properties"], "calls"}
    for call in page["calls"]:
        assert set(call) == set(EXTRACT["call_properties"])
        for name, schema in EXTRACT["call_properties"].items():
            value = call[name]
            if value is None:
                assert schema.get("nullable"), name
            elif schema.get("type") in TYPES:
                assert isinstance(value, TYPES[schema["type"]]), name
        assert call["status"] in EXTRACT["call_enum_status"]
        assert call["parent_call_sid"] == parent


def test_pages_link_by_relative_uris_through_every_child(simulator: SimulatorServer) -> None:
    """next_page_uri (relative to the API host) walks every child once; the last is null."""
    parent = simulator.add_call("inbound-to-agent", children=5, events="clean")
    page = list_calls(simulator, parent, PageSize=2).json()
    seen = [c["sid"] for c in page["calls"]]
    while page["next_page_uri"]:
        assert page["next_page_uri"].startswith("/2010-04-01/Accounts/")
        page = requests.get(simulator.url + page["next_page_uri"], timeout=5,
                            auth=(simulator.account_sid, simulator.auth_token)).json()
        seen += [c["sid"] for c in page["calls"]]
    assert seen == [child_sid(parent, n) for n in range(5)]


@pytest.mark.parametrize(("params", "status"), [
    ({"PageSize": 0}, 400), ({"PageSize": 1001}, 400), ({"ParentCallSid": "CA1"}, 400),
    ({"PageToken": "nope"}, 400)])
def test_bad_list_parameters_are_refused(simulator: SimulatorServer, params: dict[str, Any],
                                         status: int) -> None:
    """Parameters outside the spec's bounds answer 400 with Twilio's error body."""
    parent = simulator.add_call("inbound-to-agent")
    response = list_calls(simulator, parent, **params)
    assert response.status_code == status and response.json()["code"] == 20001


def test_calls_need_the_accounts_own_credentials(simulator: SimulatorServer) -> None:
    """Another account's credentials get 404 for this account's list; no credentials 401."""
    other = "AC" + "4d" * 16
    simulator.add_account(other, "other-token")
    parent = simulator.add_call("inbound-to-agent")
    url = f"{simulator.url}/2010-04-01/Accounts/{simulator.account_sid}/Calls.json"
    assert requests.get(url, params={"ParentCallSid": parent}, auth=(other, "other-token"),
                        timeout=5).status_code == 404
    assert requests.get(url, params={"ParentCallSid": parent}, timeout=5).status_code == 401


def test_the_summary_validates_against_the_insights_description(
        simulator: SimulatorServer) -> None:
    """Partial and complete summaries validate against insights.v1.call.summary; a complete
    one asked for too early is 404 with Twilio's 17001."""
    if not SPEC_PATH.exists():
        pytest.skip(f"Twilio's OpenAPI description is not at {SPEC_PATH}")
    spec = json.loads(SPEC_PATH.read_text())
    media = spec["paths"]["/v1/Voice/{CallSid}/Summary"]["get"]["responses"]["200"]
    schema = _openapi_to_jsonschema(media["content"]["application/json"]["schema"],
                                    spec["components"]["schemas"])
    early = simulator.add_call("carrier-leg", summary_complete_after_s=3600)
    ready = simulator.add_call("carrier-leg", call_type="sip", tags="high_pdd")
    auth = (simulator.account_sid, simulator.auth_token)
    for sid, state in ((early, "partial"), (ready, "complete")):
        body = requests.get(f"{simulator.url}/v1/Voice/{sid}/Summary", timeout=5, auth=auth,
                            params={"ProcessingState": "partial"}).json()
        jsonschema.validate(body, schema)
        assert body["processing_state"] == state
    too_early = requests.get(f"{simulator.url}/v1/Voice/{early}/Summary", timeout=5, auth=auth)
    assert too_early.status_code == 404 and too_early.json()["code"] == 17001
