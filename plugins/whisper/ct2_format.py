"""Reader for CTranslate2's ``model.bin`` (binary format version 6).

We read the file ourselves instead of asking ctranslate2 for its weights
because ctranslate2 exposes no API to get variables out of a loaded model,
and the white-box face of Whisper needs those weights in torch.

Layout (little-endian; strings are a uint16 length that counts a trailing
NUL, then the bytes):

    uint32 version (6) | string spec name | uint32 revision | uint32 n_vars
    n_vars x [ string name | uint8 rank | rank x uint32 dims
               | uint8 dtype | uint32 n_bytes | n_bytes of data ]
    uint32 n_aliases | n_aliases x [ string alias | string target ]

dtype codes: 0 float32, 1 int8, 2 int16, 3 int32, 4 float16, 5 bfloat16.
bfloat16 has no numpy dtype: it is widened to float32 on read (exact).

A model may ship split in parts (Whisper base in two wheels); the parts are
one byte stream joined in order, so :func:`read_ct2_model` takes a list.
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ssbm_bench.errors import InputError

SUPPORTED_VERSION = 6

#: dtype code -> (name, numpy dtype); bfloat16 is read as uint16 and widened
DTYPES: dict[int, tuple[str, np.dtype]] = {
    0: ("float32", np.dtype("<f4")),
    1: ("int8", np.dtype("i1")),
    2: ("int16", np.dtype("<i2")),
    3: ("int32", np.dtype("<i4")),
    4: ("float16", np.dtype("<f2")),
    5: ("bfloat16", np.dtype("<u2")),
}


@dataclass(frozen=True)
class Ct2Model:
    """The variables of one CTranslate2 model, by name, with aliases resolved on lookup."""

    source: str
    version: int
    spec: str
    revision: int
    variables: dict[str, np.ndarray]
    aliases: dict[str, str] = field(default_factory=dict)

    def __contains__(self, name: str) -> bool:
        return name in self.variables or name in self.aliases

    def get(self, name: str) -> np.ndarray:
        """The array named `name` (following an alias), or InputError naming the file."""
        target = self.aliases.get(name, name)
        if target not in self.variables:
            raise InputError(f"CTranslate2 model {self.source}: no variable {name!r} (spec {self.spec})")
        return self.variables[target]

    def scalar(self, name: str) -> int | float:
        a = self.get(name)
        if a.size != 1:
            raise InputError(f"CTranslate2 model {self.source}: {name!r} is not a scalar (shape {a.shape})")
        return a.reshape(()).item()

    def is_alias_of(self, name: str, target: str) -> bool:
        return self.aliases.get(name) == target


class _Cursor:
    """Sequential reads over one bytes object, failing with the file's name."""

    def __init__(self, data: bytes | memoryview, source: str):
        self.data = memoryview(data)
        self.pos = 0
        self.source = source

    def take(self, n: int, what: str) -> memoryview:
        end = self.pos + n
        if n < 0 or end > len(self.data):
            raise InputError(
                f"CTranslate2 model {self.source}: file ends early while reading {what} "
                f"(needs {n} bytes at offset {self.pos}, file has {len(self.data)}); truncated or not a model.bin"
            )
        out = self.data[self.pos:end]
        self.pos = end
        return out

    def unpack(self, fmt: str, what: str):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))

    def u8(self, what: str) -> int:
        return self.unpack("<B", what)[0]

    def u32(self, what: str) -> int:
        return self.unpack("<I", what)[0]

    def string(self, what: str) -> str:
        (n,) = self.unpack("<H", what)
        raw = bytes(self.take(n, what))
        if n == 0 or raw[-1:] != b"\0":
            raise InputError(f"CTranslate2 model {self.source}: malformed string for {what} at offset {self.pos - n}")
        try:
            return raw[:-1].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"CTranslate2 model {self.source}: {what} is not UTF-8 ({exc})") from exc


def _as_paths(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    if isinstance(paths, (str, os.PathLike)):
        return [Path(paths)]
    return [Path(p) for p in paths]


def _describe(paths: list[Path]) -> str:
    return str(paths[0]) if len(paths) == 1 else " + ".join(str(p) for p in paths)


def read_bytes(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> bytes:
    """The model's bytes, parts joined in the order given."""
    ps = _as_paths(paths)
    for p in ps:
        if not p.is_file():
            raise InputError(f"CTranslate2 model part {p}: not found")
    return b"".join(p.read_bytes() for p in ps)


def digest(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> str:
    """SHA-256 of the joined model bytes: the identity of the weights (cache key, results)."""
    h = hashlib.sha256()
    for p in _as_paths(paths):
        if not p.is_file():
            raise InputError(f"CTranslate2 model part {p}: not found")
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
    return h.hexdigest()


def parse_ct2_model(data: bytes, source: str = "<bytes>") -> Ct2Model:
    """Parse model.bin bytes; any deviation from format 6 is an InputError naming `source`."""
    cur = _Cursor(data, source)
    version = cur.u32("the format version")
    if not 0 < version < 100:
        raise InputError(f"CTranslate2 model {source}: not a CTranslate2 model.bin "
                         f"(its first word, {version:#x}, is no format version)")
    if version != SUPPORTED_VERSION:
        raise InputError(f"CTranslate2 model {source}: binary format version {version} is not supported "
                         f"(this reader knows version {SUPPORTED_VERSION}, which ctranslate2 4.x writes)")
    spec = cur.string("the spec name")
    revision = cur.u32("the spec revision")
    n_vars = cur.u32("the variable count")
    variables: dict[str, np.ndarray] = {}
    for i in range(n_vars):
        name = cur.string(f"the name of variable {i}")
        rank = cur.u8(f"the rank of {name!r}")
        shape = cur.unpack(f"<{rank}I", f"the shape of {name!r}") if rank else ()
        code = cur.u8(f"the dtype of {name!r}")
        if code not in DTYPES:
            known = ", ".join(f"{k} {v[0]}" for k, v in DTYPES.items())
            raise InputError(f"CTranslate2 model {source}: variable {name!r} has unknown dtype code {code} "
                             f"(known: {known})")
        dtype_name, dtype = DTYPES[code]
        n_bytes = cur.u32(f"the byte count of {name!r}")
        expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if n_bytes != expected:
            raise InputError(f"CTranslate2 model {source}: variable {name!r} of shape {tuple(shape)} {dtype_name} "
                             f"should hold {expected} bytes, the file says {n_bytes}")
        raw = cur.take(n_bytes, f"the data of {name!r}")
        array = np.frombuffer(raw, dtype=dtype).reshape(shape)
        if dtype_name == "bfloat16":
            array = (array.astype(np.uint32) << 16).view(np.float32)
        variables[name] = array
    n_aliases = cur.u32("the alias count")
    aliases = {}
    for i in range(n_aliases):
        alias = cur.string(f"alias {i}")
        target = cur.string(f"the target of alias {alias!r}")
        if target not in variables:
            raise InputError(f"CTranslate2 model {source}: alias {alias!r} points at unknown variable {target!r}")
        aliases[alias] = target
    if cur.pos != len(cur.data):
        raise InputError(f"CTranslate2 model {source}: {len(cur.data) - cur.pos} unexpected bytes after the aliases "
                         f"(wrong part order, or a part appended twice?)")
    return Ct2Model(source, version, spec, revision, variables, aliases)


def read_ct2_model(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> Ct2Model:
    """Read model.bin, or its parts joined in the order given."""
    ps = _as_paths(paths)
    if not ps:
        raise InputError("CTranslate2 model: no file given")
    return parse_ct2_model(read_bytes(ps), _describe(ps))
