"""Where ssbm-bench keeps what it derives once and reuses: converted model
weights, forced alignments, corpora synthesised on first use, trained seed
families. One root for all of it, so a user can move or clear it in one place.
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "SSBM_BENCH_CACHE"


def cache_root() -> Path:
    """$SSBM_BENCH_CACHE, else $XDG_CACHE_HOME/ssbm-bench, else ~/.cache/ssbm-bench."""
    raw = os.environ.get(CACHE_ENV)
    if raw:
        return Path(raw).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "ssbm-bench"
