"""What the routes share: the body limit and the app's context (``app.extensions["callwatch"]``)."""

from __future__ import annotations

from dataclasses import dataclass

import redis as redis_lib

from service.intake import Intake
from service.metrics import Metrics, QueueDepths
from service.settings import Settings
from service.web.signature import AccountSignatures

MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class WebContext:
    """What the routes need, kept in ``app.extensions["callwatch"]``."""

    settings: Settings
    redis: redis_lib.Redis
    signatures: AccountSignatures | None
    metrics: Metrics
    intake: Intake
    #: The job queue's depths for ``/metrics`` (the worker edge's); none: not shown.
    queue_depths: QueueDepths | None = None
    #: The configured sinks' names, for ``/metrics``' per-sink series.
    sink_names: tuple[str, ...] = ()
    #: The routing file's route names and ``default``, for ``/metrics``' per-route series.
    route_names: tuple[str, ...] = ("default",)
    #: The accounts whose callbacks are accepted (TWILIO_ACCOUNT_SID and TWILIO_ACCOUNTS).
    account_sids: frozenset[str] = frozenset()
    #: This process's configuration fingerprint (``service.roster``), for ``callwatch_config_info``.
    config_fingerprint: str = ""
