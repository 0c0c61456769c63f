"""``service.http.headers_by`` with a session other than the worker's: the exchange in a
helper thread, without a thread per request."""

from __future__ import annotations

import threading
import time

import pytest

from service.http import AnswerTooSlow, headers_by


def test_consecutive_exchanges_reuse_one_helper_thread() -> None:
    """Fifty exchanges one after another start one helper thread at most: an idle helper
    (one left by an earlier exchange, or the one the first started) runs the next."""
    ran_in: list[threading.Thread] = []
    before = {thread for thread in threading.enumerate() if thread.name == "http-deadline"}

    def send(n: int) -> int:
        ran_in.append(threading.current_thread())
        return n

    answers = [headers_by(5.0, lambda n=n: send(n)) for n in range(50)]  # type: ignore[misc]
    assert answers == list(range(50))
    assert len(set(ran_in) - before) <= 1
    assert threading.current_thread() not in ran_in


def test_a_hanging_exchange_holds_its_own_thread_not_the_next_request() -> None:
    """Past its deadline a hanging send is left to its own timeouts; the next request gets
    another helper at once and its answer; the late answer is closed when it comes."""
    release = threading.Event()
    closed = threading.Event()

    class Late:
        def close(self) -> None:
            closed.set()

    def hang() -> Late:
        release.wait(10)
        return Late()

    started = time.monotonic()
    with pytest.raises(AnswerTooSlow):
        headers_by(0.2, hang)  # type: ignore[arg-type]
    assert headers_by(5.0, lambda: "next") == "next"  # type: ignore[arg-type,comparison-overlap]
    assert time.monotonic() - started < 5.0
    release.set()
    assert closed.wait(5.0)


def test_an_error_in_the_send_reaches_the_caller() -> None:
    def fail() -> None:
        raise ConnectionError("refused")

    with pytest.raises(ConnectionError, match="refused"):
        headers_by(5.0, fail)  # type: ignore[arg-type]
