"""Up-front checks of what a user hands the CLI, and the exit code of each kind of failure.

Exit codes (README "Exit codes"): 0 everything passed; 1 a verdict failed (a mismatch, a gate limit, a design too
large for its board, a board running another design); 2 bad input or usage (a missing or malformed file, a bad
option, a design that cannot be verified, a serial port that does not exist); 3 a tool is missing or failed
(simulator, yosys, nextpnr, a board that does not answer or garbles its frames); 4 an internal error (a bug: ``--debug``
shows the traceback); 130/143 interrupted (Ctrl-C / SIGTERM).
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import zipfile
from pathlib import Path

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_FAIL",
    "EXIT_INTERNAL",
    "EXIT_OK",
    "EXIT_TOOL",
    "check_out_dir",
    "check_out_file",
    "exit_code",
    "layer_size",
    "load_model_file",
    "non_negative_int",
    "positive_float",
    "positive_int",
]

EXIT_OK, EXIT_FAIL, EXIT_BAD_INPUT, EXIT_TOOL, EXIT_INTERNAL = 0, 1, 2, 3, 4

# (module, class) of the failures of a tool; matched only when the module is loaded (it raised them)
_TOOL_ERRORS = (
    ("sim.runners", "SimulatorMissing"),
    ("sim.runners", "SimulatorError"),
    ("hdl_gen.resources", "YosysError"),
    ("boards.openflow", "ToolError"),
    ("boards.uart", "BoardTimeout"),
    ("boards.uart", "FramingError"),
)
_VERDICT_ERRORS = (("boards.reports", "DesignTooLarge"), ("boards.uart", "WrongDesign"))


def _loaded(spec: tuple[tuple[str, str], ...]) -> tuple[type, ...]:
    return tuple(getattr(sys.modules[m], c) for m, c in spec if m in sys.modules and hasattr(sys.modules[m], c))


def exit_code(err: BaseException) -> int:
    """The documented exit code of an exception that ended a command."""
    if isinstance(err, _loaded(_TOOL_ERRORS) + (subprocess.TimeoutExpired,)):
        return EXIT_TOOL
    if isinstance(err, _loaded(_VERDICT_ERRORS)):
        return EXIT_FAIL
    if isinstance(err, ValueError | OSError):  # bad values, missing/unreadable files (incl. JSON and TOML errors)
        return EXIT_BAD_INPUT
    return EXIT_INTERNAL


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(v) or v <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number > 0")
    return v


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1")
    return v


def layer_size(text: str) -> int | None:
    """argparse type for a hidden layer: its size (an integer >= 1), or ``none`` (no hidden layer)."""
    return None if text.strip().lower() == "none" else positive_int(text)


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer >= 0")
    return int(text)


def check_out_dir(path: str | Path, what: str = "--out") -> Path:
    """``path`` if it is a directory or can become one (nothing in the way); else ``NotADirectoryError``."""
    p = Path(path)
    for q in (p, *p.parents):
        if q.exists():
            if not q.is_dir():
                raise NotADirectoryError(f"{what} {str(path)!r}: {str(q)!r} is a file, not a directory")
            break
    return p


def check_out_file(path: str | Path, what: str) -> Path:
    """``path`` if a file can be written there (its parent can be a directory, it is not a directory)."""
    p = Path(path)
    if p.is_dir():
        raise IsADirectoryError(f"{what} {str(path)!r} is a directory; give a file name")
    check_out_dir(p.parent, what)
    return p


def load_model_file(path: str | Path):
    """A Keras model from a ``.keras`` file (hgq-hil's, or an HGQ2 0.2 checkpoint: :mod:`hgq.hgq2`) or a QONNX
    ``.onnx`` graph (:mod:`hgq.qonnx_import`), with errors that say what is wrong with the file."""
    import hgq  # noqa: PLC0415

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"model file {str(p)!r} does not exist (train one with `hgq-hil train`)")
    if p.suffix.lower() == ".onnx":  # a QONNX graph: hgq.qonnx_import
        try:
            import onnx  # noqa: F401, PLC0415

            from hgq.qonnx_import import load_qonnx  # noqa: PLC0415
        except ImportError:
            raise ValueError(f"{str(p)!r} is an ONNX graph: reading it needs pip install 'hgq-hil[qonnx]'") from None
        return load_qonnx(p)
    if not zipfile.is_zipfile(p):
        raise ValueError(
            f"model file {str(p)!r} is not a .keras archive (not a zip file: truncated, or another format); "
            "save models with model.save('x.keras') or `hgq-hil train`"
        )
    from hgq.hgq2 import is_hgq2_checkpoint, load_hgq2  # noqa: PLC0415

    if is_hgq2_checkpoint(p):  # an HGQ2 0.2 checkpoint: read without HGQ2, as the equivalent hgq-hil model
        return load_hgq2(p)
    try:
        return hgq.load_model(p)
    except Exception as err:  # noqa: BLE001 - Keras raises many kinds for a broken archive
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise ValueError(
            f"model file {str(p)!r} cannot be loaded as a Keras model ({type(err).__name__}: {first[:300]}); "
            "is it a complete .keras file of hgq layers?"
        ) from None
