"""The virtual board's command line, defined once for ``python -m workbench.sim``
and ``workbench sim``.

:func:`add_arguments` declares the options on any argparse parser,
:func:`serve` runs a board from the parsed options (registering it with
:mod:`workbench.link.registry` while it runs, so ``workbench devices`` finds
it), and :func:`main` is both together. Starting a board this way imports the
simulator, the catalog and the protocol, never the rest of the workbench's CLI.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_BOARD = "nano33ble"
DEFAULT_BAUD = 115200


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Declare the virtual board's options on ``p`` and return it."""
    p.add_argument("--board", default=DEFAULT_BOARD, help="catalog id (see `workbench boards`)")
    p.add_argument("--baud", type=int, default=DEFAULT_BAUD, help="line rate to pace output at")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--pty", action="store_true", help="serve on a pseudo-terminal (default)")
    where.add_argument("--tcp", type=int, metavar="PORT",
                       help="serve on TCP PORT of --bind's address (0: any free port)")
    p.add_argument("--bind", default="127.0.0.1", metavar="ADDR",
                   help="with --tcp: the address to listen on (default 127.0.0.1; 0.0.0.0: every "
                   "interface, e.g. a Raspberry Pi's runner)")
    p.add_argument("--flash", help="flash file (default ~/.cache/workbench/sim/<board>.flash)")
    p.add_argument("--mode", choices=["framed", "line", "smp"], default="framed",
                   help="line: behave like a sketch printing CSV; smp: like a Zephyr board "
                   "with mcumgr (SMP over the console UART, MCUboot slots)")
    p.add_argument("--sensor", help="line mode: the sensor(s) to print, e.g. accel,gyro "
                   "(default: the first)")
    p.add_argument("--rate", type=float, default=0.0, help="line mode: lines per second")
    p.add_argument("--scenario", default="idle", help="what the board is doing (idle, walking, ...)")
    p.add_argument("--replay", choices=["basicmotions"], help="replay real recordings")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--drop", type=float, default=0.0, help="fault: drop bytes at this rate")
    p.add_argument("--flip", type=float, default=0.0, help="fault: flip a bit at this rate")
    p.add_argument("--key", action="append", default=[], metavar="PEM",
                   help="provision an Ed25519 public key (PEM; repeat for several): the board "
                   "then accepts only update images signed by one of them")
    p.add_argument("--delta", choices=["on", "off"], default="on",
                   help="apply delta updates (DELTA capability; needs detools); off: a board "
                   "that takes full images only")
    p.add_argument("--exit-with-parent", action="store_true", help=argparse.SUPPRESS)
    return p


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m workbench.sim``."""
    return add_arguments(argparse.ArgumentParser(
        prog="python -m workbench.sim", description="Run a virtual board."))


def serve(args: argparse.Namespace) -> int:
    """Run the board ``args`` describes until it is stopped; returns the exit status.

    Side effects: prints ``PTY <path>`` or ``TCP <host:port>`` on stdout once
    ready (and a hint on a terminal's stderr); a registry entry exists while it runs.
    """
    from ..link.registry import register
    from .server import SimOptions, run

    if args.tcp is None and args.bind != "127.0.0.1":
        print(f"workbench sim: --bind {args.bind} is for a TCP board: add --tcp PORT",
              file=sys.stderr)
        return 2

    opts = SimOptions(board=args.board, baud=args.baud, flash=args.flash, mode=args.mode,
                      sensor=args.sensor, rate=args.rate, scenario=args.scenario,
                      replay=args.replay, seed=args.seed, drop_rate=args.drop,
                      flip_rate=args.flip, exit_with_parent=args.exit_with_parent,
                      keys=tuple(args.key), delta=args.delta == "on", bind=args.bind)
    entry: list[Path] = []

    def announce(line: str) -> None:
        kind, where = line.split(" ", 1)
        url = where if kind == "PTY" else f"socket://{where}"
        entry.append(register(args.board, url))  # findable before anyone is told it is ready
        print(line, flush=True)
        if sys.stderr.isatty():
            print(f"virtual {args.board} ready at {url} ({args.baud} baud); Ctrl-C stops it",
                  file=sys.stderr)

    try:
        return run(opts, pty=args.tcp is None, tcp_port=args.tcp, announce=announce)
    except KeyboardInterrupt:
        return 0
    finally:
        for p in entry:
            p.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    """``python -m workbench.sim [options]``: parse ``argv`` and :func:`serve`."""
    return serve(build_parser().parse_args(argv))
