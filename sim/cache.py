"""Build-directory cache: one directory per hash of (sources, options, simulator), safe under pytest-xdist.

A build runs in a private temporary directory under a file lock and is renamed into place when complete, so a
directory that exists is always a finished build; concurrent callers wait on the lock instead of compiling twice.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["build_key", "cache_root", "cached_build"]

_VERSION = "1"  # bump when the build recipe changes


def cache_root() -> Path:
    """``$HGQ_HIL_SIM_CACHE`` or ``~/.cache/hgq-hil/sim`` (created)."""
    root = Path(os.environ.get("HGQ_HIL_SIM_CACHE") or Path.home() / ".cache" / "hgq-hil" / "sim")
    root.mkdir(parents=True, exist_ok=True)
    return root


def build_key(simulator: str, sources: dict[str, str], options: dict) -> str:
    """Hex digest of the simulator, every source text (by file name) and the JSON-able build options."""
    h = hashlib.sha256()
    h.update(json.dumps({"v": _VERSION, "sim": simulator, "opt": options}, sort_keys=True).encode())
    for name in sorted(sources):
        h.update(name.encode() + b"\0" + sources[name].encode() + b"\0")
    return h.hexdigest()[:24]


def cached_build(key: str, label: str, build: Callable[[Path], None], root: Path | None = None) -> tuple[Path, bool]:
    """Return ``(build_dir, reused)``; on a miss ``build(tmp_dir)`` fills a fresh directory that is then renamed
    to ``<root>/<label>-<key>``. A failed build leaves nothing behind."""
    root = root or cache_root()
    final = root / f"{label}-{key}"
    if final.is_dir():
        return final, True
    lock = root / f".{label}-{key}.lock"
    with lock.open("w") as lf:
        fcntl.flock(lf, fcntl.LOCK_EX)
        try:
            if final.is_dir():
                return final, True
            tmp = Path(tempfile.mkdtemp(prefix=f".{label}-{key}-", dir=root))
            try:
                build(tmp)
                os.rename(tmp, final)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        finally:
            fcntl.flock(lf, fcntl.LOCK_UN)
    return final, False
