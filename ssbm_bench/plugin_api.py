"""What a plugin may import: the stable surface of ssbm-bench for plugin authors.

A plugin (first-party in ``plugins/`` or an outside package) needs the hook
marker, the record of its kind, the base class it subclasses and the types
those exchange; a board also needs the harness's planning context, the grid
helpers, the row shape and the statistics. Everything here is documented in
CONTRIBUTING.md (a test checks that every name is), and changes to it are
breaking changes. Anything else in ``ssbm_bench`` is internal.
"""

from __future__ import annotations

from .board import Board, CellIdentity, CellJob, CellResult, NotRerunnable
from .board_rows import BoardRow, fmt, nan_row, pct, rank_rows, rows_to_csv, rows_to_json, shown_label
from .corpus import Corpus
from .errors import CapabilityMissing, InputError, SsbmBenchError, SuiteError
from .executor import Executor, JobFailed
from .fill import Fill, FillContext, UsesCorpusStats
from .grid_board import GridBoard
from .harness.grid import GridSpec, grid_identity, grid_params, grid_spec, parse_target, spec_from_cell
from .harness.maps import explain_spec
from .harness.plan import PlanContext
from .harness.suite import PluginRef, check_keys, expect, plugin_entry
from .hookspecs import hookimpl
from .metrics.agreement import family_agreement
from .method import ExplainRequest, SaliencyMethod, ShowsMixtures
from .mixtures import map_digest, map_summary, mixture_waveforms, stable_seed
from .model import Capability, SpeechModel
from .records import BoardPlugin, CorpusPlugin, ExecutorPlugin, FamilyPlugin, FillPlugin, MethodPlugin, ModelPlugin
from .statistics import bootstrap_ci, cluster_bootstrap_ci, paired_test
from .submission.checks import CellChecks, SubmissionError
from .types import SaliencyMap, Target, Utterance, Word, validate_waveform

__all__ = [
    # registering
    "hookimpl", "BoardPlugin", "CorpusPlugin", "ExecutorPlugin", "FamilyPlugin", "FillPlugin", "MethodPlugin",
    "ModelPlugin",
    # base classes and optional protocols
    "Board", "GridBoard", "Corpus", "Executor", "Fill", "SaliencyMethod", "SpeechModel", "UsesCorpusStats", "ShowsMixtures",
    # what they exchange
    "Capability", "ExplainRequest", "FillContext", "PluginRef", "SaliencyMap", "Target", "Utterance", "Word",
    "validate_waveform", "JobFailed", "family_agreement",
    # writing a board
    "CellChecks", "CellIdentity", "CellJob", "CellResult", "NotRerunnable", "PlanContext", "GridSpec",
    "grid_identity", "grid_params", "grid_spec", "parse_target", "spec_from_cell", "explain_spec",
    "check_keys", "expect", "plugin_entry", "map_digest", "map_summary", "mixture_waveforms", "stable_seed",
    "BoardRow", "fmt", "pct", "nan_row", "rank_rows", "rows_to_csv", "rows_to_json", "shown_label",
    "bootstrap_ci", "cluster_bootstrap_ci", "paired_test",
    # errors
    "CapabilityMissing", "InputError", "SsbmBenchError", "SubmissionError", "SuiteError",
]
