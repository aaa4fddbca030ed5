"""The Ray executor: cells run in Ray actors, on this machine or a cluster.

One actor is one replica of one model: jobs are grouped by model, and an
actor only ever runs the jobs of the model it was started for, so the
model's weights load once per actor (its `worker_state` dict lives as long
as the actor, like a process-pool worker's). At most `workers` actors live
at once; when a model has no jobs left to hand out, its idle actors are
retired and the freed slots start replicas of the models that still have
work. Results come back to the harness in this process, the one writer of
the store, as each finishes.

`address=None` starts a private local Ray instance with `num_cpus=workers`
(never joining a cluster that happens to run on the machine), and shuts it
down in `close()`; an address (`"auto"`, `"HOST:PORT"`, `"ray://..."`)
joins an existing cluster, on whose nodes ssbm-bench and the suite's
plugins must be installed. A local instance shares the fate of this
process: killed, its Ray processes (GCS, raylet, actors, agents) end with
it, the last within about a minute (tested). Ray's usage statistics are switched off and no
dashboard is started: nothing here reaches the network.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict, deque
from typing import Any, Callable, Iterable, Iterator

from ssbm_bench.errors import InputError, SsbmBenchError
from ssbm_bench.executor import Executor, JobFailed
from ssbm_bench.hookspecs import hookimpl
from ssbm_bench.records import ExecutorPlugin

#: jobs queued on one actor at a time: one running, one waiting, so an actor
#: never idles while its next job travels to it
IN_FLIGHT_PER_ACTOR = 2


class ExecutorFailure(SsbmBenchError):
    """A worker died (not a cell error: those come back as results)."""


def _import_ray():
    # before ray is imported: no usage statistics are collected or sent
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    try:
        import ray
    except ImportError as exc:
        raise InputError("executor ray: Ray is not installed; install it with "
                         "`pip install 'ssbm-bench[ray]'`") from exc
    return ray


def model_group(job: Any) -> str:
    """The model a job needs, as a stable string (jobs without one share a group)."""
    model = getattr(job, "model", None)
    if model is None:
        return ""
    to_dict = getattr(model, "to_dict", None)
    return json.dumps(to_dict() if callable(to_dict) else repr(model), sort_keys=True, default=str)


def thread_environment() -> dict[str, str]:
    """The thread settings this process runs with, for the actors.

    Ray starts workers with OMP_NUM_THREADS=1 unless told otherwise, and
    OpenBLAS with one thread rounds some matrix products (the energy map's
    mel smoothing) differently in the last bit from OpenBLAS with several:
    the map's digest would then differ from the in-process executor's. The
    actors get what this process has (its value, or the core count that
    OpenBLAS and OpenMP default to when the variable is unset)."""
    return {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(os.cpu_count() or 1))}


class CellActor:
    """The body of one Ray actor: a worker with its own long-lived state."""

    def __init__(self, work: Callable[[Any, dict], Any]):
        self.work = work
        self.state: dict = {}

    def run(self, job: Any) -> Any:
        return self.work(job, self.state)

    def pid(self) -> int:
        return os.getpid()


def probe_work(job: Any, state: dict) -> dict:
    """A work function for checks: which worker ran the job, which model
    group that worker served before, and how many jobs it had run."""
    state["jobs"] = state.get("jobs", 0) + 1
    state.setdefault("groups", set()).add(model_group(job))
    return {"job": job, "pid": os.getpid(), "jobs_on_worker": state["jobs"], "groups_on_worker": sorted(state["groups"]),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}


class RayExecutor(Executor):
    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None, log_to_driver: bool = False,
                 cpus_per_worker: float = 1.0):
        n = (os.cpu_count() or 1) if workers is None else workers
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise InputError(f"executor ray: workers must be an integer of at least 1, got {workers!r}")
        if address is not None and (not isinstance(address, str) or not address.strip()):
            raise InputError(f"executor ray: address must be a non-empty string (or left out to start a local "
                             f"instance), got {address!r}")
        if not (isinstance(cpus_per_worker, (int, float)) and cpus_per_worker > 0):
            raise InputError(f"executor ray: cpus_per_worker must be a positive number, got {cpus_per_worker!r}")
        self.address = address
        self.workers = n
        self.log_to_driver = bool(log_to_driver)
        self.cpus_per_worker = float(cpus_per_worker)
        self._ray = None
        self._started_here = False
        self._actors: dict = {}
        #: pids of every actor started (for tests and the run log: how many replicas loaded a model)
        self.actor_pids: list[int] = []

    # --- cluster ----------------------------------------------------------
    def _connect(self):
        ray = _import_ray()
        self._ray = ray
        if ray.is_initialized():  # the caller's own Ray session: use it, leave it running
            return ray
        kwargs = dict(include_dashboard=False, log_to_driver=self.log_to_driver, configure_logging=False)
        try:
            if self.address is None:
                # "local": a fresh private instance, even when RAY_ADDRESS is set or `ray start` ran here
                ray.init(address="local", num_cpus=int(max(1, round(self.workers * self.cpus_per_worker))),
                         **kwargs)
            else:
                kwargs.pop("include_dashboard")  # the dashboard is the cluster's business, not ours
                ray.init(address=self.address, **kwargs)
        except Exception as exc:
            where = "a local Ray instance" if self.address is None else f"the Ray cluster at {self.address!r}"
            raise ExecutorFailure(f"executor ray: could not start or join {where}: {type(exc).__name__}: "
                                  f"{exc}") from exc
        self._started_here = True
        return ray

    # --- running ----------------------------------------------------------
    def run(self, jobs: Iterable[Any], work: Callable[[Any, dict], Any], local_state: dict | None = None
            ) -> Iterator[Any]:
        queues: "OrderedDict[str, deque]" = OrderedDict()
        for job in jobs:
            queues.setdefault(model_group(job), deque()).append(job)
        if not any(queues.values()):
            return
        ray = self._connect()
        actor_class = ray.remote(num_cpus=self.cpus_per_worker, max_restarts=0,
                                 runtime_env={"env_vars": thread_environment()})(CellActor)
        actors = self._actors  # handle -> {"group": str, "in_flight": int}
        replicas: dict[str, int] = {g: 0 for g in queues}
        pending: dict = {}  # object ref -> (actor, job)
        deaths: dict = {}  # job key -> how often a worker died with it in flight

        def start_actors() -> None:
            while len(actors) < self.workers:
                # the model with the most queued jobs per replica gets the next replica
                candidates = [(len(q) / (replicas[g] + 1), -i, g) for i, (g, q) in enumerate(queues.items())
                              if len(q) > replicas[g] * IN_FLIGHT_PER_ACTOR]
                if not candidates:
                    return
                _, _, group = max(candidates)
                handle = actor_class.remote(work)
                actors[handle] = {"group": group, "in_flight": 0}
                replicas[group] += 1

        def dispatch() -> None:
            for handle, info in actors.items():
                q = queues[info["group"]]
                while q and info["in_flight"] < IN_FLIGHT_PER_ACTOR:
                    job = q.popleft()
                    pending[handle.run.remote(job)] = (handle, job)
                    info["in_flight"] += 1

        def retire_idle() -> None:
            for handle in [h for h, info in actors.items() if info["in_flight"] == 0 and not queues[info["group"]]]:
                replicas[actors.pop(handle)["group"]] -= 1
                ray.kill(handle)

        start_actors()
        dispatch()
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                handle, job = pending.pop(ref)
                if handle in actors:
                    actors[handle]["in_flight"] -= 1
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayActorError as exc:
                    if getattr(exc, "actor_init_failed", False):  # no worker could start: not the cell's fault
                        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                        raise ExecutorFailure(f"executor ray: a worker could not start ({first[:300]}); ssbm-bench "
                                              f"and the suite's plugins must be installed, importable, on every "
                                              f"node") from None
                    # the worker died (a plugin's segfault or abort): the cell is tried once more on a fresh
                    # worker, and fails, named, if its worker dies again; the other cells go on
                    if handle in actors:
                        replicas[actors.pop(handle)["group"]] -= 1
                    key = getattr(job, "key", id(job))
                    deaths[key] = deaths.get(key, 0) + 1
                    if deaths[key] < 2:
                        queues[model_group(job)].appendleft(job)
                        continue
                    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    result = JobFailed(job, f"its Ray worker died twice while computing it ({first[:200]}): a plugin "
                                            f"crashed the process (a segfault or an abort); the other cells went on")
                except ray.exceptions.RayTaskError as exc:
                    raise ExecutorFailure(f"executor ray: {_describe(job)} raised in its worker: "
                                          f"{exc}") from exc
                yield result
            retire_idle()
            start_actors()
            dispatch()
        retire_idle()

    def close(self) -> None:
        ray = self._ray
        if ray is None:
            return
        for handle in list(self._actors):
            try:
                ray.kill(handle)
            except Exception:  # already gone
                pass
        self._actors.clear()
        if self._started_here and ray.is_initialized():
            ray.shutdown()
        self._started_here = False
        self._ray = None

    def describe(self) -> dict:
        return {"name": self.name, "workers": self.workers, "address": self.address}


def _describe(job: Any) -> str:
    parts = [getattr(getattr(job, k, None), "label", None) for k in ("model", "method", "fill")]
    parts += [getattr(job, "utterance", None), getattr(getattr(job, "target", None), "key", None)]
    shown = " / ".join(str(p) for p in parts if p is not None)
    return f"cell {shown}" if shown else "a job"


@hookimpl
def register_executors(register):
    register(ExecutorPlugin.of(RayExecutor,
                               description="run cells in Ray actors, one per model replica "
                                           "(params: workers, address; needs `ssbm-bench[ray]`)"))
