"""What every board's figures share: file-name slugs, a figure on the Agg canvas, a colour cycle.

matplotlib's object API with the Agg canvas is used directly (no pyplot),
so drawing never touches a display or global figure state. Each board draws
its own figures (``Board.figures``) with these helpers.
"""

from __future__ import annotations

import re

#: pixels per inch of the written PNGs
DPI = 100

_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


def slug(text: str) -> str:
    """A file-name-safe form of a label (``whisper-tiny-en``, ``bubble[n_mixtures=20]`` -> ``bubble-n_mixtures-20``)."""
    s = re.sub(r"[^A-Za-z0-9_.]+", "-", str(text)).strip("-.")
    return s or "x"


def new_figure(width_in: float, height_in: float):
    """A matplotlib Figure with its own Agg canvas and constrained layout."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def colour(i: int) -> str:
    return _COLOURS[i % len(_COLOURS)]


def figure_per_group(rows, key, draw, out_dir, suffix: str) -> list:
    """One figure per group of rows: ``draw(members, path)`` for each ``key(row)`` (None leaves a row out),
    written to OUT_DIR/slug--slug--...--SUFFIX.png; returns the paths."""
    from pathlib import Path

    groups: dict[tuple, list] = {}
    for r in rows:
        k = key(r)
        if k is not None:
            groups.setdefault(k, []).append(r)
    if groups:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
    return [draw(members, Path(out_dir) / ("--".join(slug(x) for x in k) + f"--{suffix}.png"))
            for k, members in groups.items()]
