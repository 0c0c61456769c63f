"""A Redis that cannot answer a ``callwatch`` command: one line and exit code 1, not a
traceback (``silence add|list|expire``, ``notify test``)."""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable

import redis as redis_lib

from service.errors import CallwatchError

Handler = Callable[[argparse.Namespace], int]


def redis_errors(handler: Handler) -> Handler:
    """``handler`` with a ``redis.RedisError`` turned into ``CallwatchError`` (exit code 1)."""
    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except redis_lib.RedisError as error:
            raise CallwatchError(f"Redis (REDIS_URL) could not answer: {type(error).__name__}"
                                 f"{tls_hint(error)}") from None
    return run


def tls_hint(error: BaseException) -> str:
    """A hint when Redis's TLS certificate was refused: Heroku's is self-signed."""
    if "certificate verify failed" not in str(error):
        return ""
    return ("; its TLS certificate is not trusted (Heroku Key-Value Store's is self-signed): "
            "set REDIS_TLS_VERIFY=false")
