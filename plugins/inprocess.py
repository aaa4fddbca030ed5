"""The in-process executor: runs cells one after another in this process.

The reference executor: every other executor must give the same results.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator

from ssbm_bench.executor import Executor
from ssbm_bench.hookspecs import hookimpl
from ssbm_bench.records import ExecutorPlugin


class InProcessExecutor(Executor):
    name = "inprocess"

    def run(self, jobs: Iterable[Any], work: Callable[[Any, dict], Any], local_state: dict | None = None
            ) -> Iterator[Any]:
        state = {} if local_state is None else local_state
        for job in jobs:
            yield work(job, state)


@hookimpl
def register_executors(register):
    register(ExecutorPlugin.of(InProcessExecutor,
                               description="run cells sequentially in this process (the reference executor)"))
