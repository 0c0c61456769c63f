"""Lua scripts registered once per Redis client, and run with one ``EVALSHA`` each.

redis-py's ``register_script`` hashes the script (SHA-1) and encodes it every time it is
called, and the stores that run scripts (the intake, the delivery ledger, the pace, the
incident store...) are built for each job: a worker paid that for every script on every
alerting call (about 2 % of its CPU in ``bench/e2e.py``). :func:`script` registers a text
once per client and hands the same :class:`RegisteredScript` back after.

Running one costs no more than its ``EVALSHA``: redis-py's ``Script.__call__`` imports
and checks the client against its pipeline classes on every call (``isinstance`` against
a class whose bases are ``typing`` protocols: about 40 µs of a worker's CPU a script on
Python 3.11, near as much as the round trip itself). A script run on a pipeline goes
through redis-py's own ``Script``, which has the pipeline load it before it executes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from redis.commands.core import Script
from redis.exceptions import NoScriptError

#: The client's attribute that holds its scripts: they live and go with the client (a
#: script refers to its client, so a table outside the client would keep it alive).
_ATTRIBUTE = "_callwatch_scripts"


class RegisteredScript:
    """One Lua script on one client: called like redis-py's ``Script``
    (``keys=``, ``args=``, ``client=`` a pipeline to queue it on)."""

    def __init__(self, client: Any, text: str) -> None:
        self._script: Script = client.register_script(text)
        self.registered_client = client

    @property
    def sha(self) -> str:
        return self._script.sha

    def __call__(self, keys: Sequence[Any] | None = None, args: Iterable[Any] | None = None,
                 client: Any = None) -> Any:
        keys, args = keys or (), args or ()
        if client is not None and client is not self.registered_client:
            return self._script(keys=keys, args=args, client=client)
        runner = self.registered_client
        try:
            return runner.evalsha(self._script.sha, len(keys), *keys, *args)
        except NoScriptError:  # Redis lost its scripts (a restart, SCRIPT FLUSH): load, once more
            self._script.sha = runner.script_load(self._script.script)
            return runner.evalsha(self._script.sha, len(keys), *keys, *args)


def script(redis: Any, text: str) -> RegisteredScript:
    """``redis.register_script(text)``, once per client."""
    scripts: dict[str, RegisteredScript] = vars(redis).setdefault(_ATTRIBUTE, {})
    found = scripts.get(text)
    if found is None:
        found = scripts.setdefault(text, RegisteredScript(redis, text))
    return found


#: Delete ``KEYS[1]`` only if it still holds ``ARGV[1]`` (a lease or a turn that may have
#: expired and been taken by another): the release every holder-token lock uses.
RELEASE_IF_HELD = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
