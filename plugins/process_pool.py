"""A local process-pool executor: cells run in N worker processes.

Pocketsphinx holds the GIL while it decodes, so threads do not help; worker
processes do. Each worker keeps its own plugin instances (a model loads once
per worker), and results come back to the one writer of the store in the
parent as they finish. Jobs are sent model by model (the planner's order),
so a worker mostly sees one model at a time.

A cell is stopped at the suite's ``[run] cell_timeout`` by SIGALRM in its
worker (the soft limit, shared with the in-process executor). A plugin stuck
in C code that blocks signals never returns to Python to be stopped, so a
worker also carries a hard limit (:func:`hard_limit`) that needs neither:
it ends the worker, and the cell is stored as timed out; the cells that were
running beside it are run again. Workers die with the parent (SIGKILL on
the parent's death), and a worker that crashes is found out cell by cell.
"""

from __future__ import annotations

import ctypes
import faulthandler
import multiprocessing
import os
import re
import shutil
import signal
import tempfile
from collections import deque
from pathlib import Path
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


def hard_limit(timeout: float) -> float:
    """Seconds after which a worker still computing a cell is ended from outside Python: the suite's cell
    timeout plus a grace (a tenth of it, 5 s to 60 s) in which the soft limit (SIGALRM) should have stopped it."""
    return timeout + min(60.0, max(5.0, 0.1 * timeout))


def _watch_file(watch_dir: str, job: Any) -> str:
    key = str(getattr(job, "key", None) or id(job))
    return os.path.join(watch_dir, re.sub(r"[^A-Za-z0-9_.-]", "_", key)[:120] + ".txt")


def _call(work: Callable[[Any, dict], Any], job: Any, timeout: float | None = None, watch_dir: str | None = None
          ) -> Any:
    """Run one job in a worker. With a cell timeout, a watchdog that needs neither the GIL nor signals
    (faulthandler's C thread) ends this worker at :func:`hard_limit`, writing the stack to the job's watch file:
    a plugin stuck in C code that blocks or ignores SIGALRM never returns to Python for the soft limit to stop
    it, and the parent reads the file to name the cell as timed out."""
    if not timeout or not watch_dir:
        return work(job, _WORKER_STATE)
    path = _watch_file(watch_dir, job)
    watch = open(path, "w")
    faulthandler.dump_traceback_later(hard_limit(timeout), exit=True, file=watch)
    try:
        return work(job, _WORKER_STATE)
    finally:  # not reached when the watchdog ends the worker: the file, with the stack, stays for the parent
        faulthandler.cancel_dump_traceback_later()
        watch.close()
        os.unlink(path)


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
        self._watch_dir: str | None = None

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
        self._watch_dir = tempfile.mkdtemp(prefix="ssbm-bench-watch-")
        try:
            while True:
                try:
                    yield from self._run_pool(it, retry, work)
                    return
                except _PoolBroke as broke:
                    self._kill()
                    for job in broke.jobs:
                        yield self._timed_out(job) or self._alone(job, work)
        finally:
            self._kill()
            shutil.rmtree(self._watch_dir, ignore_errors=True)

    def _submit(self, pool: ProcessPoolExecutor, work, job: Any):
        return pool.submit(_call, work, job, self.cell_timeout, self._watch_dir)

    def _timed_out(self, job: Any) -> JobFailed | None:
        """The job's failure when its worker was ended by the hard time limit (its watch file holds a stack)."""
        path = _watch_file(self._watch_dir, job)
        try:
            stack = Path(path).read_text(errors="replace")
        except OSError:
            return None
        os.unlink(path)
        if not stack.strip():  # the worker died some other way while running it (or with it, another's crash)
            return None
        return JobFailed(job, f"it ran past its time limit of {self.cell_timeout:g} s ([run] cell_timeout) and did "
                              f"not return to Python to be stopped (stuck in C code?), so its worker process was "
                              f"ended after {hard_limit(self.cell_timeout):g} s; the other cells went on")

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
                futures[self._submit(pool, work, job)] = job
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
        future = self._submit(pool, work, job)
        workers = list(getattr(pool, "_processes", {}).values())  # the one worker, to read how it ended
        try:
            return future.result()
        except BrokenProcessPool:
            for proc in workers:
                proc.join(timeout=30)
            timed_out = self._timed_out(job)
            if timed_out is not None:
                return timed_out
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
