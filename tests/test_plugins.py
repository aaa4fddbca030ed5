"""The plugin manager, through real entry points of real (temporary) distributions."""

from __future__ import annotations

import pytest

from ssbm_bench.errors import DuplicatePluginError, UnknownPluginError
from ssbm_bench.plugins import PluginError, build_registry

METHOD_SRC = """
from ssbm_bench.hookspecs import hookimpl
from ssbm_bench.method import SaliencyMethod
from ssbm_bench.records import MethodPlugin

class Method(SaliencyMethod):
    def explain(self, request):
        raise NotImplementedError

@hookimpl
def register_methods(register):
    register(MethodPlugin(name="{name}", factory=Method, description="test method"))
"""


def test_first_party_plugins_load_through_entry_points():
    reg = build_registry(restrict=None)
    # every first-party plugin comes from the ssbm-bench distribution's own entry points
    assert {"energy", "random"} <= set(reg.names("method"))
    assert "pocketsphinx" in reg.names("model")
    assert "white-noise" in reg.names("fill")
    assert "synthetic" in reg.names("corpus")
    assert "inprocess" in reg.names("executor")
    assert reg.get("method", "energy").distribution == "ssbm-bench"
    assert not reg.failures, [f.error for f in reg.failures]


def test_broken_plugin_is_reported_and_skipped(fake_distribution):
    fake_distribution("broken-plugin", {"broken_mod": "raise RuntimeError('boom at import')"}, {"broken": "broken_mod"})
    fake_distribution("good-plugin", {"good_mod": METHOD_SRC.format(name="good-method")}, {"good": "good_mod"})
    reg = build_registry(restrict=None)
    failures = {f.name: f for f in reg.failures}
    assert "broken" in failures
    assert "boom at import" in failures["broken"].error
    assert failures["broken"].distribution == "broken-plugin"
    assert "good-method" in reg.names("method")


def test_duplicate_name_names_both_distributions(fake_distribution):
    fake_distribution("dist-one", {"dup_one": METHOD_SRC.format(name="same")}, {"dup_one": "dup_one"})
    fake_distribution("dist-two", {"dup_two": METHOD_SRC.format(name="same")}, {"dup_two": "dup_two"})
    with pytest.raises(DuplicatePluginError) as err:
        build_registry(restrict=None)
    assert "dist-one" in str(err.value) and "dist-two" in str(err.value)
    assert "'same'" in str(err.value)


def test_misspelled_hook_fails_loudly(fake_distribution):
    src = """
from ssbm_bench.hookspecs import hookimpl

@hookimpl
def register_method(register):  # missing the final 's'
    pass
"""
    fake_distribution("typo-plugin", {"typo_mod": src}, {"typo": "typo_mod"})
    with pytest.raises(PluginError) as err:
        build_registry(restrict=None)
    assert "register_method" in str(err.value)
    assert "typo" in str(err.value)


def test_wrong_record_type_is_rejected(fake_distribution):
    src = """
from ssbm_bench.hookspecs import hookimpl
from ssbm_bench.records import FillPlugin

@hookimpl
def register_methods(register):
    register(FillPlugin(name="x", factory=dict, description="wrong kind"))
"""
    fake_distribution("wrongrec-plugin", {"wrongrec_mod": src}, {"wrongrec": "wrongrec_mod"})
    reg = build_registry(restrict=None)  # refused and listed, not fatal: the other plugins load
    [refused] = reg.refused
    assert (refused.kind, refused.plugin, refused.distribution) == ("method", "wrongrec", "wrongrec-plugin")
    assert "registered a FillPlugin; expected MethodPlugin" in refused.problem
    assert "x" not in reg.names("fill") and "energy" in reg.names("method")


def test_environment_variable_restricts_loading(monkeypatch):
    monkeypatch.setenv("SSBM_BENCH_PLUGINS", "energy,inprocess")
    reg = build_registry()
    assert reg.names("method") == ["energy"]
    assert reg.names("model") == []
    monkeypatch.setenv("SSBM_BENCH_PLUGINS", "")
    assert build_registry().names("method") == []


def test_unknown_name_lists_known_ones():
    reg = build_registry(restrict=None)
    with pytest.raises(UnknownPluginError) as err:
        reg.get("method", "enrgy")
    msg = str(err.value)
    assert "unknown method 'enrgy'" in msg and "energy" in msg and "random" in msg


def test_records_read_what_the_class_declares():
    from ssbm_bench.method import SaliencyMethod
    from ssbm_bench.model import Capability, SpeechModel
    from ssbm_bench.records import MethodPlugin, ModelPlugin

    class Needy(SaliencyMethod):
        name = "needy"
        requires = frozenset({Capability.DIFFERENTIABLE, "transcribe"})

        def explain(self, request):
            raise NotImplementedError

    class Listener(SpeechModel):
        name = "listener"
        capabilities = frozenset({Capability.TRANSCRIBE, Capability.ALIGN})

    rec = MethodPlugin.of(Needy, description="d")
    assert (rec.name, rec.factory, rec.requires) == ("needy", Needy, frozenset({"differentiable", "transcribe"}))
    assert all(type(c) is str for c in rec.requires)  # plain strings, as `ssbm-bench plugins` prints them
    model = ModelPlugin.of(Listener, description="d", name="listener-2", factory=dict)
    assert (model.name, model.factory, model.capabilities) == ("listener-2", dict, frozenset({"transcribe", "align"}))

    class Unnamed(Listener):  # inherits a name: a second plugin of one class must be named on purpose
        pass

    with pytest.raises(TypeError, match="declares no `name`"):
        ModelPlugin.of(Unnamed, description="d")
