"""The worker's HTTP session still honours proxies and CA bundles from the environment."""

from __future__ import annotations

from service.http_session import http_session

URL = "https://hooks.example.com/services/x"


def _settings(environ: dict[str, str], **request: object) -> dict[str, object]:
    """What requests sends a request to ``URL`` with, given the worker's environment."""
    session = http_session(environ)
    return session.merge_environment_settings(  # type: ignore[no-any-return]
        URL, {}, None, request.get("verify"), None)


def test_a_proxy_in_the_environment_is_still_read_by_requests() -> None:
    """With a proxy variable (any case) or NETRC set, requests keeps reading the environment
    on each request, as it does by default."""
    assert http_session({"HTTPS_PROXY": "http://proxy:3128"}).trust_env
    assert http_session({"no_proxy": "localhost"}).trust_env
    assert http_session({"NETRC": "/run/secrets/netrc"}).trust_env


def test_a_ca_bundle_in_the_environment_is_what_requests_verify_with() -> None:
    """REQUESTS_CA_BUNDLE, else CURL_CA_BUNDLE, verifies every request, as requests would
    read it per request; a request's own ``verify`` still wins."""
    both = {"REQUESTS_CA_BUNDLE": "/etc/ssl/corp.pem", "CURL_CA_BUNDLE": "/etc/ssl/curl.pem"}
    assert _settings(both)["verify"] == "/etc/ssl/corp.pem"
    assert _settings({"CURL_CA_BUNDLE": "/etc/ssl/curl.pem"})["verify"] == "/etc/ssl/curl.pem"
    assert _settings(both, verify=False)["verify"] is False
    assert _settings({"PATH": "/usr/bin"})["verify"] is True
    assert _settings(both)["proxies"] == {}
