"""A known-bad fill (no `apply`) from a real entry point: named by `ssbm-bench plugins`, refused by a suite.

The contributor's case: the fill was listed, then crashed mid-run with
``AttributeError: 'PinkNoiseFill' object has no attribute 'apply'``. Now
`plugins` lists it as refused, saying which plugin, which package and what
was expected, and `run` refuses the suite before any model runs.
"""

from __future__ import annotations

import json
import os

import pytest

from e2e_helpers import cli, write_suite

BAD_FILL = '''
import numpy as np
from ssbm_bench.plugin_api import Fill, FillPlugin, hookimpl


class PinkNoiseFill(Fill):
    name = "pink-noise"
    additive = True

    def pink(self, clean, weight, ctx):  # the work, under another name than the interface's `apply`
        return clean


@hookimpl
def register_fills(register):
    register(FillPlugin.of(PinkNoiseFill, description="pink noise (but no apply)"))
'''


@pytest.fixture
def bad_fill(fake_distribution):
    """The bad fill as an installed distribution (a real dist-info with an entry point) the CLI can see."""
    info = fake_distribution("pink-fill", {"pink_fill": BAD_FILL}, {"pink": "pink_fill"}, version="0.1.0")
    path = os.pathsep.join([str(info.parent)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    return {"PYTHONPATH": path}


def test_plugins_names_the_bad_fill_with_what_was_expected(bad_fill):
    data = json.loads(cli("plugins", "--json", env=bad_fill).stdout)
    assert "pink-noise" not in {p["name"] for p in data["plugins"] if p["kind"] == "fill"}
    [refused] = [r for r in data["refused"] if r["name"] == "pink-noise"]
    assert (refused["kind"], refused["plugin"], refused["distribution"], refused["version"], refused["module"]) == \
        ("fill", "pink", "pink-fill", "0.1.0", "pink_fill")
    assert "pink_fill.PinkNoiseFill is abstract: it does not implement apply(" in refused["problem"]
    assert "expected a subclass of ssbm_bench.fill.Fill" in refused["problem"]
    assert "white-noise" in {p["name"] for p in data["plugins"]}  # the others load as usual

    text = cli("plugins", env=bad_fill).stdout
    refused_part = text.split("refused", 1)[1]
    assert "fill 'pink-noise' from plugin 'pink' (module pink_fill, package pink-fill 0.1.0) is refused" in text
    assert "does not implement apply" in refused_part


def test_a_suite_naming_the_bad_fill_is_refused_before_any_model_runs(bad_fill, tmp_path):
    suite = write_suite(tmp_path / "pink.toml", "pink", ["random"], limit=1)
    suite.write_text(suite.read_text().replace('name = "white-noise"', 'name = "pink-noise"'))
    db = tmp_path / "pink.sqlite"
    proc = cli("run", str(suite), "--db", str(db), "--no-progress", env=bad_fill, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "fill 'pink-noise' from plugin 'pink' (module pink_fill, package pink-fill 0.1.0) is refused" in \
        proc.stderr
    assert "does not implement apply" in proc.stderr and "ssbm_bench.fill.Fill" in proc.stderr
    assert "Traceback" not in proc.stderr and "AttributeError" not in proc.stderr
    assert not db.exists()  # stopped before the store opened: nothing calibrated, nothing decoded
