"""RQ's command channel read in 1 s slices, so a worker's teardown never waits a minute.

What this changes in RQ, and why: RQ listens for commands (``rq:pubsub:<worker>``) in
redis-py's ``PubSubWorkerThread``, each ``get_message`` waiting up to 60 s
(``run_in_thread(sleep_time=60)``). At teardown RQ sends UNSUBSCRIBE and then calls the
thread's ``stop()``, which since redis-py 8.2 joins the thread with no deadline. When the
thread reads UNSUBSCRIBE's reply before ``stop()`` clears its flag, its next
``get_message`` waits the whole 60 s (for a subscription that will not come back; cutting
the socket would not shorten that wait) and the teardown with it: a burst worker (the
tests' drain) took a minute now and then, and a worker stopping on SIGTERM could outlast
Heroku's 30 s. Here each wait is at most :data:`READ_S` seconds, so ``stop()`` returns
about that soon (RQ's handler pauses 2 s after a connection error). A command still
arrives at once: a wait ends as soon as a message does.
"""

from __future__ import annotations

from rq.worker import BaseWorker

#: The longest one read of the command channel waits.
READ_S = 1.0


class ShortPubSubReads(BaseWorker):
    """``subscribe`` as RQ's, with reads of at most :data:`READ_S` seconds."""

    def subscribe(self) -> None:
        self.log.info("Worker %s: subscribing to channel %s", self.name,
                      self.pubsub_channel_name)
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(  # type: ignore[assignment]  # RQ: = None
            sleep_time=READ_S, daemon=True, exception_handler=self._pubsub_exception_handler)
