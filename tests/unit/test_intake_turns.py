"""The worker processes of a container take turns at the intake: one pass a second in all."""

from __future__ import annotations

import pytest

from workers.intake_mover import MOVE_EVERY_S, Turn


def _turn_seconds(turn: Turn, start: float, seconds: int) -> list[float]:
    """The wall-clock times ``turn`` passes at over ``seconds`` from ``start``."""
    times, now = [], start + turn.wait_s(start)
    while now < start + seconds:
        times.append(now)
        now += turn.wait_s(now)
    return times


def test_four_processes_share_every_second_once() -> None:
    """With 4 processes each second belongs to exactly one of them, whatever the start."""
    start = 1_765_000_000.37
    passes = sorted(t for index in range(4) for t in _turn_seconds(Turn(index, 4), start, 40))
    assert passes == [float(s) for s in range(1_765_000_001, 1_765_000_041)]
    assert all(int(t) % 4 == 2 for t in _turn_seconds(Turn(2, 4), start, 40))


def test_one_process_passes_every_second_on_the_second() -> None:
    assert Turn().wait_s(100.25) == pytest.approx(0.75)
    assert Turn().wait_s(100.0) == pytest.approx(MOVE_EVERY_S)  # never 0: no busy loop


def test_a_containers_phase_moves_its_turns_within_the_second() -> None:
    """Two containers at different phases pass at different instants of the same second."""
    assert Turn(0, 1, phase=0.4).wait_s(100.25) == pytest.approx(0.15)
    assert Turn(0, 1, phase=0.4).wait_s(100.5) == pytest.approx(0.9)
    passes = _turn_seconds(Turn(1, 2, phase=0.4), 1_000.0, 10)
    assert passes == pytest.approx([1_001.4, 1_003.4, 1_005.4, 1_007.4, 1_009.4])


def test_a_process_outside_its_container_is_refused() -> None:
    with pytest.raises(ValueError, match="process 4 of 4"):
        Turn(4, 4)
