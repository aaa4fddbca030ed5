"""Leaderboard submissions: one run exported as one JSON file, and its checks.

Split by concern: :mod:`.guards` (reading bytes safely, the schema),
:mod:`.checks` (the suites, corpora and cells this checkout knows),
:mod:`.export` (a store's run as a submission), :mod:`.validate` (everything
short of re-running: every cell checked by its board, every row re-scored),
:mod:`.verify` (re-running a sample of cells through their boards, and
adding an accepted submission to the leaderboard).
"""

from .checks import CellChecks, corpus_ref, known_suites, parse_label, protocol_source, source_digest
from .export import board_rows_json, export_submission
from .guards import (BOARDS_OF_VERSION, LEADERBOARDS_DIR, MAX_BYTES, MAX_DEPTH, SCHEMA_NAME, SCHEMA_PATH, SCHEMA_VERSION,
                     SCHEMA_VERSIONS, SubmissionError, check_schema, dumps, load_schema, parse_submission_bytes,
                     read_submission, schema_path)
from .validate import RESCORE_RTOL, Validated, cell_rows, compare_rows, validate_submission
from .verify import (VERIFY_RTOL, VerifyContext, VerifyPlan, add_submission, catch_probability, load_accepted,
                     plan_verification, rerunnable, run_verification, sample_size, submission_filename, verify_cells)

__all__ = [
    "BOARDS_OF_VERSION", "CellChecks", "LEADERBOARDS_DIR", "MAX_BYTES", "MAX_DEPTH", "RESCORE_RTOL", "SCHEMA_NAME", "SCHEMA_PATH",
    "SCHEMA_VERSION", "SCHEMA_VERSIONS", "SubmissionError", "VERIFY_RTOL", "Validated", "VerifyContext",
    "add_submission", "board_rows_json", "cell_rows", "check_schema", "compare_rows", "corpus_ref", "dumps",
    "export_submission", "known_suites", "load_accepted", "load_schema", "parse_label", "parse_submission_bytes",
    "protocol_source", "read_submission", "rerunnable", "schema_path", "source_digest", "submission_filename",
    "validate_submission", "verify_cells", "VerifyPlan", "catch_probability", "plan_verification", "run_verification",
    "sample_size",
]
