"""What every board's rows share when they are written out: CSV with a fixed
column list (plus the ssbm-bench version), and JSON with non-finite numbers
as null (JSON has no NaN; a missing score is null, not a string)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any, Callable, Sequence

import numpy as np


def json_safe(x: Any) -> Any:
    if isinstance(x, float) and not np.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, list):
        return [json_safe(v) for v in x]
    return x


def rows_to_json(rows: Sequence[Any], **to_dict_kwargs: Any) -> str:
    return json.dumps([json_safe(r.to_dict(**to_dict_kwargs)) for r in rows], indent=2, sort_keys=True) + "\n"


def rows_to_csv(rows: Sequence[Any], fields: Sequence[str], extra_fields: Sequence[str] = (),
                extra: Callable[[Any], dict] | None = None) -> str:
    """One CSV line per row: `fields` read off the row, then `extra(row)`'s columns, then the version."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=[*fields, *extra_fields, "ssbm_bench_version"], lineterminator="\n")
    w.writeheader()
    for r in rows:
        d = {k: getattr(r, k) for k in fields}
        if extra is not None:
            d.update(extra(r))
        d["ssbm_bench_version"] = r.versions.get("ssbm-bench", "")
        w.writerow(d)
    return buf.getvalue()
