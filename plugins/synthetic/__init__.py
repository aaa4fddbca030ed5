"""The `synthetic` corpus plugin: Harvard sentences with synthesiser word times.

Importing this module is cheap (numpy, no torch, no engines): the corpus
loads its committed data only when instantiated, and the builder starts
flite/festival only when called.
"""

from ssbm_bench.hookspecs import hookimpl
from ssbm_bench.records import CorpusPlugin

from .build import build_synthetic
from .corpus import SyntheticCorpus
from .manifest import ManifestCorpus

__all__ = ["SyntheticCorpus", "ManifestCorpus", "build_synthetic"]


@hookimpl
def register_corpora(register):
    register(
        CorpusPlugin.of(
            SyntheticCorpus,
            description=(
                "25 Harvard sentences x 4 voices (flite rms/awb/kal16, festival slt_hts), 16 kHz, "
                "exact synthesiser word times"
            ),
            builder=build_synthetic,
        )
    )
