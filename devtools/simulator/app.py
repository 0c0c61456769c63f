"""``create_simulator_app(state)``: the simulated Events API plus the ``/_sim/`` control API.

The control API is not Twilio's: tests and ``make run`` use it to register calls,
read the log of Events API requests and switch on random faults. It has no auth;
the simulator is a development tool and binds to loopback.

    POST /_sim/calls     {"scenario": "...", "call_sid": optional, "options": {...}}
                         -> 201 {"call_sid": ..., "scenario": ...}; the multi-leg
                         scenarios add the leg's from/to/direction and its children
    POST /_sim/accounts  {"account_sid": "AC...", "auth_token": "..."} -> 204: accept
                         another account (or give an account a new token: a rotation)
    GET  /_sim/requests  -> {"requests": [{method, path, query, params, status, auth, call_sid}]}
    POST /_sim/faults    {"rate_429": 0.5, "rate_500": 0.1, "seed": 1} -> 200 the faults
    POST /_sim/reset     -> 204: forget calls, requests and faults
    GET  /_sim/scenarios -> {"scenarios": [...]}
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request

from devtools.simulator.calls_api import calls_api
from devtools.simulator.events_api import events_api
from devtools.simulator.legs import LEG_SCENARIOS
from devtools.simulator.scenarios import SCENARIOS
from devtools.simulator.state import SimulatorState

control_api = Blueprint("control_api", __name__, url_prefix="/_sim")


def create_simulator_app(state: SimulatorState) -> Flask:
    """A Flask app serving the simulator backed by ``state``."""
    app = Flask("devtools.simulator")
    app.extensions["simulator"] = state
    app.register_blueprint(events_api)
    app.register_blueprint(calls_api)
    app.register_blueprint(control_api)
    return app


def _state() -> SimulatorState:
    state: SimulatorState = current_app.extensions["simulator"]
    return state


def _problem(message: str, status: int = 400) -> tuple[Response, int]:
    return jsonify({"error": "invalid_request", "message": message}), status


def _json_body() -> dict[str, Any] | None:
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else None


@control_api.post("/calls")
def add_call() -> tuple[Response, int]:
    body = _json_body()
    if body is None:
        return _problem("send a JSON object: {\"scenario\": ..., \"options\": {...}}")
    scenario = body.get("scenario")
    if not isinstance(scenario, str):
        return _problem(f"scenario is required; one of {', '.join(SCENARIOS)}")
    try:
        record = _state().add_call(scenario, body.get("call_sid"), body.get("options"))
    except ValueError as exc:
        return _problem(str(exc))
    body: dict[str, Any] = {"call_sid": record.call_sid, "scenario": record.scenario}
    if record.scenario in LEG_SCENARIOS:  # the legs' callback fields, for the sender
        body.update({"from": record.leg.from_, "to": record.leg.to,
                     "direction": record.leg.direction,
                     "children": [{"call_sid": child.call_sid, "from": child.leg.from_,
                                   "to": child.leg.to, "direction": child.leg.direction}
                                  for child in record.children]})
    return jsonify(body), 201


@control_api.post("/accounts")
def add_account() -> tuple[Response | str, int]:
    body = _json_body()
    if body is None or not isinstance(body.get("auth_token"), str) or not body["auth_token"]:
        return _problem("send {\"account_sid\": \"AC...\", \"auth_token\": \"...\"}")
    try:
        _state().add_account(str(body.get("account_sid")), body["auth_token"])
    except ValueError as exc:
        return _problem(str(exc))
    return "", 204


@control_api.get("/requests")
def list_requests() -> Response:
    return jsonify({"requests": _state().requests()})


@control_api.post("/faults")
def set_faults() -> tuple[Response, int]:
    body = _json_body()
    if body is None:
        return _problem("send a JSON object: {\"rate_429\": 0.5, \"rate_500\": 0.1, \"seed\": 1}")
    unknown = set(body) - {"rate_429", "rate_500", "seed"}
    if unknown:
        return _problem(f"unknown field(s): {', '.join(sorted(unknown))}")
    try:
        faults = _state().set_faults(body.get("rate_429", 0.0), body.get("rate_500", 0.0),
                                     body.get("seed"))
    except ValueError as exc:
        return _problem(str(exc))
    return jsonify({"rate_429": faults.rate_429, "rate_500": faults.rate_500,
                    "seed": faults.seed}), 200


@control_api.post("/reset")
def reset() -> tuple[str, int]:
    _state().reset()
    return "", 204


@control_api.get("/scenarios")
def list_scenarios() -> Response:
    return jsonify({"scenarios": list(SCENARIOS)})
