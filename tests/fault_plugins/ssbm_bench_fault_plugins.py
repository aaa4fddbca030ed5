"""Hostile saliency methods, installed as an outside package would be, for ssbm-bench's fault tests.

* ``crash-abort`` calls abort(): the process dies with SIGABRT;
* ``crash-segfault`` reads address 0: the process dies with SIGSEGV;
* ``hang`` never returns (a plugin stuck in a loop);
* ``hang-in-c`` blocks SIGALRM and sleeps in C: it never returns to Python, so only a limit that needs neither
  signals nor the GIL can stop it.

The harness must name the cell, keep every other cell, and leave no
process behind.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time

from ssbm_bench.hookspecs import hookimpl
from ssbm_bench.method import SaliencyMethod
from ssbm_bench.records import MethodPlugin


class _Hostile(SaliencyMethod):
    map_kind = "score"
    version = "0.1.0"

    def describe(self) -> dict:
        return {"name": self.name}


class CrashAbort(_Hostile):
    name = "crash-abort"

    def explain(self, request):
        os.abort()


class CrashSegfault(_Hostile):
    name = "crash-segfault"

    def explain(self, request):
        ctypes.string_at(0)


class Hang(_Hostile):
    name = "hang"

    def explain(self, request):
        while True:
            time.sleep(0.05)


class HangInC(_Hostile):
    name = "hang-in-c"

    def explain(self, request):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        while True:
            ctypes.CDLL(None).sleep(3600)


@hookimpl
def register_methods(register):
    for cls in (CrashAbort, CrashSegfault, Hang, HangInC):
        register(MethodPlugin.of(cls, description=f"fault test: {cls.__doc__ or cls.name}"))
