"""The master's children: how one is started (own session, nice), and the pools
and per-tick observations the master keeps about them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from queueing.supervisor.balancing import Decision
from queueing.supervisor.config import SupervisorConfig


def child_setup(niceness: int) -> None:
    """In the child, before exec: lower its priority, and ask the kernel to
    SIGTERM it if the master dies (SIGKILL, OOM), so no worker is orphaned:
    it finishes its job in hand and exits like on any other stop."""
    # First of all: until exec the child still has the master's Python
    # handlers, which would take a SIGTERM (ours below, or the kernel's when
    # the master dies) as "drain" and let the child go on to exec a worker.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    if niceness:
        os.nice(niceness)
    if sys.platform.startswith("linux"):
        import ctypes

        parent = os.getppid()
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the master died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)


@dataclass
class Child:
    proc: subprocess.Popen[bytes]
    name: str  # its RQ worker name, so the master can read its busy state and counters
    started_at: float
    restarts: int
    stop_sent: float | None = None  # when it was asked to finish its job and exit
    forced: bool = False  # a second SIGTERM was sent: the job in hand is interrupted
    busy: bool = False
    counted: tuple[int, float] = (0, 0.0)  # (jobs, seconds) already folded into the runtime average

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        """First SIGTERM: finish the job in hand, then exit 0 (never sent twice by accident)."""
        if self.stop_sent is None and self.proc.poll() is None:
            self.stop_sent = time.monotonic()
            self.proc.send_signal(signal.SIGTERM)

    def interrupt(self) -> None:
        """Second SIGTERM: the worker stops its job now; the job is settled (retried or failed)."""
        self.stop()
        if not self.forced and self.proc.poll() is None:
            self.forced = True
            self.proc.send_signal(signal.SIGTERM)

    def as_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "name": self.name, "started_at": self.started_at, "restarts": self.restarts}


@dataclass
class Pool:
    supervisor: SupervisorConfig
    queues: tuple[str, ...]  # what each child works, in order
    target: int
    children: list[Child] = field(default_factory=list)
    retiring: list[Child] = field(default_factory=list)  # asked to stop (scaled down), not yet gone
    restarts: int = 0  # replacements of children that died
    crash_streak: int = 0  # consecutive children that died young
    next_start: float = 0.0  # monotonic time before which no child is started (crash backoff)
    owed: list[int] = field(default_factory=list)  # restart counts of exited children awaiting replacement

    @property
    def label(self) -> str:
        return ",".join(self.queues)


@dataclass
class SupervisorRun:
    config: SupervisorConfig
    pools: list[Pool]
    decisions: list[Decision] = field(default_factory=list)
    last_scaled_at: float | None = None

    def pool(self, queue: str) -> Pool:
        return next(p for p in self.pools if p.queues == (queue,))


@dataclass
class Observation:
    depths: dict[str, int]
    oldest: dict[str, float]  # age in seconds of each queue's head job
    paused: set[str]
    terminate: bytes | str | None


def exit_text(code: int | None) -> str:
    if code is None:
        return "(still running)"
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"with status {code}"
