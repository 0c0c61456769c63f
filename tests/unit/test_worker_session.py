"""The worker's HTTP session still honours proxies and CA bundles from the environment."""

from __future__ import annotations

from workers.context import http_session


def test_a_proxy_or_ca_bundle_in_the_environment_is_still_honoured() -> None:
    """With HTTPS_PROXY (any case) or REQUESTS_CA_BUNDLE set, requests keeps reading the
    environment on each request; with none of them, it does not have to."""
    assert http_session({"HTTPS_PROXY": "http://proxy:3128"}).trust_env
    assert http_session({"no_proxy": "localhost"}).trust_env
    assert http_session({"REQUESTS_CA_BUNDLE": "/etc/ssl/corp.pem"}).trust_env
    assert not http_session({"PATH": "/usr/bin", "REDIS_URL": "redis://x"}).trust_env
