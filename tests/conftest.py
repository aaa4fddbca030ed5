"""Shared fixtures.

`fake_distribution` writes a real installed-distribution layout (a
*.dist-info folder with METADATA and entry_points.txt, plus the module) into
a folder put on sys.path, so plugin-manager tests exercise the genuine
importlib.metadata entry-point path rather than a mock of it.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import settings

from ssbm_bench.cache_dir import CACHE_ENV
from ssbm_bench.plugins import reset_registry

# Property tests check invariants, not speed: a per-example deadline would
# make them fail on a busy 2-core CI machine for reasons unrelated to the code.
settings.register_profile("ssbm", deadline=None, derandomize=False)
settings.load_profile("ssbm")

REPO = Path(__file__).resolve().parent.parent


def _lazy_modules_without_file_are_attribute_errors() -> None:
    """Keep hypothesis's module scan from tripping on speechbrain's lazy modules.

    Hypothesis (6.170) collects constants from every module in sys.modules and
    asks each for ``getattr(module, "__file__", None)``. Once speechbrain is
    imported, sys.modules holds LazyModule placeholders for optional
    integrations (k2, ...) whose import fails; their ``__getattr__`` raises
    ImportError, which getattr's default does not catch, so every property test
    that runs after a speechbrain test failed with "No module named 'k2'".
    A dunder looked up on a module that cannot be imported simply does not
    exist, so we turn that one case into AttributeError; everything else
    (a real attribute of an importable lazy module) is unchanged.
    """
    try:
        from speechbrain.utils.importutils import LazyModule
    except ImportError:  # speechbrain absent: nothing to guard
        return
    original = LazyModule.__getattr__

    def __getattr__(self, attr):
        try:
            return original(self, attr)
        except ImportError as error:
            if attr.startswith("__") and attr.endswith("__"):
                raise AttributeError(attr) from error
            raise

    LazyModule.__getattr__ = __getattr__


_lazy_modules_without_file_are_attribute_errors()


@pytest.fixture
def fake_distribution(tmp_path, monkeypatch):
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    created_modules: list[str] = []

    def make(dist: str, modules: dict[str, str], entry_points: dict[str, str], version: str = "1.0"):
        info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        lines = ["[ssbm_bench]"] + [f"{k} = {v}" for k, v in entry_points.items()]
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
        for mod, src in modules.items():
            (root / f"{mod}.py").write_text(textwrap.dedent(src))
            created_modules.append(mod)
        return info

    yield make
    for mod in created_modules:
        sys.modules.pop(mod, None)
    reset_registry()


@pytest.fixture(scope="module")
def private_cache(tmp_path_factory):
    """The module's own cache directory ($SSBM_BENCH_CACHE): what is cached (alignments,
    converted models) is really computed, not read from the user's cache."""
    path = tmp_path_factory.mktemp("ssbm-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CACHE_ENV, str(path))
        yield path
