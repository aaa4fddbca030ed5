"""Progress bars for long work (tqdm on stderr), one place for their look.

A run's phases each get a bar: the clean pass that finds the utterances a
model recognises, the noise calibration, the cells. With ``--no-progress``
the bars are off and the run's log still prints one line per phase.
"""

from __future__ import annotations

import sys


def progress_bar(total: int | None, desc: str, unit: str, enabled: bool):
    """A tqdm bar on stderr (a no-op bar when not enabled or there is nothing to count)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled or not total, file=sys.stderr,
                dynamic_ncols=True, leave=False)
