"""A local process-pool executor: cells run in N worker processes.

Pocketsphinx holds the GIL while it decodes, so threads do not help; worker
processes do. Each worker keeps its own plugin instances (a model loads once
per worker), and results come back to the one writer of the store in the
parent as they finish. Jobs are sent model by model (the planner's order),
so a worker mostly sees one model at a time.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any, Callable, Iterable, Iterator

from ssbm_bench.errors import InputError
from ssbm_bench.executor import Executor
from ssbm_bench.hookspecs import hookimpl
from ssbm_bench.records import ExecutorPlugin

_WORKER_STATE: dict = {}


def _call(work: Callable[[Any, dict], Any], job: Any) -> Any:
    return work(job, _WORKER_STATE)


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

    def run(self, jobs: Iterable[Any], work: Callable[[Any, dict], Any], local_state: dict | None = None
            ) -> Iterator[Any]:
        # spawn, not fork: torch and decoders in the parent must not be copied mid-state
        self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
        pending = set()
        it = iter(jobs)
        exhausted = False
        while True:
            while not exhausted and len(pending) < self.max_pending:
                try:
                    pending.add(self._pool.submit(_call, work, next(it)))
                except StopIteration:
                    exhausted = True
            if not pending:
                break
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                yield fut.result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def describe(self) -> dict:
        return {"name": self.name, "workers": self.workers}


@hookimpl
def register_executors(register):
    register(ExecutorPlugin.of(ProcessPoolJobExecutor,
                               description="run cells in N local worker processes (params: workers)"))
