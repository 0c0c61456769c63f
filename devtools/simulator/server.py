"""``SimulatorServer``: the simulator app on a loopback port, served from a daemon thread.

Used by tests (port 0 picks a free port), ``make run`` and benchmarks::

    with SimulatorServer() as sim:
        call_sid = sim.add_call("sdk-error")
        client = InsightsClient(sim.url, (sim.account_sid, sim.auth_token))
        client.fetch_events(call_sid, ["sdk_edge"])
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from devtools.background_server import BackgroundServer
from devtools.simulator.app import create_simulator_app
from devtools.simulator.defaults import DEV_ACCOUNT_SID, DEV_AUTH_TOKEN
from devtools.simulator.state import SimulatorState


class SimulatorServer:
    """A threaded werkzeug server for one ``SimulatorState``; a context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *,
                 account_sid: str = DEV_ACCOUNT_SID, auth_token: str = DEV_AUTH_TOKEN,
                 api_key: tuple[str, str] | None = None,
                 state: SimulatorState | None = None, access_log: bool = False) -> None:
        self.state = state or SimulatorState(account_sid, auth_token, api_key)
        self.account_sid = self.state.account_sid
        self.auth_token = auth_token
        self.api_key = api_key
        self._http = BackgroundServer(create_simulator_app(self.state), host, port,
                                      name="twilio-simulator", access_log=access_log)

    def __repr__(self) -> str:
        try:
            return f"SimulatorServer(url={self.url!r})"
        except RuntimeError:
            return "SimulatorServer(not started)"

    @property
    def url(self) -> str:
        """``http://host:port`` of the running server (no trailing slash)."""
        return self._http.url

    def start(self) -> SimulatorServer:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (the standalone simulator)."""
        self._http.serve_forever()

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # Conveniences for in-process users (tests, make run); the same as the control API.

    def add_call(self, scenario: str, call_sid: str | None = None, **options: Any) -> str:
        """Register a call of ``scenario`` with ``options``; returns its CallSid."""
        return self.state.add_call(scenario, call_sid, options).call_sid

    def add_account(self, account_sid: str, auth_token: str) -> None:
        """Accept another account (a sub-account), or give one a new token (a rotation)."""
        self.state.add_account(account_sid, auth_token)

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The Events API requests served so far, oldest first."""
        return [r for r in self.state.requests() if r["api"] == "events"]

    def api_requests(self, api: str) -> list[dict[str, Any]]:
        """The requests served so far by one API (``events``, ``calls``, ``summary``)."""
        return [r for r in self.state.requests() if r["api"] == api]

    def set_faults(self, rate_429: float = 0.0, rate_500: float = 0.0,
                   seed: int | None = None) -> None:
        self.state.set_faults(rate_429, rate_500, seed)

    def reset(self) -> None:
        self.state.reset()
