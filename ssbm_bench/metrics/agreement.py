"""Agreement of several models' predictions: Fleiss' kappa, overall and on
the inputs where any model erred (the ISA paper, Shen et al.,
"On the reliability of feature attribution methods for speech
classification", Table 1). A seed family whose members disagree on their *predictions* cannot
be expected to agree on their *explanations*; ISA is read next to these.

Fleiss' kappa for N inputs, each labelled by the same n raters into one of
k categories, with n_ij the raters giving input i category j:

    P_i  = (sum_j n_ij^2 - n) / (n (n - 1))        P_bar = mean_i P_i
    p_j  = sum_i n_ij / (N n)                      P_e   = sum_j p_j^2
    kappa = (P_bar - P_e) / (1 - P_e)

When every rater gives every input the same single category, P_e = 1 and
kappa is undefined; we return 1.0 (complete agreement) and say so in the
docstring rather than dividing by zero.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import InputError


def fleiss_kappa(predictions: Sequence[Sequence]) -> float:
    """Kappa of a (inputs x raters) table of category labels (any hashables)."""
    rows = [list(r) for r in predictions]
    if not rows:
        raise InputError("Fleiss' kappa of no inputs: expected at least one row of predictions")
    n = len(rows[0])
    if n < 2 or any(len(r) != n for r in rows):
        raise InputError(f"Fleiss' kappa needs the same number (>= 2) of raters for every input, "
                         f"got {sorted({len(r) for r in rows})}")
    cats = sorted({c for r in rows for c in r}, key=repr)
    index = {c: j for j, c in enumerate(cats)}
    counts = np.zeros((len(rows), len(cats)))
    for i, r in enumerate(rows):
        for c in r:
            counts[i, index[c]] += 1
    p_i = (np.square(counts).sum(axis=1) - n) / (n * (n - 1))
    p_bar = p_i.mean()
    p_j = counts.sum(axis=0) / (len(rows) * n)
    p_e = float(np.square(p_j).sum())
    if p_e >= 1.0 - 1e-12:
        return 1.0
    return float((p_bar - p_e) / (1.0 - p_e))


def family_agreement(predictions: Sequence[Sequence], labels: Sequence) -> dict:
    """Accuracy per rater, overall kappa, and kappa on inputs where any rater erred."""
    rows = [list(r) for r in predictions]
    if len(rows) != len(labels):
        raise InputError(f"{len(rows)} prediction rows for {len(labels)} labels: expected one row per input")
    table = np.array([[p == y for p in r] for r, y in zip(rows, labels)], dtype=bool)
    erred = [r for r, ok in zip(rows, table) if not ok.all()]
    return {
        "accuracy": [float(a) for a in table.mean(axis=0)],
        "kappa": fleiss_kappa(rows),
        "error_kappa": fleiss_kappa(erred) if erred else None,
        "inputs": len(rows),
        "inputs_with_an_error": len(erred),
    }
