"""The Ray executor on a real local Ray instance (no mocks).

The fast check runs a probe work function through `RayExecutor` directly:
jobs of two models on two workers, every job once, each actor serving one
model only, results streamed, Ray shut down afterwards. The end-to-end check
runs the same tiny pocketsphinx suite on `inprocess` and on `ray` with two
workers through the CLI and compares the stored raw results.
"""

from __future__ import annotations

import json
import sqlite3
from types import SimpleNamespace

import pytest

ray = pytest.importorskip("ray")

from e2e_helpers import cli, write_suite  # noqa: E402
from ssbm_bench.errors import InputError  # noqa: E402
from ssbm_bench.harness.suite import PluginRef  # noqa: E402
from ssbm_bench.plugins import get_registry  # noqa: E402
from ssbm_bench.submission import export_submission, validate_submission  # noqa: E402
from ssbm_bench_plugins.ray_executor import RayExecutor, model_group, probe_work  # noqa: E402


def test_ray_is_registered_as_an_executor_plugin():
    assert get_registry().get("executor", "ray").record.factory is RayExecutor


@pytest.mark.parametrize("params", [{"workers": 0}, {"workers": "2"}, {"workers": True}, {"address": ""},
                                    {"cpus_per_worker": 0}])
def test_bad_parameters_are_refused_with_the_parameter_named(params):
    with pytest.raises(InputError, match="executor ray: " + next(iter(params))):
        RayExecutor(**params)


def test_jobs_stream_back_grouped_by_model_on_a_local_cluster():
    jobs = [SimpleNamespace(model=PluginRef(m, {"size": 1}), i=i) for m in ("alpha", "beta") for i in range(6)]
    ex = RayExecutor(workers=2)
    try:
        results = list(ex.run(jobs, probe_work))
        assert ray.is_initialized()
    finally:
        ex.close()
    assert not ray.is_initialized(), "close() must shut down the instance it started"
    assert sorted((r["job"].model.name, r["job"].i) for r in results) == sorted((j.model.name, j.i) for j in jobs)
    by_pid: dict[int, set] = {}
    for r in results:
        by_pid.setdefault(r["pid"], set()).update(r["groups_on_worker"])
    assert len(by_pid) >= 2  # both workers ran jobs
    for groups in by_pid.values():
        assert len(groups) == 1, "an actor is one replica of one model: it never sees another model's jobs"
    # state persists inside an actor: some worker ran several jobs with the same state dict
    assert max(r["jobs_on_worker"] for r in results) >= 2


def test_an_empty_job_list_starts_nothing():
    ex = RayExecutor(workers=2)
    assert list(ex.run([], probe_work)) == []
    ex.close()
    assert not ray.is_initialized()


def test_model_group_is_stable_across_parameter_order():
    a = SimpleNamespace(model=PluginRef("m", {"x": 1, "y": 2}))
    b = SimpleNamespace(model=PluginRef("m", {"y": 2, "x": 1}))
    assert model_group(a) == model_group(b) != model_group(SimpleNamespace(model=PluginRef("m")))


def stored_raw(db) -> dict:
    conn = sqlite3.connect(db)
    out = {}
    for key, status, raw in conn.execute("SELECT key, status, raw FROM cells"):
        d = json.loads(raw) if raw else {}
        d.pop("explain_seconds", None)  # timing, the one thing allowed to differ
        out[key] = (status, d)
    conn.close()
    return out


def test_ray_gives_the_same_stored_results_as_inprocess(tmp_path):
    """Second-machine semantics on this machine: a real local Ray cluster,
    two actors, the CLI and the store exactly as a user runs them."""
    suite = write_suite(tmp_path / "tiny.toml", "tiny-ray", ["energy"])
    ray_suite = tmp_path / "tiny-ray.toml"
    ray_suite.write_text(suite.read_text().replace('executor = "inprocess"',
                                                   'executor = "ray"\nexecutor_params = { workers = 2 }'))
    cli("run", str(suite), "--db", str(tmp_path / "in.sqlite"), "--no-progress")
    out = cli("run", str(ray_suite), "--db", str(tmp_path / "ray.sqlite"), "--no-progress")
    assert "2 computed (0 skipped, 0 errors)" in out.stdout
    reference = stored_raw(tmp_path / "in.sqlite")
    assert len(reference) == 2 and all(status == "ok" for status, _ in reference.values())
    assert stored_raw(tmp_path / "ray.sqlite") == reference
    # a Ray run of a suite is a run of that suite: its submission validates against the in-process file
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "tiny-ray.toml").write_text(suite.read_text())
    doc, _ = export_submission(tmp_path / "ray.sqlite", suites_dir=tmp_path / "suites")
    assert doc["run"]["executor"] == {"name": "ray", "params": {"workers": 2}}
    validate_submission(doc, tmp_path / "suites")


def test_actors_run_with_the_drivers_thread_settings(monkeypatch):
    """Ray would start workers with OMP_NUM_THREADS=1, which changes OpenBLAS's
    rounding (and so map digests) against the in-process executor."""
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    ex = RayExecutor(workers=1)
    try:
        (result,) = list(ex.run([SimpleNamespace(model=None, i=0)], probe_work))
    finally:
        ex.close()
    assert result["omp_num_threads"] == "3"
