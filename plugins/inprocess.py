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

    def __init__(self):
        self._cache: dict = {}

    def run(self, jobs: Iterable[Any], work: Callable[[Any, dict], Any]) -> Iterator[Any]:
        for job in jobs:
            yield work(job, self._cache)


@hookimpl
def register_executors(register):
    register(ExecutorPlugin(name="inprocess", factory=InProcessExecutor,
                            description="run cells sequentially in this process (the reference executor)"))
