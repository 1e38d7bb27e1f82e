"""boards.program: openFPGALoader command lines for the open boards, the errors, and runs against a fake tool
(a shell script on $OPENFPGALOADER that records its argv) — never the real openFPGALoader."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from fixtures.sim_toy import toy_design

import boards
from boards import program as bp
from boards.checks import EXIT_BAD_INPUT, EXIT_TOOL, exit_code
from boards.config import ENV_VAR, ConfigError
from boards.openflow import ToolError, open_build

OPEN = {"ulx3s": ("ulx3s", "board_top.bit"), "icebreaker": ("ice40_generic", "board_top.bin")}


@pytest.fixture(autouse=True)
def no_tool(monkeypatch, tmp_path):
    """No openFPGALoader anywhere unless a test puts one on $OPENFPGALOADER."""
    monkeypatch.delenv(bp.ENV_VAR, raising=False)
    empty = tmp_path / "empty_path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def _build_dir(tmp_path: Path, board: str, *, result_board: str | None = None) -> Path:
    """A directory like `hgq-hil build --board BOARD --out DIR` leaves: the bitstream and result.json."""
    d = tmp_path / f"build_{board}"
    d.mkdir()
    (d / OPEN[board][1]).write_bytes(b"\xff\x00bitstream")
    (d / "result.json").write_text(json.dumps({"board": result_board or board, "ran": True}))
    return d


def _fake_tool(tmp_path: Path, rc: int = 0, *, sleep: float = 0) -> tuple[Path, Path]:
    log = tmp_path / "argv.txt"
    tool = tmp_path / "fake-openFPGALoader"
    tool.write_text(
        "#!/bin/sh\nPATH=/usr/bin:/bin\n"
        f"printf '%s\\n' \"$@\" > '{log}'\n"
        + (f"sleep {sleep}\n" if sleep else "")
        + "echo 'Jtag frequency : requested 6.00MHz'\n"
        + ("echo 'unable to open ftdi device: -4 (usb_open() failed)' >&2\n" if rc else "echo 'Done'\n")
        + f"exit {rc}\n"
    )
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    return tool, log


# ---------------------------------------------------------------- command lines


@pytest.mark.parametrize("board", sorted(OPEN))
def test_command_line_for_each_open_board(board, tmp_path):
    d = _build_dir(tmp_path, board)
    name, bitfile = OPEN[board]
    bit = bp.find_bitstream(d, board)
    assert bit == d / bitfile and bp.bitstream_name(board) == bitfile
    r = bp.program(bit, board, dry_run=True)
    assert r.command == ["openFPGALoader", "-b", name, "--write-sram", str(bit)]  # the tool need not exist
    assert (r.mode, r.dry_run, r.returncode, r.board) == ("sram", True, None, board)
    flash = bp.program(bit, boards.get_board(board), dry_run=True, sram=False, cable="ft2232")
    assert flash.command == ["openFPGALoader", "-b", name, "-c", "ft2232", "--write-flash", str(bit)]
    assert json.loads(json.dumps(flash.to_dict()))["command"] == flash.command
    assert bp.program(d, board, dry_run=True).command == r.command  # a build directory works too


def test_every_open_builtin_board_says_how_to_program_it():
    opened = [b for b in boards.list_boards() if b.is_open]
    assert {b.name for b in opened} >= set(OPEN)
    for b in opened:
        assert b.openfpgaloader_board, b.name
        assert bp.bitstream_name(b) in ("board_top.bit", "board_top.bin")
    assert all(b.openfpgaloader_board is None for b in boards.list_boards() if not b.is_open)


@pytest.mark.parametrize("board", sorted(OPEN))
def test_bitstream_name_is_what_the_open_flow_packs(board, tmp_path):
    """The packer line of the build script Amaranth writes (plan only: no tool runs) names the same file."""
    d = toy_design()
    open_build(boards.get_board(board), d.layout, d.verilog(), tmp_path, run=False, wrapper="uart")
    packer = (tmp_path / "build_board_top.sh").read_text().strip().splitlines()[-1]
    assert packer.startswith(('"$ECPPACK"', '"$ICEPACK"')) and bp.bitstream_name(board) in packer.split()


def test_tool_from_env_var_or_path(tmp_path, monkeypatch):
    tool, _ = _fake_tool(tmp_path)
    d = _build_dir(tmp_path, "ulx3s")
    monkeypatch.setenv(bp.ENV_VAR, str(tool))
    assert bp.program(d, "ulx3s", dry_run=True).command[0] == str(tool)
    monkeypatch.delenv(bp.ENV_VAR)
    (tmp_path / "empty_path" / "openFPGALoader").symlink_to(tool)
    assert bp.find_tool() == str(tmp_path / "empty_path" / "openFPGALoader")


# ---------------------------------------------------------------- errors


def test_missing_tool_names_apt_and_the_env_var(tmp_path, monkeypatch):
    d = _build_dir(tmp_path, "icebreaker")
    with pytest.raises(ToolError) as e:
        bp.program(d, "icebreaker")
    msg = str(e.value)
    assert "openFPGALoader not found" in msg and "apt-get install -y openfpgaloader" in msg and "$OPENFPGALOADER" in msg
    assert exit_code(e.value) == EXIT_TOOL
    monkeypatch.setenv(bp.ENV_VAR, str(tmp_path / "nope"))
    with pytest.raises(ToolError, match=r"\$OPENFPGALOADER='.*nope' is not an executable") as e:
        bp.program(d, "icebreaker")
    assert exit_code(e.value) == EXIT_TOOL


def test_missing_bitstream_names_the_build_command(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        bp.find_bitstream(tmp_path / "nothing", "ulx3s")
    assert "does not exist" in str(e.value)
    assert f"hgq-hil build DESIGN --board ulx3s --out {tmp_path / 'nothing'} --wrapper uart" in str(e.value)
    assert exit_code(e.value) == EXIT_BAD_INPUT
    plan_only = tmp_path / "plan"
    plan_only.mkdir()
    (plan_only / "board_top.il").write_text("")
    with pytest.raises(FileNotFoundError, match=r"no board_top\.bin in .*plan.*a plan-only build.*--board icebreaker"):
        bp.find_bitstream(plan_only, "icebreaker")
    with pytest.raises(FileNotFoundError, match=r"bitstream '.*x\.bit' does not exist; build it: hgq-hil build"):
        bp.program(tmp_path / "x.bit", "ulx3s", dry_run=True)


def test_bitstream_of_another_board_or_format_is_refused(tmp_path):
    d = _build_dir(tmp_path, "icebreaker", result_board="ulx3s")
    with pytest.raises(ValueError, match="holds a build for board 'ulx3s', not 'icebreaker'"):
        bp.find_bitstream(d, "icebreaker")
    bit = tmp_path / "top.bit"
    bit.write_bytes(b"x")
    with pytest.raises(ValueError, match=r"board 'icebreaker' \(ice40\) takes a \.bin file"):
        bp.program(bit, "icebreaker", dry_run=True)
    empty = tmp_path / "empty.bit"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="is empty"):
        bp.program(empty, "ulx3s", dry_run=True)


@pytest.mark.parametrize(
    ("board", "programmer"), [("vu13p", "Vivado's Hardware Manager"), ("agilex7", "the Quartus Programmer")]
)
def test_vendor_boards_point_at_their_programmer(board, programmer, tmp_path):
    bit = tmp_path / "x.bit"
    bit.write_bytes(b"x")
    with pytest.raises(ValueError, match=f"board '{board}' is a .* board: program it with {programmer}") as e:
        bp.program(bit, board, dry_run=True)
    assert "only the open boards" in str(e.value) and exit_code(e.value) == EXIT_BAD_INPUT
    with pytest.raises(ValueError, match=programmer):
        bp.find_bitstream(tmp_path, board)


def test_open_board_without_program_table(tmp_path, monkeypatch):
    cfg = (Path(boards.config.BUILTIN_DIR) / "icebreaker.toml").read_text()
    cfg = cfg.replace('name = "icebreaker"', 'name = "my_ice"').split("[program]")[0]
    (tmp_path / "my_ice.toml").write_text(cfg)
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    with pytest.raises(ConfigError, match=r'add \[program\] openfpgaloader_board = "NAME" to .*my_ice\.toml'):
        bp.program(tmp_path / "x.bin", "my_ice", dry_run=True)
    (tmp_path / "my_ice.toml").write_text(cfg + '\n[program]\nopenfpgaloader_board = "ice40_generic"\nspeed = 1\n')
    with pytest.raises(ConfigError, match=r"\[program\]: unknown key 'speed'"):
        boards.get_board("my_ice")


# ---------------------------------------------------------------- runs (a fake openFPGALoader)


@pytest.mark.parametrize("sram", [True, False])
def test_run_against_a_fake_tool(tmp_path, monkeypatch, sram):
    tool, log = _fake_tool(tmp_path)
    monkeypatch.setenv(bp.ENV_VAR, str(tool))
    d = _build_dir(tmp_path, "ulx3s")
    r = bp.program(bp.find_bitstream(d, "ulx3s"), "ulx3s", sram=sram)
    mode = "--write-sram" if sram else "--write-flash"
    assert log.read_text().splitlines() == ["-b", "ulx3s", mode, str(d / "board_top.bit")]
    assert r.command == [str(tool), "-b", "ulx3s", mode, str(d / "board_top.bit")]
    assert (r.returncode, r.dry_run, r.mode) == (0, False, "sram" if sram else "flash") and "Done" in r.output


def test_dry_run_runs_nothing(tmp_path, monkeypatch):
    tool, log = _fake_tool(tmp_path)
    monkeypatch.setenv(bp.ENV_VAR, str(tool))
    r = bp.program(_build_dir(tmp_path, "icebreaker"), "icebreaker", dry_run=True, cable="ft2232")
    assert r.command[:5] == [str(tool), "-b", "ice40_generic", "-c", "ft2232"] and not log.exists()


def test_tool_failure_is_a_tool_error_with_the_log_tail(tmp_path, monkeypatch):
    tool, log = _fake_tool(tmp_path, rc=1)
    monkeypatch.setenv(bp.ENV_VAR, str(tool))
    with pytest.raises(ToolError) as e:
        bp.program(_build_dir(tmp_path, "icebreaker"), "icebreaker", sram=False)
    msg = str(e.value)
    assert "openFPGALoader failed (exit 1) loading board_top.bin into icebreaker's flash" in msg
    assert "unable to open ftdi device" in msg and "udev" in msg and exit_code(e.value) == EXIT_TOOL
    assert log.read_text().splitlines()[:3] == ["-b", "ice40_generic", "--write-flash"]


def test_tool_timeout_is_a_tool_error(tmp_path, monkeypatch):
    tool, _ = _fake_tool(tmp_path, sleep=5)
    monkeypatch.setenv(bp.ENV_VAR, str(tool))
    with pytest.raises(ToolError, match=r"did not finish in 0\.3 s") as e:
        bp.program(_build_dir(tmp_path, "ulx3s"), "ulx3s", timeout=0.3)
    assert exit_code(e.value) == EXIT_TOOL
