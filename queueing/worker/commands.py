"""RQ's commands to a worker, on VitoWorker (queueing/worker/__init__.py).

RQ's stop-job (django-rq's Stop button) and kill-horse arrive on RQ's pub/sub
thread. There is no work horse to kill here: the job is interrupted where it
runs — the main thread by a signal (single-job worker), a job thread through
its death penalty (queueing/worker/penalty.py) — and settled by the worker
like any failure: stop-job as STOPPED, never retried; kill-horse as an
ordinary failure, retried if it has attempts left (as RQ does).
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import TYPE_CHECKING, Any

from rq.command import parse_payload

from queueing.worker import penalty

if TYPE_CHECKING:
    from queueing.worker.execution import InHand

log = logging.getLogger("queueing.worker")

# RQ's stop-job and kill-horse commands arrive on the pub/sub thread; the job
# runs in the main thread, so they interrupt it with this signal.
STOP_SIGNAL = signal.SIGUSR1


class StopCommands:
    """RQ's command handling for the jobs in hand (a mixin of ExecutingWorker)."""

    name: str
    threaded: bool
    _hands: dict[str, InHand]  # by job id: every job in hand
    _stopped_job_id: str | None

    def handle_payload(self, message: dict[Any, Any]) -> None:
        """RQ's command channel; kill-horse means the jobs in hand here (there is no horse)."""
        payload = parse_payload(message)
        command = payload.get("command")
        if command == "kill-horse":  # an ordinary failure of the job(s), retried as such
            log.info("worker %s: kill-horse command: interrupting the job(s) in hand", self.name)
            for job_id in list(self._hands):
                self._interrupt(job_id, stop=False)
            return
        if command == "stop-job" and self.threaded:  # RQ's handler knows one current job only
            job_id = str(payload.get("job_id") or "")
            if not self._interrupt(job_id, stop=True):
                log.warning("worker %s: not working on job %s; stop command ignored", self.name, job_id)
            return
        super().handle_payload(message)  # type: ignore[misc]

    def get_current_job_id(self) -> str | None:
        return next(iter(list(self._hands)), None)

    def kill_horse(self, sig: signal.Signals = STOP_SIGNAL) -> None:
        """RQ's stop-job lands here (after setting ``_stopped_job_id``): interrupt that job."""
        if not self._interrupt(self._stopped_job_id or "", stop=True):
            log.info("worker %s: no job running; stop command ignored", self.name)

    def _interrupt(self, job_id: str, *, stop: bool) -> bool:
        """Raise :class:`JobStopped` in a running job, unless it has ended meanwhile;
        with ``stop`` (RQ's stop-job) it is then settled STOPPED, never retried.

        Called from the pub/sub thread. A job in the main thread is reached
        by a signal to that thread; a job in a job thread, through its
        death penalty (queueing/worker/penalty.py).
        """
        hand = self._hands.get(job_id)
        if hand is None or hand.finalizing:
            return False
        if self.threaded:
            # Marked first: the job may reach its settling before interrupt() returns.
            hand.stop_requested = hand.stop_requested or stop
            from queueing.worker.execution import JOB_STOPPED  # defined with the job's settling

            fired = penalty.interrupt(job_id, JOB_STOPPED)
            if not fired and stop:
                hand.stop_requested = False  # it had ended on its own: settled as such
            return fired
        hand.stop_requested = stop
        hand.interrupt = True
        ident = threading.main_thread().ident
        assert ident is not None
        signal.pthread_kill(ident, STOP_SIGNAL)
        return True

    def _on_stop_signal(self, signum: int, frame: Any) -> None:
        hand = next(iter(list(self._hands.values())), None)
        if hand is None or hand.finalizing or not hand.interrupt:
            return  # the job ended before the signal arrived: nothing to stop
        hand.interrupt = False
        from queueing.worker.execution import JobStopped

        raise JobStopped(f"job {hand.job_id} stopped by request (RQ stop-job or kill-horse command)")
