"""Helpers for end-to-end tests that drive the real `ssbm-bench` CLI."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent / "ssbm-bench"

#: utterances of the committed synthetic corpus that pocketsphinx recognises
#: fully when clean (23 of 100 do; measured by scanning the corpus), named so
#: the tests do not pay for the scan
RECOGNISED = ["rms_h02_01", "awb_h02_01", "kal16_h02_01"]

#: utterances Whisper tiny.en recognises fully when clean (from a quick-suite scan)
WHISPER_RECOGNISED = ["awb_h01_02", "slt_hts_h01_02"]

TINY_SUITE = """
[suite]
name = "{name}"
description = "end-to-end test: two utterances, one word each, two thresholds"
[corpus]
name = "synthetic"
utterances = {utterances}
words_per_utterance = 1
{methods}
[[models]]
name = "{model}"
[[fills]]
name = "white-noise"
[ssbm]
thresholds = {{ magnitude = [-40.0, -20.0], score = [0.1, 0.5], pvalue = [0.01, 0.1] }}
calibration = {{ levels_db = {levels}, max_accuracy = 0.1, utterances = 1 }}
[run]
executor = "{executor}"
"""


def write_suite(path: Path, name: str, methods: list[str], limit: int = 2, executor: str = "inprocess",
                model: str = "pocketsphinx", utterances: list[str] | None = None,
                levels_db: tuple[float, ...] = (-20.0, -10.0, 0.0)) -> Path:
    block = "\n".join(f'[[methods]]\nname = "{m}"' for m in methods)
    ids = (utterances if utterances is not None else RECOGNISED)[:limit]
    utterance_list = "[" + ", ".join(f'"{u}"' for u in ids) + "]"
    path.write_text(TINY_SUITE.format(name=name, utterances=utterance_list, methods=block, executor=executor,
                                      model=model, levels=list(levels_db)))
    return path


def cli(*args: str, check: bool = True, env: dict | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    e = {**os.environ, **(env or {})}
    proc = subprocess.run([str(BIN), *args], capture_output=True, text=True, env=e, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"ssbm-bench {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def leaderboard_json(db: Path) -> list[dict]:
    return json.loads(cli("leaderboard", "--db", str(db), "--format", "json").stdout)


@contextlib.contextmanager
def installed(package_dir: Path, distribution: str):
    """A plugin package installed into this environment for the block, exactly as a contributor installs one
    (pip, entry points and all), and uninstalled after."""
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["install", "--no-build-isolation", "--no-deps", str(package_dir)], check=True)
    try:
        yield
    finally:
        subprocess.run(pip + ["uninstall", "-y", distribution], check=True)
