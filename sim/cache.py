"""Build-directory cache: one directory per hash of (sources, options, simulator), safe under pytest-xdist.

A build runs in a private temporary directory under a file lock and is renamed into place when complete, so a
directory that exists is always a finished build; concurrent callers wait on the lock instead of compiling twice.
The cache owns its leftovers: a temporary build directory whose lock nobody holds (its process was killed) is
removed by the next build, kept run directories (failed runs, waveforms) are pruned oldest first above
:func:`runs_limit_bytes`, and :func:`clean` empties the cache (``hgq-hil cache --clean``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = [
    "RUNS_LIMIT_ENV",
    "build_key",
    "cache_root",
    "cache_summary",
    "cached_build",
    "clean",
    "holding",
    "is_held",
    "prune_runs",
    "reap_stale",
    "runs_limit_bytes",
]

_VERSION = "1"  # bump when the build recipe changes
RUNS_LIMIT_ENV = "HGQ_HIL_RUNS_MAX_MB"
_RUNS_LIMIT_MB = 256
RUN_LOCK = ".lock"  # held by a run while it uses its run directory
_TMP = re.compile(r"^\.(?P<base>.+-[0-9a-f]{24})-[A-Za-z0-9_]{8}$")  # mkdtemp dirs of cached_build


def cache_root() -> Path:
    """``$HGQ_HIL_SIM_CACHE`` or ``~/.cache/hgq-hil/sim`` (created), absolute: simulations run in directories
    under it and must find their files from there (a relative setting left every simulation without results)."""
    root = Path(os.environ.get("HGQ_HIL_SIM_CACHE") or Path.home() / ".cache" / "hgq-hil" / "sim")
    root = root.expanduser().absolute()
    root.mkdir(parents=True, exist_ok=True)
    return root


def build_key(simulator: str, sources: dict[str, str], options: dict) -> str:
    """Hex digest of the simulator, every source text (by file name) and the JSON-able build options."""
    h = hashlib.sha256()
    h.update(json.dumps({"v": _VERSION, "sim": simulator, "opt": options}, sort_keys=True).encode())
    for name in sorted(sources):
        h.update(name.encode() + b"\0" + sources[name].encode() + b"\0")
    return h.hexdigest()[:24]


@contextlib.contextmanager
def holding(lock: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock`` (created) while the body runs; released when the process dies."""
    with lock.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def is_held(lock: Path) -> bool:
    """True when a live process holds ``lock`` (a missing lock file is not held)."""
    try:
        fh = lock.open("r")
    except OSError:
        return False
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
        return False


def reap_stale(root: Path | None = None) -> list[Path]:
    """Remove temporary build directories left by killed builds (their lock is free); returns them."""
    root = root or cache_root()
    gone = []
    for d in root.iterdir():
        m = _TMP.match(d.name)
        if m and d.is_dir() and not is_held(root / f".{m['base']}.lock"):
            shutil.rmtree(d, ignore_errors=True)
            gone.append(d)
    return gone


def cached_build(key: str, label: str, build: Callable[[Path], None], root: Path | None = None) -> tuple[Path, bool]:
    """Return ``(build_dir, reused)``; on a miss ``build(tmp_dir)`` fills a fresh directory that is then renamed
    to ``<root>/<label>-<key>``. A failed or interrupted build leaves nothing behind (a killed one is reaped by
    the next miss)."""
    root = root or cache_root()
    final = root / f"{label}-{key}"
    if final.is_dir():
        return final, True
    reap_stale(root)
    with holding(root / f".{label}-{key}.lock"):
        if final.is_dir():
            return final, True
        tmp = Path(tempfile.mkdtemp(prefix=f".{label}-{key}-", dir=root))
        try:
            build(tmp)
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return final, False


def runs_limit_bytes() -> int:
    """Most bytes kept run directories may take: ``$HGQ_HIL_RUNS_MAX_MB`` (default 256) MiB."""
    raw = os.environ.get(RUNS_LIMIT_ENV, "")
    try:
        mb = float(raw) if raw else _RUNS_LIMIT_MB
    except ValueError:
        raise ValueError(f"${RUNS_LIMIT_ENV}={raw!r} is not a number of MiB") from None
    return max(int(mb * (1 << 20)), 0)


def _size(p: Path) -> int:
    if p.is_file():
        return p.stat().st_size
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file() and not f.is_symlink())


def prune_runs(runs: Path, limit: int | None = None, keep: Path | None = None) -> list[Path]:
    """Remove the oldest run directories under ``runs`` (none in use, never ``keep``) until they take at most
    ``limit`` bytes (default :func:`runs_limit_bytes`); returns the removed ones."""
    limit = runs_limit_bytes() if limit is None else limit
    if not runs.is_dir():
        return []
    dirs = [(d.stat().st_mtime, d, _size(d)) for d in runs.iterdir() if d.is_dir()]
    total = sum(s for _, _, s in dirs)
    gone = []
    for _, d, s in sorted(dirs, key=lambda t: t[0]):
        if total <= limit:
            break
        if d == keep or is_held(d / RUN_LOCK):
            continue
        shutil.rmtree(d, ignore_errors=True)
        total -= s
        gone.append(d)
    return gone


def cache_summary(root: Path | None = None) -> dict:
    """Counts and bytes of builds, kept runs and stale temporary directories."""
    root = root or cache_root()
    out = {"root": str(root), "builds": 0, "build_bytes": 0, "runs": 0, "run_bytes": 0, "stale": 0}
    for d in root.iterdir():
        if not d.is_dir():
            continue
        if d.name == "runs":
            runs = [r for r in d.iterdir() if r.is_dir()]
            out["runs"], out["run_bytes"] = len(runs), sum(_size(r) for r in runs)
        elif _TMP.match(d.name):
            out["stale"] += 1
        else:
            out["builds"] += 1
            out["build_bytes"] += _size(d)
    return out


def clean(root: Path | None = None) -> dict:
    """Remove every build, run directory and temporary directory not in use; returns what was removed."""
    root = root or cache_root()
    before = cache_summary(root)
    reap_stale(root)
    runs = root / "runs"
    for d in runs.iterdir() if runs.is_dir() else ():
        if d.is_dir() and not is_held(d / RUN_LOCK):
            shutil.rmtree(d, ignore_errors=True)
    for d in root.iterdir():
        if d.is_dir() and d.name != "runs" and not _TMP.match(d.name) and not is_held(root / f".{d.name}.lock"):
            shutil.rmtree(d, ignore_errors=True)
        elif d.is_file() and d.suffix == ".lock" and not is_held(d):
            d.unlink(missing_ok=True)
    after = cache_summary(root)
    return {
        "root": str(root),
        "removed_builds": before["builds"] - after["builds"],
        "removed_runs": before["runs"] - after["runs"],
        "removed_stale": before["stale"] - after["stale"],
        "freed_bytes": before["build_bytes"] + before["run_bytes"] - after["build_bytes"] - after["run_bytes"],
    }
