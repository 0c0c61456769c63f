"""schemathesis against ``service/web/openapi.yaml``: the app answers as its description says.

Two runs over every operation, in process through WSGI, on a private Redis:

- unsigned, as any client on the internet would call it: every callback is refused
  (403, or 413/415 before the signature is read), with the documented error body;
- signed by a stand-in Twilio (a WSGI middleware that signs whatever arrives with
  the test account's token), so the generated fields reach validation and the
  400/403/204 answers are exercised too.

Generation is seeded and deterministic so a run is repeatable; example counts stay
small so the file takes seconds.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator
from importlib import resources
from typing import Any

import pytest
import redis as redis_lib
import schemathesis
import yaml
from flask import Flask
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from werkzeug.wrappers import Request

from devtools.web_client import ACCOUNT_SID, CALLBACK_PATH, PUBLIC_BASE, make_settings, sign
from service.web import MAX_BODY_BYTES, create_app

CONFIG = {
    "seed": 20261127,
    "generation": {"mode": "all", "max-examples": 15, "deterministic": True, "database": "none"},
    "phases": {"stateful": {"enabled": False}},
    # Valid SIDs drawn from the pattern are another account's (403); bias AccountSid
    # towards the test account's so signed cases also reach 204.
    "dictionaries": {"our-account": {"values": [ACCOUNT_SID]}},
    "parameters": {
        "body.AccountSid": {"dictionary": "our-account", "probability": 0.6},
        "query.AccountSid": {"dictionary": "our-account", "probability": 0.6},
    },
}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]


def spec_text() -> str:
    return resources.files("service.web").joinpath("openapi.yaml").read_text(encoding="utf-8")


def load_schema(app: Callable[..., Iterable[bytes]]) -> Any:
    schema = schemathesis.openapi.from_dict(yaml.safe_load(spec_text()),
                                            config=schemathesis.Config.from_dict(CONFIG))
    schema.app = app
    return schema


class TwilioSigner:
    """WSGI middleware standing in for Twilio: re-signs each request that carries a signature.

    The body is buffered and parsed the way the app parses it, then the
    ``X-Twilio-Signature`` the client sent is replaced by one over
    ``PUBLIC_BASE_URL`` + raw path + raw query (+ the form for a POST). Requests
    without the header stay unsigned, so "missing signature" is still exercised;
    bodies over the limit are passed on untouched.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if "HTTP_X_TWILIO_SIGNATURE" not in environ or length > MAX_BODY_BYTES:
            return self.app(environ, start_response)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        probe = Request(dict(environ, **{"wsgi.input": io.BytesIO(body)}))
        query = environ.get("QUERY_STRING", "")
        url = PUBLIC_BASE + environ.get("PATH_INFO", "") + (f"?{query}" if query else "")
        environ["HTTP_X_TWILIO_SIGNATURE"] = sign(url, probe.form if probe.method == "POST" else {})
        return self.app(environ, start_response)


class AppUnderTest:
    """The WSGI callable schemathesis calls; a fixture points it at each test's fresh app.

    schemathesis builds its pytest items from a schema loaded at import time, before
    any fixture exists, so the app (which needs the test's Redis) is bound late.
    """

    def __init__(self) -> None:
        self.target: Callable[..., Iterable[bytes]] | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        assert self.target is not None, "the app fixture did not run"
        return self.target(environ, start_response)


UNSIGNED_APP = AppUnderTest()
SIGNED_APP = AppUnderTest()
unsigned = load_schema(UNSIGNED_APP)
signed = load_schema(SIGNED_APP)


@pytest.fixture(autouse=True)
def app(redis: redis_lib.Redis, redis_server) -> Iterator[Flask]:
    """A fresh app on the test's empty Redis, served to both schemas (one of them signed)."""
    app = create_app(make_settings(redis_server.url), redis=redis)
    UNSIGNED_APP.target, SIGNED_APP.target = app, TwilioSigner(app)
    yield app
    UNSIGNED_APP.target = SIGNED_APP.target = None


def test_description_is_valid_openapi() -> None:
    """openapi.yaml ships in the package and is a valid OpenAPI 3.0 document."""
    schema = schemathesis.openapi.from_dict(yaml.safe_load(spec_text()))
    schema.validate()
    operations = [result.ok() for result in schema.get_all_operations()
                  if isinstance(result, Ok)]
    assert {op.label for op in operations} == {
        "POST /twilio/status-callback", "GET /twilio/status-callback",
        "GET /healthz", "GET /readyz", "GET /metrics"}


@unsigned.parametrize()
def test_unsigned_requests_conform(case: Any) -> None:
    """Unsigned requests: no 5xx, documented statuses and bodies; callbacks always refused."""
    response = case.call_and_validate(checks=CHECKS)
    if case.path == CALLBACK_PATH and response.request.method in ("GET", "HEAD", "POST"):
        assert response.status_code in (403, 413, 415), response.text


@signed.parametrize()
def test_signed_requests_conform(case: Any) -> None:
    """Signed requests reach field validation: answers still match the description."""
    case.call_and_validate(checks=[*CHECKS, negative_data_rejection])


def test_description_covers_every_route(app: Flask) -> None:
    """Every route and method the app serves is described, and nothing else is."""
    served = {(rule.rule, method) for rule in app.url_map.iter_rules()
              if rule.endpoint != "static" for method in rule.methods or ()
              if method not in ("HEAD", "OPTIONS")}
    described = {(path, method.upper()) for path, item in yaml.safe_load(spec_text())["paths"].items()
                 for method in item}
    assert served == described


def test_unsupported_method_names_allowed_ones(app: Flask) -> None:
    """A method the route does not take answers 405 with an Allow header (RFC 9110 15.5.6)."""
    response = app.test_client().put(CALLBACK_PATH)
    assert response.status_code == 405
    assert response.get_json()["error"] == "http_error"
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
