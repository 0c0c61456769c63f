"""The simulator's Events API answers as Twilio's OpenAPI description (ListEvent) says."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema
import pytest
import requests

from devtools.simulator.scenarios import SCENARIOS
from devtools.simulator.server import SimulatorServer

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
SPEC_PATH = SHARED / "data" / "twilio_insights_v1.json"
EVENTS_PATH = "/v1/Voice/{CallSid}/Events"

# Options that let each fault scenario answer 200, so its pages can be checked.
PASSABLE: dict[str, dict[str, Any]] = {
    "late-events": {"ready_after_s": 0},
    "rate-limited": {"failures": 0},
    "server-errors": {"failures": 0},
    "slow": {"delay_s": 0},
}
ANSWERING = [name for name in SCENARIOS if name != "advanced-features-off"]


def _openapi_to_jsonschema(node: Any, components: dict[str, Any]) -> Any:
    """Inline ``$ref``s and turn OpenAPI 3.0 ``nullable: true`` into JSON Schema types."""
    if isinstance(node, list):
        return [_openapi_to_jsonschema(item, components) for item in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    nullable = node.pop("nullable", False)
    ref = node.pop("$ref", None)
    if ref is not None:
        target = copy.deepcopy(components[ref.removeprefix("#/components/schemas/")])
        node = {**node, **target}
    node = {key: _openapi_to_jsonschema(value, components) for key, value in node.items()}
    if not nullable:
        return node
    if "type" not in node:
        return node  # free-form and nullable: anything goes
    node["type"] = [node["type"], "null"]
    if "enum" in node:
        node["enum"] = [*node["enum"], None]
    return node


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    if not SPEC_PATH.exists():
        pytest.skip(f"Twilio's OpenAPI description is not at {SPEC_PATH} "
                    "(CI puts shared/ beside the clone)")
    loaded: dict[str, Any] = json.loads(SPEC_PATH.read_text())
    return loaded


@pytest.fixture(scope="module")
def list_event(spec: dict[str, Any]) -> dict[str, Any]:
    """ListEvent's 200 response as plain JSON Schema."""
    operation = spec["paths"][EVENTS_PATH]["get"]
    media = operation["responses"]["200"]["content"]["application/json"]
    schemas = spec["components"]["schemas"]
    converted: dict[str, Any] = _openapi_to_jsonschema(media["schema"], schemas)
    jsonschema.Draft202012Validator.check_schema(converted)
    return converted


def get(sim: SimulatorServer, call_sid: str, **params: Any) -> requests.Response:
    return requests.get(f"{sim.url}/v1/Voice/{call_sid}/Events", params=params,
                        auth=(sim.account_sid, sim.auth_token), timeout=5)


def walk(sim: SimulatorServer, call_sid: str, **params: Any) -> list[dict[str, Any]]:
    """Every page, following next_page_url from the first."""
    pages = [get(sim, call_sid, **params).json()]
    while pages[-1]["meta"]["next_page_url"]:
        response = requests.get(pages[-1]["meta"]["next_page_url"],
                                auth=(sim.account_sid, sim.auth_token), timeout=5)
        assert response.status_code == 200
        pages.append(response.json())
    return pages


def assert_own_url(sim: SimulatorServer, url: str, call_sid: str) -> None:
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == sim.url
    assert parts.path == f"/v1/Voice/{call_sid}/Events"


def test_converter_accepts_the_specs_own_examples(spec: dict[str, Any],
                                                  list_event: dict[str, Any]) -> None:
    """The spec's examples (null edges and levels included) validate: the conversion is right."""
    media = spec["paths"][EVENTS_PATH]["get"]["responses"]["200"]["content"]["application/json"]
    for example in media["examples"].values():
        jsonschema.validate(example["value"], list_event)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"events": [{"level": "LOUD"}]}, list_event)


@pytest.mark.parametrize("scenario", ANSWERING)
def test_every_scenario_page_matches_list_event(simulator: SimulatorServer,
                                                list_event: dict[str, Any], scenario: str) -> None:
    """Every page of every scenario, on each edge, validates and links within the simulator."""
    sid = simulator.add_call(scenario, **PASSABLE.get(scenario, {}))
    size = 1000 if scenario == "many-events" else 7
    for edge in ("sdk_edge", "client_edge"):
        pages = walk(simulator, sid, Edge=edge, PageSize=size)
        for number, body in enumerate(pages):
            jsonschema.validate(body, list_event)
            meta = body["meta"]
            assert set(meta) == {"page", "page_size", "first_page_url", "previous_page_url",
                                 "next_page_url", "key", "url"}
            assert (meta["page"], meta["page_size"], meta["key"]) == (number, size, "events")
            for name in ("first_page_url", "url", "next_page_url", "previous_page_url"):
                if meta[name] is not None:
                    assert_own_url(simulator, meta[name], sid)
            assert {event["edge"] for event in body["events"]} <= {edge}
            assert all(event["call_sid"] == sid for event in body["events"])


def test_advanced_features_off_body(simulator: SimulatorServer) -> None:
    """advanced-features-off answers 401 with Twilio's legacy error body, code 17007."""
    sid = simulator.add_call("advanced-features-off")
    response = get(simulator, sid)
    assert response.status_code == 401
    assert response.json() == {"code": 17007, "status": 401,
                               "message": "Voice Insights Advanced Features not enabled",
                               "more_info": "https://www.twilio.com/docs/errors/17007"}


@pytest.mark.parametrize("size", ["0", "1001", "-1", "ten", ""])
def test_page_size_out_of_bounds_is_400(simulator: SimulatorServer, size: str) -> None:
    """PageSize outside 1..1000 answers 400 with a Twilio error body."""
    sid = simulator.add_call("clean")
    response = get(simulator, sid, PageSize=size)
    assert response.status_code == 400
    body = response.json()
    assert (body["code"], body["status"]) == (20001, 400)
    assert "PageSize" in body["message"] and body["more_info"].endswith("/20001")


@pytest.mark.parametrize(("size", "expected"), [("1", 1), ("1000", 1000), (None, 50)])
def test_page_size_bounds_and_default(simulator: SimulatorServer, size: str | None,
                                      expected: int) -> None:
    """PageSize 1 and 1000 are accepted and 50 is the default."""
    sid = simulator.add_call("many-events", count=1200)
    params = {"PageSize": size} if size else {}
    body = get(simulator, sid, **params).json()
    assert body["meta"]["page_size"] == expected
    assert len(body["events"]) == expected


def test_page_and_page_token_paging_agree(simulator: SimulatorServer) -> None:
    """Walking next_page_url, asking by Page, and going back by previous_page_url agree."""
    sid = simulator.add_call("warnings-cleared")
    everything = get(simulator, sid, PageSize=1000).json()["events"]
    pages = walk(simulator, sid, PageSize=5)
    assert [event for body in pages for event in body["events"]] == everything
    assert len(pages) == -(-len(everything) // 5)
    assert pages[0]["meta"]["previous_page_url"] is None
    assert pages[-1]["meta"]["next_page_url"] is None
    for number, body in enumerate(pages):
        assert get(simulator, sid, PageSize=5, Page=number).json()["events"] == body["events"]
        query = parse_qs(urlsplit(body["meta"]["url"]).query)
        assert query == {"PageSize": ["5"], "Page": [str(number)]}
        if number:
            back = requests.get(body["meta"]["previous_page_url"],
                                auth=(simulator.account_sid, simulator.auth_token), timeout=5)
            assert back.json()["events"] == pages[number - 1]["events"]
            assert "PageToken" in parse_qs(urlsplit(body["meta"]["previous_page_url"]).query)
    first = parse_qs(urlsplit(pages[3]["meta"]["first_page_url"]).query)
    assert first == {"PageSize": ["5"], "Page": ["0"]}


def test_page_beyond_the_end_is_empty(simulator: SimulatorServer) -> None:
    """A Page past the last event is an empty page with no next page."""
    sid = simulator.add_call("clean")
    body = get(simulator, sid, PageSize=50, Page=9).json()
    assert body["events"] == [] and body["meta"]["next_page_url"] is None


@pytest.mark.parametrize("params",
                         [{"PageToken": "nonsense"}, {"Page": "-1"}, {"Edge": "moon_edge"}])
def test_bad_page_token_page_or_edge_is_400(simulator: SimulatorServer,
                                            params: dict[str, str]) -> None:
    """An unreadable PageToken, a negative Page or an unknown Edge answers 400."""
    sid = simulator.add_call("clean")
    response = get(simulator, sid, **params)
    assert response.status_code == 400
    assert response.json()["code"] == 20001


def test_edge_filter(simulator: SimulatorServer) -> None:
    """Edge= returns only that edge's events; an edge with no events is an empty list."""
    sid = simulator.add_call("sdk-error")
    client_edge = get(simulator, sid, Edge="client_edge").json()["events"]
    assert client_edge and {e["edge"] for e in client_edge} == {"client_edge"}
    assert get(simulator, sid, Edge="carrier_edge").json()["events"] == []
    links = get(simulator, sid, Edge="client_edge", PageSize=1).json()["meta"]
    assert parse_qs(urlsplit(links["next_page_url"]).query)["Edge"] == ["client_edge"]


@pytest.mark.parametrize(
    ("call_type", "default_edge"),
    [("client", "sdk_edge"), ("carrier", "carrier_edge"), ("sip", "sip_edge"),
     ("trunking_originating", "carrier_edge"), ("trunking_terminating", "sip_edge")],
)
def test_default_edge_by_call_type(simulator: SimulatorServer, call_type: str,
                                   default_edge: str) -> None:
    """Without Edge the call type's default edge is returned (reference 3.1's table)."""
    sid = simulator.add_call("clean", call_type=call_type)
    events = get(simulator, sid).json()["events"]
    assert events and {e["edge"] for e in events} == {default_edge}


def test_unknown_and_malformed_call_sids_are_404(simulator: SimulatorServer) -> None:
    """An unknown CallSid and a malformed one both answer 404 with code 20404."""
    for sid in ("CA" + "0" * 32, "CA123"):
        response = get(simulator, sid)
        assert response.status_code == 404
        assert response.json()["code"] == 20404


@pytest.mark.parametrize("auth", [None, ("AC" + "f" * 32, "x"), ("SKnope", "x")])
def test_missing_or_wrong_credentials_are_401(simulator: SimulatorServer,
                                              auth: tuple[str, str] | None) -> None:
    """No or wrong Basic credentials answer 401, code 20003, with a Basic challenge."""
    sid = simulator.add_call("clean")
    response = requests.get(f"{simulator.url}/v1/Voice/{sid}/Events", auth=auth, timeout=5)
    assert response.status_code == 401
    assert response.json()["code"] == 20003
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_corpus_pages_match_list_event(list_event: dict[str, Any]) -> None:
    """Every corpus call's page (tests/data/corpus, without its expectations) is a valid
    ListEvent answer, so the corpus is shaped as Insights serves events."""
    corpus = Path(__file__).resolve().parents[1] / "data" / "corpus"
    files = sorted(corpus.glob("*.json"))
    assert len(files) >= 10
    validator = jsonschema.Draft202012Validator(list_event)
    for path in files:
        doc = json.loads(path.read_text())
        page = {"meta": doc["meta"], "events": doc["events"]}
        errors = [error.message for error in validator.iter_errors(page)]
        assert errors == [], path.name
