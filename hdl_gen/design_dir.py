"""The design directory, in one place: its format, how it is written, read back and validated.

A design directory holds ``<name>.v``, ``<name>.layout.json`` (docs/interfaces.md), optionally
``<name>.report.json`` and ``<name>.graph.json`` (what ``hdl_gen.load_design`` needs for ``predict``), and
``manifest.json`` (format, name, SHA-256 and size of every file), written last. Every failure to read one is a
:class:`DesignDirError` naming the file. ``hdl_gen.design`` (``Design.write``, ``load_design``), ``sim``
(``load_design_dir``) and ``boards`` (``load_core``, vendor build directories) all go through this module.

:class:`DesignLike` is what ``sim`` and ``boards`` accept: a name, a layout, a latency and Verilog text. Both
``hdl_gen.Design`` and :class:`DirDesign` (a directory without a graph) are one.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

__all__ = ["MANIFEST", "DesignDirError", "DesignLike", "DirDesign", "layout_text", "parse_json", "read_core",
           "read_design_dir", "write_design_files"]  # fmt: skip

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
LAYOUT_KEYS = ("name", "latency", "input", "output")


class DesignDirError(ValueError):
    """A design directory is incomplete, mixed, modified or malformed (the message names the file)."""


@runtime_checkable
class DesignLike(Protocol):
    """What ``sim`` and ``boards`` need of a design: ``name``, ``layout`` (docs/interfaces.md), ``latency`` and
    ``verilog()``. ``hdl_gen.Design`` has more (``predict``, ``report``, ``write``)."""

    name: str

    @property
    def layout(self) -> Mapping[str, Any]: ...

    @property
    def latency(self) -> int: ...

    def verilog(self) -> str: ...


@dataclass
class DirDesign:
    """A design read back from a directory without its graph (``<name>.v`` + ``<name>.layout.json``)."""

    name: str
    layout: dict
    text: str

    @property
    def latency(self) -> int:
        return int(self.layout["latency"])

    def verilog(self) -> str:
        return self.text


def layout_text(layout: Mapping[str, Any]) -> str:
    """The text of ``<name>.layout.json`` (the one place it is serialised)."""
    return json.dumps(layout, indent=1, sort_keys=True, allow_nan=False) + "\n"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _replace(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all (a temporary file beside it, flushed, then renamed over it)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_design_files(directory, name: str, files: Mapping[str, str]) -> Path:
    """Write a design directory: drop the old ``manifest.json`` first, write every file (each whole, by rename),
    remove the files of the design it replaces, then write the manifest (name, SHA-256 and size of each file)
    last. An interrupted write leaves no manifest, so :func:`read_design_dir` refuses the directory."""
    d = Path(directory)
    if d.exists() and not d.is_dir():
        raise NotADirectoryError(f"{d} is a file, not a directory; pass a directory for the design")
    d.mkdir(parents=True, exist_ok=True)
    old: dict = {}
    mpath = d / MANIFEST
    if mpath.exists():
        try:
            old = json.loads(mpath.read_text()).get("files", {})
        except (ValueError, AttributeError, OSError):
            old = {}
        mpath.unlink()
    data = {f: t.encode() for f, t in files.items()}
    for f, b in data.items():
        _replace(d / f, b)
    for f in old:
        if f not in data and "/" not in f and f != MANIFEST:
            (d / f).unlink(missing_ok=True)
    manifest = {
        "format": MANIFEST_FORMAT,
        "name": name,
        "files": {f: {"sha256": _sha256(b), "bytes": len(b)} for f, b in sorted(data.items())},
    }
    _replace(mpath, (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode())
    return d


def read_design_dir(directory) -> tuple[str, dict[str, str]]:
    """``(name, {file: text})`` of a design directory, every file checked against ``manifest.json``; raises
    :class:`DesignDirError` naming the file that is missing, unreadable or does not match."""
    d = Path(directory)
    if not d.is_dir():
        raise FileNotFoundError(f"design directory {str(d)!r} does not exist (write one with `hgq-hil convert`)")
    again = f"write the design again (hgq-hil convert ... --out {d})"
    mpath = d / MANIFEST
    if not mpath.is_file():
        raise DesignDirError(
            f"{mpath} is missing: {d} is incomplete (an interrupted write) or was not written by Design.write; {again}"
        )
    try:
        man = json.loads(mpath.read_text())
        name, listed = man["name"], man["files"]
        if man.get("format") != MANIFEST_FORMAT or not isinstance(listed, dict) or not isinstance(name, str):
            raise ValueError(f"unknown format {man.get('format')!r}")
        sums = {f: (v["sha256"], v["bytes"]) for f, v in listed.items()}
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as err:
        raise DesignDirError(f"{mpath} is not a valid design manifest ({err}); {again}") from None
    texts = {}
    for f, (digest, size) in sums.items():
        p = d / f
        if not p.is_file():
            raise DesignDirError(f"{p} is missing (listed in {MANIFEST}); {again}")
        b = p.read_bytes()
        if len(b) != size or _sha256(b) != digest:
            raise DesignDirError(
                f"{p} does not match {MANIFEST} ({len(b)} bytes, manifest says {size}): modified or half-written "
                f"(a write interrupted over an older design?); {again}"
            )
        try:
            texts[f] = b.decode()
        except UnicodeDecodeError as err:
            raise DesignDirError(f"{p} is not text ({err}); {again}") from None
    for suffix in (".v", ".layout.json"):
        if f"{name}{suffix}" not in texts:
            raise DesignDirError(f"{mpath} lists no {name}{suffix}; {again}")
    return name, texts


def parse_json(text: str, path) -> dict:
    """``json.loads(text)`` of a JSON object; anything else is a :class:`DesignDirError` naming ``path``."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise DesignDirError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(doc, dict):
        raise DesignDirError(f"{path}: not a JSON object")
    return doc


def read_core(directory) -> tuple[str, dict[str, Any], dict[str, str]]:
    """``(name, layout, {file: text})`` of a design directory: the files checked against the manifest
    (:func:`read_design_dir`) and the layout parsed and checked to name the design and hold its ports."""
    d = Path(directory)
    name, texts = read_design_dir(d)
    lpath = d / f"{name}.layout.json"
    lay = parse_json(texts[lpath.name], lpath)
    missing = [k for k in LAYOUT_KEYS if k not in lay]
    if missing:
        raise DesignDirError(f"{lpath}: layout lacks {', '.join(missing)} (docs/interfaces.md)")
    if lay["name"] != name:
        raise DesignDirError(f"{lpath}: layout names {lay['name']!r} but the manifest names {name!r}")
    return name, lay, texts


def load_dir_design(directory) -> DirDesign:
    """The Verilog and layout of a design directory (no graph, no ``predict``)."""
    name, lay, texts = read_core(directory)
    return DirDesign(name=name, layout=lay, text=texts[f"{name}.v"])
