"""A local process-pool executor: cells run in N worker processes.

Pocketsphinx holds the GIL while it decodes, so threads do not help; worker
processes do. Each worker keeps its own plugin instances (a model loads once
per worker), and results come back to the one writer of the store in the
parent as they finish. Jobs are sent model by model (the planner's order),
so a worker mostly sees one model at a time.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Iterable, Iterator

from ssbm_bench.errors import InputError
from ssbm_bench.executor import Executor, JobFailed
from ssbm_bench.hookspecs import hookimpl
from ssbm_bench.records import ExecutorPlugin

_WORKER_STATE: dict = {}
#: prctl option: the signal a process gets when its parent dies (Linux)
_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    """Worker initializer: ask the kernel to SIGKILL this worker when the parent dies (Linux), so a killed run
    leaves no worker behind; a parent already gone (the race before the call) ends the worker now."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: workers end when their pipe to the parent closes
        pass
    if os.getppid() != parent:
        os._exit(1)
    # Ctrl-C goes to the whole process group: the parent decides, a worker does not die mid-cell on its own
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _call(work: Callable[[Any, dict], Any], job: Any) -> Any:
    return work(job, _WORKER_STATE)


class _PoolBroke(Exception):
    def __init__(self, jobs: list):
        self.jobs = jobs


class ProcessPoolJobExecutor(Executor):
    name = "process-pool"

    def __init__(self, workers: int | None = None, max_pending: int | None = None):
        n = (os.cpu_count() or 1) if workers is None else int(workers)
        if n < 1:
            raise InputError(f"executor process-pool: workers must be at least 1, got {workers}")
        self.workers = n
        # bounded submission: a long suite never queues all its jobs at once
        self.max_pending = int(max_pending or 4 * n)
        self._pool: ProcessPoolExecutor | None = None

    def _new_pool(self, workers: int) -> ProcessPoolExecutor:
        # spawn, not fork: torch and decoders in the parent must not be copied mid-state
        self._pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_die_with_parent, initargs=(os.getpid(),))
        return self._pool

    def run(self, jobs: Iterable[Any], work: Callable[[Any, dict], Any], local_state: dict | None = None
            ) -> Iterator[Any]:
        """Jobs run in the pool; when a worker dies (a plugin's segfault or abort breaks the whole pool), the
        jobs that were in flight are run again one at a time, each in a fresh one-worker pool, so the one that
        kills its worker is named (a :class:`JobFailed`) and the others finish; then the run goes on."""
        it = iter(jobs)
        retry: deque = deque()
        try:
            while True:
                try:
                    yield from self._run_pool(it, retry, work)
                    return
                except _PoolBroke as broke:
                    self._kill()
                    for job in broke.jobs:
                        yield self._alone(job, work)
        finally:
            self._kill()

    def _run_pool(self, it, retry: deque, work) -> Iterator[Any]:
        pool = self._new_pool(self.workers)
        futures: dict = {}
        exhausted = False
        while True:
            while not exhausted and len(futures) < self.max_pending:
                if retry:
                    job = retry.popleft()
                else:
                    try:
                        job = next(it)
                    except StopIteration:
                        exhausted = True
                        break
                futures[pool.submit(_call, work, job)] = job
            if not futures:
                return
            done, _ = wait(futures, return_when=FIRST_COMPLETED)
            for fut in done:
                job = futures.pop(fut)
                try:
                    result = fut.result()
                except BrokenProcessPool:
                    raise _PoolBroke([job, *futures.values()]) from None
                yield result

    def _alone(self, job: Any, work) -> Any:
        pool = self._new_pool(1)
        future = pool.submit(_call, work, job)
        workers = list(getattr(pool, "_processes", {}).values())  # the one worker, to read how it ended
        try:
            return future.result()
        except BrokenProcessPool:
            for proc in workers:
                proc.join(timeout=30)
            codes = sorted({p.exitcode for p in workers if p.exitcode})
            how = f" (exit code {', '.join(map(str, codes))})" if codes else ""
            return JobFailed(job, f"its worker process died{how} while computing it: a plugin crashed the process "
                                  f"(a segfault or an abort); the other cells went on")
        finally:
            self._kill()

    def _kill(self) -> None:
        """Stop the pool now: cancel what is queued and end its worker processes (a stuck cell is not waited for)."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        processes = list(getattr(pool, "_processes", {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in processes:
            if proc.is_alive():
                proc.kill()
        for proc in processes:
            proc.join(timeout=5)

    def close(self) -> None:
        self._kill()

    def describe(self) -> dict:
        return {"name": self.name, "workers": self.workers}


@hookimpl
def register_executors(register):
    register(ExecutorPlugin.of(ProcessPoolJobExecutor,
                               description="run cells in N local worker processes (params: workers)"))
