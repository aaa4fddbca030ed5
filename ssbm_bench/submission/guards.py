"""Reading a submission safely: bytes -> plain JSON values, refusing anything odd, then the schema.

A submission is data only. It is read with the standard JSON parser (never
unpickled, never imported, never executed), limited in size and depth,
refused on non-finite numbers and duplicate keys, then checked against the
published JSON Schema of its version (`leaderboards/schema/`). From
version 3 the schema is an envelope shared by every board, and each cell is
also checked against its board's own schema (``Board.cell_schema``). Every
refusal names the field at fault.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..errors import InputError

SCHEMA_NAME = "ssbm-bench-submission"
#: the version `submit` writes
SCHEMA_VERSION = 3
#: the versions `leaderboard add` reads
SCHEMA_VERSIONS = (1, 2, 3)
LEADERBOARDS_DIR = Path(__file__).resolve().parent.parent.parent / "leaderboards"
#: the boards whose rows versions 1 and 2 carry (fixed by their schemas; from version 3 any installed board)
BOARDS_OF_VERSION = {1: ("ssbm", "deletion"), 2: ("ssbm", "deletion", "isa", "stability")}
#: a file larger than this is refused before it is parsed
MAX_BYTES = 64 * 1024 * 1024
#: deepest nesting of objects and arrays accepted (the format needs 7)
MAX_DEPTH = 32


def schema_path(version: int = SCHEMA_VERSION) -> Path:
    return LEADERBOARDS_DIR / "schema" / f"submission-v{version}.json"


SCHEMA_PATH = schema_path()


class SubmissionError(InputError):
    """A submission that cannot be accepted; the message names the field."""


class _NonFinite:
    def __init__(self, text: str):
        self.text = text


def _parse_float(text: str):
    x = float(text)
    return x if math.isfinite(x) else _NonFinite(text)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict:
    out: dict = {}
    for k, v in pairs:
        if k in out:
            raise SubmissionError(f"key {k!r} appears twice in one object")
        out[k] = v
    return out


def path_str(parts) -> str:
    """`cells[3].raw.thresholds[0]` from a sequence of keys and indices."""
    s = ""
    for p in parts:
        s += f"[{p}]" if isinstance(p, int) else (f".{p}" if s else str(p))
    return s or "(the top level)"


def _scan(value: Any, where: list, depth: int = 0) -> None:
    """Refuse non-finite numbers and deep nesting, naming where they are."""
    if depth > MAX_DEPTH:
        raise SubmissionError(f"{path_str(where)}: nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, _NonFinite):
        raise SubmissionError(f"{path_str(where)}: {value.text} is not a finite number")
    if isinstance(value, dict):
        for k, v in value.items():
            _scan(v, where + [k], depth + 1)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _scan(v, where + [i], depth + 1)


def parse_submission_bytes(data: bytes, source: str = "submission") -> dict:
    if len(data) > MAX_BYTES:
        raise SubmissionError(f"{source}: {len(data)} bytes; a submission may be at most {MAX_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SubmissionError(f"{source}: not UTF-8 text (byte {exc.start}): not a JSON submission") from exc
    try:
        doc = json.loads(text, parse_float=_parse_float, parse_constant=_NonFinite,
                         object_pairs_hook=_no_duplicate_keys)
    except SubmissionError as exc:
        raise SubmissionError(f"{source}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise SubmissionError(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") \
            from None
    except RecursionError:
        raise SubmissionError(f"{source}: nested too deeply to be a submission") from None
    except ValueError as exc:  # e.g. an integer with thousands of digits
        raise SubmissionError(f"{source}: not acceptable JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise SubmissionError(f"{source}: a submission is a JSON object, got a JSON {type(doc).__name__}")
    _scan(doc, [])
    return doc


def read_submission(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise SubmissionError(f"submission {p}: not found (or not a regular file)")
    size = p.stat().st_size
    if size > MAX_BYTES:
        raise SubmissionError(f"submission {p}: {size} bytes; a submission may be at most {MAX_BYTES} bytes")
    with p.open("rb") as fh:
        data = fh.read(MAX_BYTES + 1)
    return parse_submission_bytes(data, f"submission {p}")


# --- schema ------------------------------------------------------------------

def load_schema(version: int = SCHEMA_VERSION) -> dict:
    return json.loads(schema_path(version).read_text())


def short(value: Any, n: int = 80) -> str:
    """A value for a message, cut to n characters."""
    s = json.dumps(value) if not isinstance(value, str) else repr(value)
    return s if len(s) <= n else s[: n - 3] + "..."


def _schema_message(err) -> str:
    where = path_str(list(err.absolute_path))
    v = err.validator
    if v == "not":
        return f"{where}: {short(err.instance)} must not contain '..'"
    if v == "pattern":
        return f"{where}: {short(err.instance)} is not allowed here (must match {err.validator_value})"
    if v == "type":
        return f"{where}: must be {err.validator_value if isinstance(err.validator_value, str) else ' or '.join(err.validator_value)}, got {short(err.instance)}"
    if v in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return f"{where}: {short(err.instance)} is out of range ({v} {err.validator_value})"
    if v in ("maxItems", "maxLength", "maxProperties"):
        return f"{where}: too large ({v} {err.validator_value})"
    if v == "additionalProperties":
        return f"{where}: {err.message}"
    if v in ("const", "enum"):
        return f"{where}: {short(err.instance)} is not one of {short(err.validator_value, 120)}"
    return f"{where}: {err.message[:300]}"


def _validator_class():
    """Draft 2020-12, except that an "integer" must be a JSON integer (the
    standard also accepts 1.0, which would not index a list)."""
    import jsonschema

    base = jsonschema.Draft202012Validator
    checker = base.TYPE_CHECKER.redefine(
        "integer", lambda _checker, x: isinstance(x, int) and not isinstance(x, bool))
    return jsonschema.validators.extend(base, type_checker=checker)


def _first_error(schema: dict, doc: Any) -> str | None:
    from jsonschema.exceptions import best_match

    err = best_match(_validator_class()(schema).iter_errors(doc))
    return None if err is None else _schema_message(err)


def check_schema(doc: dict, registry=None) -> None:
    """The envelope of the submission's version; from version 3 also each cell against its board's schema."""
    if doc.get("schema") != SCHEMA_NAME:
        raise SubmissionError(f"schema: {short(doc.get('schema'))} — not an ssbm-bench submission "
                              f"(expected {SCHEMA_NAME!r})")
    version = doc.get("schema_version")
    if isinstance(version, bool) or version not in SCHEMA_VERSIONS:
        raise SubmissionError(f"schema_version: {short(version)} is not supported; this ssbm-bench reads "
                              f"submission schema versions {', '.join(map(str, SCHEMA_VERSIONS))}")
    envelope = load_schema(version)
    found = _first_error(envelope, doc)
    if found is not None:
        raise SubmissionError(found)
    if version < 3:
        return  # versions 1 and 2 name their boards' cell schemas themselves
    from ..plugins import get_registry

    registry = registry or get_registry()
    known = registry.names("board")
    for i, cell in enumerate(doc["cells"]):
        if cell["board"] not in known:
            raise SubmissionError(f"cells[{i}].board: {cell['board']!r} is not an installed board "
                                  f"({', '.join(known)})")
        board = registry.board(cell["board"])
        if not board.cell_schema:
            continue
        fragment = {k: v for k, v in board.cell_schema.items() if k != "$defs"}
        schema = {"$defs": {**envelope["$defs"], **board.cell_schema.get("$defs", {})}, **fragment}
        found = _first_error(schema, cell)
        if found is not None:
            top = "(the top level)"
            raise SubmissionError(f"cells[{i}]{found[len(top):]}" if found.startswith(top) else f"cells[{i}].{found}")


def dumps(doc: dict) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False) + "\n"
