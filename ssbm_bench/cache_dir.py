"""The cache directory: where ssbm-bench keeps what it derives once and reuses.

Converted model weights, forced alignments, corpora synthesised on first
use, trained seed families: one root for all of it, so a user can move or
clear it in one place. Every plugin that caches asks :func:`cache_root`.
"""

from __future__ import annotations

import os
from pathlib import Path

#: the environment variable that names the cache directory
CACHE_ENV = "SSBM_BENCH_CACHE"


def cache_root() -> Path:
    """$SSBM_BENCH_CACHE, else $XDG_CACHE_HOME/ssbm-bench, else ~/.cache/ssbm-bench (``~`` expanded)."""
    raw = os.environ.get(CACHE_ENV)
    if raw:
        return Path(raw).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "ssbm-bench"
