"""The HTTP session a worker process shares: requests' ``Session``, with a short way through
for the exchanges callwatch makes for every call (an Insights page, a sink's POST).

Why: ``Session.request`` prepares every request through requests' general machinery
(merging the session's settings, re-parsing and re-quoting the URL, cookie jars, hooks,
looking up the connection pool by a normalised key, redirect handling) before urllib3 sends
it. In a worker that was about a sixth of the CPU an alerting call costs
(``bench/e2e.py``, profiled), several times what urllib3's own send costs. For a request
this session can send exactly as requests would, :class:`LeanSession` hands it to the
same urllib3 pool requests would have used, with the same headers, body, timeouts and
answer, and turns urllib3's errors into the same requests exceptions. Anything else (a
proxy, cookies, hooks, a redirect to follow, a URL requests would re-quote, custom
authentication, a mounted adapter of another kind) takes requests' own way, unchanged.

Its pools' connections end an exchange by the deadline ``service.http.headers_by`` sets
(``service.http_deadline``); a request that takes requests' way under a deadline runs in
a helper thread bounded by it.

The differences on purpose: this session keeps no cookies, on either way (a cookie an
API's load balancer sets is not sent back; callwatch's peers are APIs that do not need
them), and the short way leaves a redirect's body to the caller's capped read, where
requests reads it whole, unbounded, to prepare a redirect it will not follow.
"""

from __future__ import annotations

import http.cookiejar
import re
from collections.abc import Callable, Mapping
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.auth import _basic_auth_str
from requests.exceptions import ConnectTimeout, InvalidHeader, ProxyError, ReadTimeout, RetryError, SSLError
from requests.models import RequestEncodingMixin
from requests.structures import CaseInsensitiveDict
from requests.utils import check_header_validity, get_encoding_from_headers
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ClosedPoolError,
    ConnectTimeoutError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    ResponseError,
)
from urllib3.exceptions import InvalidHeader as Urllib3InvalidHeader
from urllib3.exceptions import ProxyError as Urllib3ProxyError
from urllib3.exceptions import SSLError as Urllib3SSLError
from urllib3.util import Timeout

from service.http_deadline import (
    BoundedHTTPConnection,
    BoundedHTTPSConnection,
    current_deadline,
    reading_by,
    run_by,
    time_left,
)

#: Variables through which requests reads proxies and .netrc from the environment on
#: every request (``Session.merge_environment_settings``, ``get_netrc_auth``).
_REQUESTS_PER_REQUEST = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "NETRC")
#: The CA bundle variables requests reads on every request, in its order of preference.
_CA_BUNDLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")

#: ``scheme://host[:port]`` and the rest, for URLs requests would send unchanged: no user
#: info, no fragment, only characters requests' re-quoting (``requote_uri``) leaves as they
#: are, no percent sign (an escape it might rewrite) and no dot segment (urllib3 removes them).
_PLAIN_URL = re.compile(
    r"(https?)://([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(?::(\d{1,5}))?"
    r"(/[A-Za-z0-9\-._~!$&'()*+,/:;=?@\[\]]*)?\Z")


def http_session(environ: Mapping[str, str]) -> requests.Session:
    """The process's one HTTP session. When the environment sets no proxy and no .netrc,
    requests does not read the environment again per request and the short way of
    :class:`LeanSession` is open; a CA bundle the environment names
    (``REQUESTS_CA_BUNDLE``, else ``CURL_CA_BUNDLE``) becomes the session's, which is what
    requests would have verified with on each request."""
    session = LeanSession()
    names = {name.lower() for name in environ}
    if names & {name.lower() for name in _REQUESTS_PER_REQUEST}:
        return session
    session.trust_env = False
    bundle = next((environ[name] for name in _CA_BUNDLES if environ.get(name)), None)
    if bundle:
        session.verify = bundle
    return session


#: Origins whose pools a session keeps (Insights, the sinks, a heartbeat URL: a handful).
_POOLS = 64


class _BoundedHTTPPool(HTTPConnectionPool):
    ConnectionCls = BoundedHTTPConnection


class _BoundedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = BoundedHTTPSConnection


class _LeanAdapter(HTTPAdapter):
    """requests' adapter, whose pools' connections end an exchange by its deadline
    (``service.http_deadline``)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _BoundedHTTPPool,
                                                   "https": _BoundedHTTPSPool}


class LeanSession(requests.Session):
    """A ``requests.Session`` that sends a plain request straight to urllib3's pool."""

    def __init__(self) -> None:
        super().__init__()
        self.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        # Pools enough that requests' adapter never closes one the short way keeps using (it
        # keeps 10 by default and closes the one it looked up longest ago).
        for prefix in ("https://", "http://"):
            self.mount(prefix, _LeanAdapter(pool_connections=_POOLS))
        #: Pools by (scheme, host, port, verify): the adapter's own, looked up once.
        self._pools: dict[tuple[str, str, int | None, object], HTTPConnectionPool] = {}

    def request(self, method: str, url: Any, params: Any = None, data: Any = None,  # type: ignore[override]
                headers: Any = None, cookies: Any = None, files: Any = None, auth: Any = None,
                timeout: Any = None, allow_redirects: bool = True, proxies: Any = None,
                hooks: Any = None, stream: bool | None = None, verify: Any = None,
                cert: Any = None, json: Any = None) -> requests.Response:
        match = _PLAIN_URL.match(url) if isinstance(url, str) else None
        plain = (match is not None and "/." not in url[match.end(2):] and not url.endswith("?")
                 and match.group(2) == match.group(2).lower() and self._plain()
                 and stream and not allow_redirects
                 and not (cookies or files or hooks or proxies)
                 and json is None and verify is None and cert is None
                 and (data is None or isinstance(data, bytes))
                 and (params is None or isinstance(params, dict))
                 and (auth is None or (isinstance(auth, tuple) and len(auth) == 2))
                 and (timeout is None or isinstance(timeout, (int, float, tuple))))
        adapter = self.get_adapter(url) if plain else None
        if match is None or type(adapter) is not _LeanAdapter:
            return self._requests_way(lambda: super(LeanSession, self).request(
                method, url, params=params, data=data, headers=headers, cookies=cookies,
                files=files, auth=auth, timeout=timeout, allow_redirects=allow_redirects,
                proxies=proxies, hooks=hooks, stream=stream, verify=verify, cert=cert, json=json))
        return self._send(adapter, method.upper(), url, match, params, data, headers, auth, timeout)

    @staticmethod
    def _requests_way(send: Callable[[], requests.Response]) -> requests.Response:
        """requests' own way. Within ``reading_by``, in a helper thread the caller stops
        waiting for at the deadline, where the session's own pools still read the answer
        by the deadline (a proxy's do not: ``read_capped`` looks at its deadline between
        reads, so a body through a proxy can overrun it by one read timeout)."""
        deadline = current_deadline()
        if deadline is None:
            return send()

        def bounded() -> requests.Response:
            with reading_by(deadline):
                return send()

        return run_by(time_left(deadline), bounded)

    def _plain(self) -> bool:
        """Nothing session-wide that requests would add to a request."""
        return (not self.trust_env and not self.proxies and not self.auth and not self.params
                and self.cert is None and not any(self.hooks.values()) and not self.cookies)

    def _send(self, adapter: _LeanAdapter, method: str, url: str, match: re.Match[str],
              params: dict[str, Any] | None, data: bytes | None, headers: Any,
              auth: tuple[str, str] | None, timeout: Any) -> requests.Response:
        scheme, host, port_text, path = match.groups()
        port = int(port_text) if port_text else None
        target = path or "/"
        if params:
            encoded = RequestEncodingMixin._encode_params(params)
            if encoded:
                target += ("&" if "?" in target else "?") + encoded
                url += ("&" if "?" in url else "?") + encoded
        sent: CaseInsensitiveDict[str] = CaseInsensitiveDict(self.headers)
        if headers:
            sent.update(headers)
            for name in [name for name, value in sent.items() if value is None]:
                del sent[name]
        for header in sent.items():
            check_header_validity(header)
        if auth is not None:
            sent["Authorization"] = _basic_auth_str(*auth)
        if data is not None:
            sent["Content-Length"] = str(len(data))
        elif method not in ("GET", "HEAD") and "Content-Length" not in sent:
            sent["Content-Length"] = "0"
        connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        deadline = current_deadline()
        if deadline is not None:  # no wait longer than the time left
            left = time_left(deadline)
            connect, read = (left if t is None else min(t, left) for t in (connect, read))
        timeouts = Timeout(connect=connect, read=read)
        for attempt in (1, 2):
            pool = self._pool(adapter, scheme, host, port)  # a bad CA bundle: OSError, as requests
            try:
                answer = pool.urlopen(
                    method, target, body=data, headers=sent, redirect=False,
                    assert_same_host=False, preload_content=False, decode_content=False,
                    retries=adapter.max_retries, timeout=timeouts, chunked=False)
                break
            except ClosedPoolError as error:
                # The adapter closed the pool (it keeps a few origins): nothing was sent.
                self._pools.pop((scheme, host, port, self.verify), None)
                if attempt == 2:
                    raise requests.ConnectionError(error) from error
            except Exception as error:
                mapped = _as_requests_error(error)
                if mapped is error:
                    raise
                raise mapped from error
        response = requests.Response()
        response.status_code = answer.status
        response.headers = CaseInsensitiveDict(answer.headers)
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = answer
        response.reason = answer.reason  # type: ignore[assignment]  # requests: str | None
        response.url = url
        response.connection = adapter
        return response

    def _pool(self, adapter: _LeanAdapter, scheme: str, host: str,
              port: int | None) -> HTTPConnectionPool:
        """The pool requests would send to (``get_connection_with_tls_context``, and its
        ``cert_verify``), looked up once per origin and CA setting."""
        key = (scheme, host, port, self.verify)
        pool = self._pools.get(key)
        if pool is None:
            origin = f"{scheme}://{host}" + (f":{port}" if port else "") + "/"
            request = requests.PreparedRequest()
            request.prepare(method="GET", url=origin)
            pool = adapter.get_connection_with_tls_context(request, self.verify)
            adapter.cert_verify(pool, origin, self.verify, None)
            self._pools[key] = pool
        return pool

    def close(self) -> None:
        self._pools.clear()
        super().close()


#: urllib3's errors and the requests exceptions ``HTTPAdapter.send`` raises for them,
#: whether raised themselves or as the reason of a ``MaxRetryError``.
_ErrorMap = tuple[tuple[type[Exception], type[requests.RequestException]], ...]
_EITHER_WAY: _ErrorMap = ((Urllib3ProxyError, ProxyError), (Urllib3SSLError, SSLError))
_AS_REASON: _ErrorMap = ((ResponseError, RetryError), *_EITHER_WAY)
_RAISED: _ErrorMap = (*_EITHER_WAY, (ReadTimeoutError, ReadTimeout),
                     (Urllib3InvalidHeader, InvalidHeader))


def _as_requests_error(error: Exception) -> Exception:
    """The requests exception ``HTTPAdapter.send`` raises for a urllib3 error (the same
    mapping); any other error is returned as it is."""
    if isinstance(error, (ProtocolError, OSError)):
        return requests.ConnectionError(error)
    if isinstance(error, MaxRetryError):
        reason = error.reason
        if isinstance(reason, ConnectTimeoutError) and not isinstance(reason, NewConnectionError):
            return ConnectTimeout(error)
        for theirs, ours in _AS_REASON:
            if isinstance(reason, theirs):
                return ours(error)
        return requests.ConnectionError(error)
    for theirs, ours in _RAISED:
        if isinstance(error, theirs):
            return ours(error)
    return error
