"""Run flite and festival and read word times out of the engines themselves.

Both engines build an utterance structure in which each Word owns syllables
and each syllable owns Segments (phones) with end times; the waveform is
generated from exactly those durations. A word therefore spans from the end
of the segment before its first phone to the end of its last phone, the
feature paths below, which are the ones flite and festival use themselves.

* flite: the command line prints segment end times (``-psdur``) but not which
  word owns which segment, so the utterance structure is read from libflite
  (the library the ``flite`` binary links) through ctypes. The waveform comes
  from the ``flite`` command, one fresh process per utterance, because the
  clustergen voices (rms, awb) draw excitation noise from the C library's
  ``rand()``: a second synthesis in the same process sounds slightly
  different, so only a fresh process is reproducible whatever was built
  before. The library's segment names and end times are checked against the
  command's ``-psdur`` output, so the two always describe the same utterance.
* festival: one ``festival -b`` process synthesises every sentence, saves the
  waveform and prints each Word's start/end through the same feature paths.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ssbm_bench.errors import InputError

WORD_START = "R:SylStructure.daughter1.daughter1.R:Segment.p.end"
WORD_END = "R:SylStructure.daughtern.daughtern.R:Segment.end"


class EngineError(InputError):
    """A speech engine that is missing, failed, or disagrees with itself."""


@dataclass(frozen=True)
class Synthesis:
    """One synthesised sentence: int16 samples and the engine's words with times (s)."""

    samples: np.ndarray
    sample_rate: int
    words: list[tuple[str, float, float]]


def _run(cmd: list[str], what: str, check: bool = True) -> subprocess.CompletedProcess:
    if shutil.which(cmd[0]) is None:
        raise EngineError(f"{what}: the program {cmd[0]!r} is not installed (Debian: apt-get install {cmd[0]})")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise EngineError(
            f"{what}: {' '.join(cmd[:3])} ... exited with {proc.returncode}: {proc.stderr.strip()[-500:]}"
        )
    return proc


def flite_version() -> str:
    """Upstream version as ``flite --version`` prints it, e.g. "2.2-current Sep 2018"."""
    out = _run(["flite", "--version"], "flite version", check=False).stdout  # exits 1 after printing
    m = re.search(r"version:\s*flite-(.+?)\s*\(", out)
    if not m:
        raise EngineError(f"flite --version: expected a line 'version: flite-X (url)', got {out.strip()!r}")
    return m.group(1).strip()


def festival_version() -> str:
    """Upstream version as ``festival --version`` prints it, e.g. "2.5.0:release December 2017"."""
    out = _run(["festival", "--version"], "festival version").stdout
    m = re.search(r"System:\s*(.+)$", out.strip())
    if not m:
        raise EngineError(f"festival --version: expected '... System: X', got {out.strip()!r}")
    return m.group(1).strip()


def debian_package_version(package: str) -> str | None:
    """The installed Debian package version, or None off Debian: tells apart rebuilds of one upstream."""
    if shutil.which("dpkg-query") is None:
        return None
    proc = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True)
    if proc.returncode != 0 or not proc.stdout.strip():
        return None
    return proc.stdout.strip()


# ----------------------------------------------------------------- flite --


class _Wave(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_char_p),
        ("sample_rate", ctypes.c_int),
        ("num_samples", ctypes.c_int),
        ("num_channels", ctypes.c_int),
        ("samples", ctypes.POINTER(ctypes.c_short)),
    ]


@lru_cache(maxsize=None)
def _libflite() -> ctypes.CDLL:
    name = "libflite.so.1"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        found = ctypes.util.find_library("flite")
        if found is None:
            raise EngineError("flite: the library libflite is not installed (Debian: apt-get install libflite1)")
        lib = ctypes.CDLL(found)
    P, S = ctypes.c_void_p, ctypes.c_char_p
    for fn, res, args in [
        ("flite_init", ctypes.c_int, []),
        ("flite_synth_text", P, [S, P]),
        ("utt_relation", P, [P, S]),
        ("relation_head", P, [P]),
        ("item_next", P, [P]),
        ("item_feat_string", S, [P, S]),
        ("ffeature_float", ctypes.c_float, [P, S]),
        ("delete_utterance", None, [P]),
    ]:
        f = getattr(lib, fn)
        f.restype, f.argtypes = res, args
    lib.flite_init()
    return lib


@lru_cache(maxsize=None)
def _flite_voice_lib(voice: str) -> tuple[ctypes.CDLL, int]:
    """The voice's library (kept referenced) and its cst_voice handle; needs flite_init first."""
    _libflite()
    try:
        vlib = ctypes.CDLL(f"libflite_cmu_us_{voice}.so.1")
    except OSError as exc:
        raise EngineError(f"flite voice {voice!r}: library libflite_cmu_us_{voice}.so.1 not found ({exc})") from exc
    register = getattr(vlib, f"register_cmu_us_{voice}")
    register.restype, register.argtypes = ctypes.c_void_p, [ctypes.c_char_p]
    handle = register(None)
    if not handle:
        raise EngineError(f"flite voice {voice!r}: register_cmu_us_{voice} returned NULL")
    return vlib, handle


def _items(lib, utt, relation: str):
    item = lib.relation_head(lib.utt_relation(utt, relation.encode()))
    while item:
        yield item
        item = lib.item_next(item)


def _flite_structure(voice: str, text: str) -> tuple[list[tuple[str, float, float]], list[tuple[str, float]]]:
    """Words (name, start, end) and segments (name, end) from libflite's utterance structure."""
    lib = _libflite()
    utt = lib.flite_synth_text(text.encode(), _flite_voice_lib(voice)[1])
    if not utt:
        raise EngineError(f"flite voice {voice!r}: synthesis of {text!r} failed")
    try:
        words = [
            (
                lib.item_feat_string(w, b"name").decode(),
                float(lib.ffeature_float(w, WORD_START.encode())),
                float(lib.ffeature_float(w, WORD_END.encode())),
            )
            for w in _items(lib, utt, "Word")
        ]
        segs = [
            (lib.item_feat_string(s, b"name").decode(), float(lib.ffeature_float(s, b"end")))
            for s in _items(lib, utt, "Segment")
        ]
    finally:
        lib.delete_utterance(utt)
    return words, segs


def synth_flite(voice: str, text: str) -> Synthesis:
    """Synthesise `text` with flite `voice` (a fresh process), with the engine's word times."""
    import soundfile as sf

    words, segs = _flite_structure(voice, text)
    with tempfile.TemporaryDirectory(prefix="ssbm-flite-") as tmp:
        wav = Path(tmp) / "out.wav"
        out = _run(["flite", "-voice", voice, "-psdur", "-t", text, "-o", str(wav)], f"flite voice {voice!r}").stdout
        samples, sr = sf.read(str(wav), dtype="int16")
    printed = [tok.rsplit(":", 1) for tok in out.split()]
    same = len(printed) == len(segs) and all(
        p[0] == name and abs(float(p[1]) - end) <= 0.0006 for p, (name, end) in zip(printed, segs)
    )
    if not same:
        raise EngineError(
            f"flite voice {voice!r}, text {text!r}: libflite's segments {segs} differ from "
            f"`flite -psdur` output {out.strip()!r}; the library and the flite binary must be the same build"
        )
    return Synthesis(np.asarray(samples, dtype=np.int16), int(sr), words)


# -------------------------------------------------------------- festival --

_FESTIVAL_SCRIPT = """
(define (ssbm_say text path)
  (let ((utt (SynthText text)))
    (utt.save.wave utt path 'riff)
    (format t "UTT %s\\n" path)
    (mapcar
     (lambda (w)
       (format t "WORD %s %s %s\\n" (item.name w)
               (item.feat w "{start}") (item.feat w "{end}")))
     (utt.relation.items utt 'Word))
    t))
""".format(start=WORD_START, end=WORD_END)


def _scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def synth_festival(voice: str, texts: list[str]) -> list[Synthesis]:
    """Synthesise every text with festival voice `voice` in one process (start-up dominates)."""
    import soundfile as sf

    with tempfile.TemporaryDirectory(prefix="ssbm-festival-") as tmp:
        paths = [Path(tmp) / f"{i:03d}.wav" for i in range(len(texts))]
        lines = [f"(voice_{voice})", _FESTIVAL_SCRIPT]
        lines += [f"(ssbm_say {_scheme_string(t)} {_scheme_string(str(p))})" for t, p in zip(texts, paths)]
        script = Path(tmp) / "synth.scm"
        script.write_text("\n".join(lines) + "\n")
        proc = _run(["festival", "-b", str(script)], f"festival voice {voice!r}")
        if "SIOD ERROR" in proc.stdout + proc.stderr:
            raise EngineError(f"festival voice {voice!r}: {(proc.stdout + proc.stderr).strip()[-500:]}")
        words_of: dict[str, list[tuple[str, float, float]]] = {}
        current = None
        for line in proc.stdout.splitlines():
            if line.startswith("UTT "):
                current = words_of.setdefault(line[4:].strip(), [])
            elif line.startswith("WORD ") and current is not None:
                name, start, end = line[5:].rsplit(" ", 2)
                current.append((name, float(start), float(end)))
        out = []
        for text, path in zip(texts, paths):
            if str(path) not in words_of or not path.is_file():
                raise EngineError(
                    f"festival voice {voice!r}: no waveform or words for {text!r}; output: {proc.stdout[-500:]!r}"
                )
            samples, sr = sf.read(str(path), dtype="int16")
            out.append(Synthesis(np.asarray(samples, dtype=np.int16), int(sr), words_of[str(path)]))
    return out
