"""The executor interface: where planned cells run.

The harness stays the one writer of the store: an executor only turns jobs
into results and hands them back as they finish, in any order. Jobs carry
plugin references (names + parameters), not live objects, so that an
executor may run them in another process or on another machine; `work`
receives a per-worker cache in which models stay loaded across jobs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable, Iterable, Iterator


class Executor(ABC):
    name: str = "executor"

    @abstractmethod
    def run(self, jobs: Iterable[Any], work: Callable[[Any, dict], Any], local_state: dict | None = None
            ) -> Iterator[Any]:
        """Yield `work(job, worker_state)` for every job, as each finishes.

        `work` is a module-level function (picklable); `worker_state` is a
        dict that lives as long as the worker. An executor that runs jobs in
        this process uses `local_state` as that dict, so plugins the caller
        already loaded are reused; one that runs them elsewhere starts each
        worker with an empty dict."""

    def close(self) -> None:
        """Release workers (no-op for in-process)."""

    def describe(self) -> dict:
        return {"name": self.name}
