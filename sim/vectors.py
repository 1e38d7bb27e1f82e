"""Vector packing through the layout JSON (docs/interfaces.md) and corner/random input generators.

An element ``e`` of a port occupies ``port[offset : offset + width]`` (LSB first); its value is
``mantissa * 2**-f``. Packed port words are Python ints; on disk they are hex text, one word a line, the format
both the cocotb testbench and ``$readmemh`` read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hgq.fixed import from_mantissa, to_mantissa

__all__ = [
    "Port",
    "alternating_vectors",
    "corner_vectors",
    "decode_word",
    "load_vectors",
    "mantissas_to_values",
    "pack",
    "random_vectors",
    "read_bin",
    "read_hex",
    "unpack",
    "values_to_mantissas",
    "write_bin",
    "write_hex",
]

_CHUNK = 1 << 16
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


@dataclass(frozen=True)
class Port:
    """One side (``input`` or ``output``) of a layout, as numpy arrays over the flat elements."""

    width: int
    shape: tuple[int, ...]
    offset: np.ndarray
    bits: np.ndarray
    signed: np.ndarray
    f: np.ndarray

    @classmethod
    def from_layout(cls, layout: dict, side: str) -> Port:
        """Parse ``layout[side]``; raises ``ValueError`` naming the problem when it is malformed."""
        if side not in ("input", "output"):
            raise ValueError(f"side must be 'input' or 'output', got {side!r}")
        try:
            p = layout[side]
            els = sorted(p["elements"], key=lambda e: e["index"])
            shape = tuple(int(s) for s in p["shape"])
            width = int(p["width"])
            port = cls(
                width=width,
                shape=shape,
                offset=np.array([int(e["offset"]) for e in els], dtype=np.int64),
                bits=np.array([int(e["width"]) for e in els], dtype=np.int64),
                signed=np.array([bool(e["signed"]) for e in els], dtype=bool),
                f=np.array([int(e["f"]) for e in els], dtype=np.int64),
            )
        except (KeyError, TypeError) as err:
            raise ValueError(f"layout[{side!r}] is malformed ({err!r}); see docs/interfaces.md 'Layout JSON'") from err
        n = int(np.prod(shape, dtype=np.int64))
        if len(els) != n or [e["index"] for e in els] != list(range(n)):
            raise ValueError(f"layout[{side!r}] must list elements 0..{n - 1} for shape {list(shape)}")
        if width < 1 or np.any(port.bits < 0) or np.any(port.offset + port.bits > width):
            raise ValueError(f"layout[{side!r}]: element fields exceed the port width {width}")
        if np.any(port.bits > 62):
            raise ValueError(f"layout[{side!r}]: elements wider than 62 bits are not supported")
        return port

    @property
    def n(self) -> int:
        """Number of flat elements."""
        return len(self.bits)

    @property
    def lo(self) -> np.ndarray:
        """Smallest mantissa per element (0 for pruned elements)."""
        return np.where(self.signed & (self.bits > 0), -(np.int64(1) << np.maximum(self.bits - 1, 0)), 0)

    @property
    def hi(self) -> np.ndarray:
        """Largest mantissa per element (0 for pruned elements)."""
        b = np.where(self.signed, self.bits - 1, self.bits)
        return np.where(self.bits > 0, (np.int64(1) << np.maximum(b, 0)) - 1, 0)

    @property
    def mask(self) -> int:
        """Bit mask of the port bits that belong to some element."""
        m = 0
        for o, b in zip(self.offset.tolist(), self.bits.tolist(), strict=True):
            m |= ((1 << b) - 1) << o
        return m


def values_to_mantissas(values, port: Port, what: str = "x") -> np.ndarray:
    """Float values ``[N, *shape]`` → int64 mantissas ``[N, n]``; refuses off-grid or out-of-range values."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim < 1 or v.shape[1:] != port.shape:
        raise ValueError(f"{what} has shape {v.shape}; expected [N, *{list(port.shape)}] from the layout")
    v = v.reshape(len(v), port.n)
    finite = np.isfinite(v)
    if not finite.all():
        r, e = np.argwhere(~finite)[0]
        raise ValueError(
            f"{what}[{r}] element {e} is {v[r, e]}: {int(np.sum(~finite))} value(s) are NaN or infinite; "
            "vectors must be finite values on the port's grid"
        )
    try:
        m = to_mantissa(v, port.f[None, :])
    except ValueError as err:
        raise ValueError(f"{what}: {err} (quantize with the model's input quantizer / design.predict first)") from err
    bad = (m < port.lo) | (m > port.hi)
    if np.any(bad):
        r, e = np.argwhere(bad)[0]
        raise ValueError(
            f"{what}[{r}] element {e} = {v[r, e]} does not fit its field "
            f"({'signed' if port.signed[e] else 'unsigned'} {port.bits[e]} bits, f={port.f[e]}): "
            f"mantissa {m[r, e]} outside [{port.lo[e]}, {port.hi[e]}]"
        )
    return m


def load_vectors(path: str | Path, layout: dict) -> tuple[np.ndarray, np.ndarray | None]:
    """``(x, y)`` of a vectors file (``.npz``, docs/interfaces.md): ``x`` ``[N, *input_shape]`` (N >= 1) and
    ``y`` ``[N, *output_shape]`` or ``None``. The file is read by :func:`hgq.data.vectors.read_vectors_file` (the
    one reader); here the shapes are checked against the design's layout. Raises ``ValueError`` naming the file
    and the problem (not an ``.npz``, no ``x``, not numbers, wrong shape, NaN or infinite values, no vectors)."""
    from hgq.data.vectors import check_vector_rows, read_vectors_file  # noqa: PLC0415

    where = f"vectors file {path}"
    x, y = read_vectors_file(path, strict=False)
    for key, side, a in (("x", "input", x), ("y", "output", y)):
        if a is None:
            continue
        shape = tuple(int(n) for n in layout[side]["shape"])
        if a.ndim < 1 or a.shape[1:] != shape:
            raise ValueError(
                f"{where}: {key!r} has shape {list(a.shape)}; the design's {side} needs [N, *{list(shape)}]"
            )
    return check_vector_rows(x, y, where)


def mantissas_to_values(m, port: Port) -> np.ndarray:
    """int64 mantissas ``[N, n]`` → float values ``[N, *shape]``."""
    m = np.asarray(m, dtype=np.int64)
    return from_mantissa(m, port.f[None, :]).reshape(len(m), *port.shape)


def _bit_matrix(m: np.ndarray, port: Port) -> np.ndarray:
    """``[N, width]`` uint8 bits (LSB first) of the packed words of mantissas ``m`` ``[N, n]``."""
    bits = np.zeros((len(m), port.width), dtype=np.uint8)
    for e in range(port.n):
        w = int(port.bits[e])
        if w == 0:
            continue
        u = (m[:, e] & ((np.int64(1) << w) - 1)).astype(np.uint64)
        o = int(port.offset[e])
        bits[:, o : o + w] = ((u[:, None] >> np.arange(w, dtype=np.uint64)) & 1).astype(np.uint8)
    return bits


def pack(m, port: Port) -> list[int]:
    """Packed port words (Python ints) of mantissas ``[N, n]`` (already range-checked)."""
    m = np.asarray(m, dtype=np.int64)
    out: list[int] = []
    nbytes = (port.width + 7) // 8
    for s in range(0, len(m), _CHUNK):
        bits = _bit_matrix(m[s : s + _CHUNK], port)
        by = np.packbits(bits, axis=1, bitorder="little")
        out.extend(int.from_bytes(row.tobytes(), "little") for row in by.reshape(-1, nbytes))
    return out


def unpack(words, port: Port) -> np.ndarray:
    """int64 mantissas ``[N, n]`` of packed port words (two's complement for signed elements)."""
    words = list(words)
    out = np.zeros((len(words), port.n), dtype=np.int64)
    for e in range(port.n):
        w, o, s = int(port.bits[e]), int(port.offset[e]), bool(port.signed[e])
        if w == 0:
            continue
        mk = (1 << w) - 1
        col = [(int(wd) >> o) & mk for wd in words]
        a = np.array(col, dtype=np.int64)
        if s:
            a = np.where(a >= (1 << (w - 1)), a - (1 << w), a)
        out[:, e] = a
    return out


def decode_word(word: int, port: Port) -> dict:
    """One word as ``{"mantissas": [...], "values": [...]}`` (JSON-ready)."""
    m = unpack([word], port)
    return {"mantissas": m[0].tolist(), "values": mantissas_to_values(m, port).reshape(-1).tolist()}


def write_hex(path: str | Path, m, port: Port) -> Path:
    """Write packed words of mantissas ``[N, n]`` as hex text (one word a line, ``$readmemh`` format)."""
    m = np.asarray(m, dtype=np.int64)
    ndig = (port.width + 3) // 4
    path = Path(path)
    with path.open("wb") as fh:
        for s in range(0, len(m), _CHUNK):
            bits = _bit_matrix(m[s : s + _CHUNK], port)
            pad = np.zeros((len(bits), ndig * 4), dtype=np.uint8)
            pad[:, : port.width] = bits
            nib = pad.reshape(len(bits), ndig, 4) @ np.array([1, 2, 4, 8], dtype=np.uint8)
            txt = np.empty((len(bits), ndig + 1), dtype=np.uint8)
            txt[:, :ndig] = _HEX[nib[:, ::-1]]
            txt[:, ndig] = ord("\n")
            fh.write(txt.tobytes())
    return path


def write_bin(path: str | Path, m, port: Port) -> Path:
    """Write packed words of mantissas ``[N, n]`` as raw bytes, ``ceil(width / 8)`` a word, most significant byte
    first: the layout ``$fread`` fills a ``reg [width-1:0] mem [..]`` from."""
    m = np.asarray(m, dtype=np.int64)
    path = Path(path)
    with path.open("wb") as fh:
        for s in range(0, len(m), _CHUNK):
            by = np.packbits(_bit_matrix(m[s : s + _CHUNK], port), axis=1, bitorder="little")
            fh.write(np.ascontiguousarray(by[:, ::-1]).tobytes())
    return path


def read_bin(path: str | Path, port: Port) -> list[int]:
    """Words of a file written by :func:`write_bin`."""
    nb = (port.width + 7) // 8
    data = Path(path).read_bytes()
    return [int.from_bytes(data[i : i + nb], "big") for i in range(0, len(data), nb)]


def read_hex(path: str | Path) -> list[int]:
    """Words of a hex text file written by :func:`write_hex`."""
    with Path(path).open() as fh:
        return [int(line, 16) for line in fh if line.strip()]


def _as_values(m: np.ndarray, port: Port) -> np.ndarray:
    return mantissas_to_values(m, port)


def corner_vectors(layout: dict) -> np.ndarray:
    """Input values ``[K, *shape]``: all max, all min, zero, both alternating bit patterns, and each element
    alone at its max and at its min (the per-element ones only for inputs of at most 64 elements)."""
    port = Port.from_layout(layout, "input")
    rows = [port.hi, port.lo, np.zeros(port.n, dtype=np.int64)]
    rows += list(alternating_mantissas(port))
    if port.n <= 64:
        for e in range(port.n):
            if port.bits[e] == 0:
                continue
            for v in (port.hi[e], port.lo[e]):
                r = np.zeros(port.n, dtype=np.int64)
                r[e] = v
                rows.append(r)
    return _as_values(np.array(rows, dtype=np.int64), port)


def alternating_mantissas(port: Port) -> tuple[np.ndarray, np.ndarray]:
    """Mantissas of the packed words ``0b…0101`` and ``0b…1010`` over the input port."""
    out = []
    for start in (0, 1):
        word = sum(1 << b for b in range(start, port.width, 2))
        out.append(unpack([word], port)[0])
    return out[0], out[1]


def alternating_vectors(layout: dict) -> np.ndarray:
    """Input values ``[2, *shape]`` of the two alternating bit patterns."""
    port = Port.from_layout(layout, "input")
    return _as_values(np.array(alternating_mantissas(port)), port)


def random_vectors(layout: dict, n: int, seed: int = 0) -> np.ndarray:
    """``n`` input values ``[n, *shape]`` with uniform random mantissas over each element's full range."""
    port = Port.from_layout(layout, "input")
    rng = np.random.default_rng(seed)
    m = rng.integers(port.lo, port.hi, size=(n, port.n), endpoint=True, dtype=np.int64)
    return _as_values(m, port)
