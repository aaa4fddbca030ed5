"""The Python API (`ssbm_bench.evaluate`): the README's example runs as written, on a real model and real audio.

It scores a plain function (the clean magnitude as a map) beside `random` on pocketsphinx over two synthetic
utterances; the rows come back as a DataFrame, the cells are in a results store, a second call computes
nothing, and a function whose source changes is computed again while the baseline is not.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import ssbm_bench
from ssbm_bench.errors import InputError
from ssbm_bench.method import ExplainRequest
from ssbm_bench.python_api import CallableMethod

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_example() -> str:
    section = README.read_text().split("## Python API", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    return code


def test_the_readme_example_runs_and_a_rerun_computes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(readme_example(), "README.md (Python API)", "exec"), namespace)
    rows = namespace["rows"]
    assert set(rows["method"]) == {"louder_is_important", "random"} and set(rows["board"]) == {"ssbm"}
    assert (rows["n"] == 2).all() and rows["score"].notna().all()
    assert rows.attrs["computed"] == 4 and Path(rows.attrs["db"]) == Path("results/notebook.sqlite")
    assert (tmp_path / "results" / "notebook.sqlite").is_file()
    assert "cells computed; results in results/notebook.sqlite" in capsys.readouterr().out

    again = ssbm_bench.evaluate(namespace["louder_is_important"], model="pocketsphinx", corpus="synthetic",
                                utterances=["rms_h02_01", "awb_h02_01"], words_per_utterance=1,
                                settings={"ssbm": {"calibration": {"levels_db": [-20.0, -10.0, 0.0],
                                                                   "utterances": 1}}},
                                db="results/notebook.sqlite", progress=False, log=lambda s: None)
    assert again.attrs["computed"] == 0
    assert again[["method", "score"]].values.tolist() == rows[["method", "score"]].values.tolist()

    def louder_is_important(request):  # the same name, another body: a new identity
        return np.asarray(request.clean_magnitude) ** 2

    edited = ssbm_bench.evaluate(louder_is_important, model="pocketsphinx", corpus="synthetic",
                                 utterances=["rms_h02_01", "awb_h02_01"], words_per_utterance=1,
                                 settings={"ssbm": {"calibration": {"levels_db": [-20.0, -10.0, 0.0],
                                                                    "utterances": 1}}},
                                 db="results/notebook.sqlite", progress=False, log=lambda s: None)
    assert edited.attrs["computed"] == 2  # the edited function's two cells; random's are reused


def test_a_map_of_the_wrong_shape_names_the_method_and_the_shapes():
    """A narrow unit check with a stand-in request: the shape check reads only the map, the grid and the id."""
    method = CallableMethod(lambda request: np.zeros((3, 4)), "tiny", "score")
    request = ExplainRequest(model=None, utterance=type("U", (), {"id": "u1"})(), target=None, cfg=None,
                             clean_magnitude=np.zeros((257, 10)))
    with pytest.raises(InputError, match=r"method 'tiny': returned an array of shape \(3, 4\); expected the STFT "
                                         r"grid \(frequency bins x frames\), \(257, 10\) for utterance 'u1'"):
        method.explain(request)


def test_bad_arguments_are_refused_by_name():
    with pytest.raises(InputError, match="method must be a method name, a SaliencyMethod or a callable"):
        ssbm_bench.evaluate(42)
    with pytest.raises(InputError, match="map_kind must be 'score', 'magnitude' or 'pvalue'"):
        CallableMethod(lambda r: None, "x", "loud")
