"""The executor interface: where planned cells run.

The harness stays the one writer of the store: an executor only turns jobs
into results and hands them back as they finish, in any order. Jobs carry
plugin references (names + parameters), not live objects, so that an
executor may run them in another process or on another machine; `work`
receives a per-worker cache in which models stay loaded across jobs.
"""

from __future__ import annotations

import signal
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator


@dataclass
class JobFailed:
    """What an executor yields for a job whose worker died or ran out of time: the job and what happened.

    The harness stores it as that cell's error, naming the cell, and the
    run goes on with the other cells."""

    job: Any
    reason: str


class CellTimeout(Exception):
    """A cell ran past the suite's ``[run] cell_timeout``."""


def call_with_timeout(fn: Callable[[], Any], seconds: float | None) -> Any:
    """fn(), interrupted with CellTimeout after `seconds` (SIGALRM: the main thread of a Unix process; elsewhere,
    and for seconds = None, no limit). A plugin stuck in C code is interrupted when it next returns to Python."""
    if not seconds or threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGALRM"):
        return fn()

    def expire(signum, frame):
        raise CellTimeout(f"the cell ran past its time limit of {seconds:g} s ([run] cell_timeout)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, float(seconds))
    try:
        return fn()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0.0)
        signal.signal(signal.SIGALRM, previous)


class Executor(ABC):
    name: str = "executor"
    #: seconds one job may run (the suite's ``[run] cell_timeout``, set by the harness); None: no limit
    cell_timeout: float | None = None

    @abstractmethod
    def run(self, jobs: Iterable[Any], work: Callable[[Any, dict], Any], local_state: dict | None = None
            ) -> Iterator[Any]:
        """Yield `work(job, worker_state)` for every job, as each finishes, or a :class:`JobFailed` for a job
        whose worker died (a segfault, an abort) or that ran past ``cell_timeout``; go on with the others.

        `work` is a module-level function (picklable); `worker_state` is a
        dict that lives as long as the worker. An executor that runs jobs in
        this process uses `local_state` as that dict, so plugins the caller
        already loaded are reused; one that runs them elsewhere starts each
        worker with an empty dict."""

    def close(self) -> None:
        """Release workers (no-op for in-process)."""

    def describe(self) -> dict:
        return {"name": self.name}
