"""What RQ logs about jobs: one line for an expected failure, nothing per routine job.

What this changes in RQ, and why:

* RQ's ``handle_exception`` logs every exception a job raises with its whole traceback
  (about 20 lines), before it calls the exception handlers, which therefore cannot
  quiet it. A step's ``Failed`` (``workers.jobs.StepFailed``) is expected and already
  logged by the step with its reason (``analysis_failed``, ``alert_delivery_rejected``),
  so for it the traceback is replaced by one line (``job_failed``). The job still goes
  to RQ's failed registry (``handle_job_failure`` is untouched), where ``rq requeue``
  finds it. Every other exception keeps RQ's traceback: those are real crashes.
* RQ logs three INFO lines per job (the job taken, "Job OK", how long its result is
  kept). RQ's loggers run at WARNING (:func:`rq_logging_level`) unless ``LOG_LEVEL`` is
  DEBUG; its warnings and errors, and callwatch's own lines, still show.
"""

from __future__ import annotations

import logging

import structlog
from rq.job import Job
from rq.worker import BaseWorker

from workers.jobs import StepFailed

log = structlog.get_logger(__name__)


def rq_logging_level(level: str) -> str:
    """The level for RQ's own loggers: WARNING, or DEBUG when callwatch's is DEBUG."""
    return "DEBUG" if logging.getLevelName(level.upper()) == logging.DEBUG else "WARNING"


class QuietExpectedFailures(BaseWorker):
    """RQ's exception handling, minus the traceback for a step's ``Failed``."""

    def handle_exception(self, job: Job, *exc_info: object) -> None:
        error = exc_info[1]
        if isinstance(error, StepFailed):
            log.info("job_failed", job_id=job.id, queue=job.origin, reason=error.reason)
            return
        super().handle_exception(job, *exc_info)


