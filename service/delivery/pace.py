"""At most one send per interval to a rate-limited receiver, across every process.

Slack takes about one message a second per webhook. The pace keeps, in Redis, the
earliest time the next message may go, reserved atomically by Lua scripts so the
limit holds across every worker process. A caller that must wait is told how long
and reschedules; nothing sleeps.

A send that comes back at its booked slot and finds the turn taken (the scheduler ran
jobs late and they bunched, or a receiver's pause moved the line) has *missed* its turn.
It joins the sink's line of missed sends (``take_turn``), in the order they missed, and
the next of that line waits for the next turn in place, where nobody else can take it.
So no send loses its turn again and again to later bookings (issue 19: one alert was
re-paced seven times over 18 s). A free turn while the next of the line is not waiting
for it (it is coming back through the scheduler) goes to another member of the line who
asks, so that no turn is wasted, but never to a send outside the line; the next of the
line keeps its place and waits for the following turn. A member of the line that stops
coming back (its worker died) drops out after ``MISSED_GRACE_S`` past when it was told
to come back.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from redis import Redis

from service import keys
from service.redis_scripts import script

#: A member of the line of missed sends that has not come back this long after it was
#: told to is taken out of the line (its worker died; it joins again at the end if it
#: comes back).
MISSED_GRACE_S = 10.0

# Reserve the next send slot: 0 when free now (and take it), else the wait.
# Numbers travel as strings because Redis truncates Lua numbers to integers.
_RESERVE = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local next_free = tonumber(redis.call('GET', KEYS[1]) or '0')
if next_free > now then
  return tostring(next_free - now)
end
redis.call('SET', KEYS[1], tostring(now + interval), 'PX', math.ceil(interval * 1000) + 1000)
return '0'
"""

# Book the next free send slot: slots are ``interval`` apart, in the order asked.
_BOOK = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local booked = tonumber(redis.call('GET', KEYS[1]) or '0')
local slot = math.max(now, booked)
local ttl = math.ceil((slot - now + interval) * 1000) + 1000
redis.call('SET', KEYS[1], tostring(slot + interval), 'PX', ttl)
return tostring(slot - now)
"""

# The turn, for a member of the sink's line of missed sends, or for a caller that joins it.
# KEYS: next free time, the line (a sorted set by when each missed), ARGV: now, interval,
# member, prefix of the members' "still coming back" keys, grace s.
# Returns {wait, place}: wait '0' = the turn is taken now; else the seconds until the next
# free turn, and the caller's place in the line (0: next).
_TAKE_TURN = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local member, prefix = ARGV[3], ARGV[4]
local next_free = tonumber(redis.call('GET', KEYS[1]) or '0')
while true do
  local head = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
  if head == nil or head == member or redis.call('EXISTS', prefix .. head) == 1 then break end
  redis.call('ZREM', KEYS[2], head)
end
local place = redis.call('ZRANK', KEYS[2], member)
local head = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
-- A free turn goes to the head of the line; while the head is not here (it is coming back
-- through the scheduler), to another member of the line who asks, so the turn is not
-- wasted. A send not in the line joins it: later sends never go before missed ones.
local head_here = head ~= nil and head ~= member and redis.call('GET', prefix .. head) == 'here'
local lined = redis.call('ZCARD', KEYS[2]) > 0
if next_free <= now and (not lined or place == 0 or (place and not head_here)) then
  redis.call('SET', KEYS[1], tostring(now + interval), 'PX', math.ceil(interval * 1000) + 1000)
  if place then
    redis.call('ZREM', KEYS[2], member)
    redis.call('DEL', prefix .. member)
  end
  return {'0', 0}
end
if not place then
  redis.call('ZADD', KEYS[2], now, member)
  place = redis.call('ZCARD', KEYS[2]) - 1
end
local until_free = math.max(next_free - now, 0)
local wait = math.max(until_free, place * interval)
-- The next of the line waiting here keeps the turn only while it waits: a second past its
-- turn, a dead waiter (its worker killed in its sleep) drops out and frees the line.
local here = (place == 0 and until_free <= tonumber(ARGV[6]))
local alive_s = here and (until_free + 1) or (wait + tonumber(ARGV[5]))
redis.call('SET', prefix .. member, here and 'here' or 'back', 'PX', math.ceil(alive_s * 1000))
redis.call('PEXPIRE', KEYS[2], math.ceil((wait + tonumber(ARGV[5])) * 1000) + 60000)
return {tostring(until_free), place}
"""

# Push a key's next free time to at least ARGV[1] (the receiver said "not before").
_PAUSE = """
local until_ = tonumber(ARGV[1])
local ttl = math.ceil(tonumber(ARGV[2]) * 1000) + 1000
for _, key in ipairs(KEYS) do
  local current = tonumber(redis.call('GET', key) or '0')
  if until_ > current then
    redis.call('SET', key, tostring(until_), 'PX', ttl)
  end
end
return 1
"""


class Pace:
    """At most one send per ``interval_s`` per key, across every process.

    Two steps keep a burst orderly. ``book`` hands each waiting alert its own slot,
    ``interval_s`` after the previous one, so a burst of 200 alerts is spread over
    200 slots and each delivery job is rescheduled once, to its slot, instead of
    every job waking each second to compete. ``reserve`` is the check at send time
    (the scheduler can run a job late, bunching slots): it takes the send turn when
    the last send was at least ``interval_s`` ago, else says how long to wait.
    """

    def __init__(self, redis: Redis, *, interval_s: float = 1.0,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._interval_s = interval_s
        self._clock = clock
        #: How a caller waits the last fraction of a second for its turn (tests pass a fake).
        self.sleep = sleep
        self._reserve = script(redis, _RESERVE)
        self._book = script(redis, _BOOK)
        self._pause = script(redis, _PAUSE)
        self._take_turn = script(redis, _TAKE_TURN)

    @property
    def interval_s(self) -> float:
        return self._interval_s

    def book(self, key: str) -> float:
        """Take the next free slot for ``key``; seconds until it (0.0: now)."""
        return float(self._book(keys=[keys.pace_book(key)], args=self._args()))

    def reserve(self, key: str) -> float:
        """0.0 if the caller may send now (the turn is now taken), else seconds to wait."""
        return float(self._reserve(keys=[keys.pace(key)], args=self._args()))

    def take_turn(self, key: str, member: str, *, waits_up_to: float = 0.0) -> tuple[float, int]:
        """Take the send turn now if it is free and the head of the line of missed sends is
        not waiting for it: ``(0.0, 0)``. Otherwise ``member`` keeps (or joins, at the end)
        that line: ``(seconds until the next free turn, its place; 0 = next)``. A head whose
        turn is at most ``waits_up_to`` away is taken to wait for it in place, and the turn
        is kept for it."""
        wait, place = self._take_turn(
            keys=[keys.pace(key), keys.pace_missed(key)],
            args=[*self._args(), member, keys.pace_missed_member_prefix(key),
                  repr(MISSED_GRACE_S), repr(float(waits_up_to))])
        return float(wait), int(place)

    def pause(self, key: str, seconds: float) -> None:
        """The receiver said wait (Slack's 429): nothing for ``key`` goes out before then.

        Both the send turn and the booking line move, so alerts already booked inside
        the window wait too, and new ones line up after it.
        """
        now = float(self._clock())
        self._pause(keys=[keys.pace(key), keys.pace_book(key)],
                    args=[repr(now + seconds), repr(float(seconds))])

    def _args(self) -> list[str]:
        return [repr(float(self._clock())), repr(float(self._interval_s))]
