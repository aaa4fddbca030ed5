"""Exceptions that carry enough context to act on.

Every error a user can cause names the thing at fault and what was expected,
so that the message alone is enough to fix the input.
"""


class SsbmBenchError(Exception):
    """Base class: the CLI prints these without a traceback."""


class InputError(SsbmBenchError, ValueError):
    """Bad input data: audio, transcripts, maps, suite files."""


class UnknownPluginError(SsbmBenchError, KeyError):
    """A plugin name that nothing registered."""

    def __init__(self, kind: str, name: str, known: list[str]):
        self.kind, self.name, self.known = kind, name, sorted(known)
        listing = ", ".join(self.known) if self.known else "(none registered)"
        plural = {"corpus": "corpora", "family": "families"}.get(kind, f"{kind}s")
        super().__init__(f"unknown {kind} {name!r}; known {plural}: {listing}")

    def __str__(self) -> str:  # KeyError would quote the whole message
        return self.args[0]


class DuplicatePluginError(SsbmBenchError):
    """Two plugins registered the same name for the same kind."""


class CapabilityMissing(SsbmBenchError):
    """A model was asked for something it does not declare (e.g. gradients)."""


class SuiteError(InputError):
    """A suite file that does not match the schema."""
