"""Virtual boards the JupyterLab panel starts and stops.

:func:`start` runs ``python -m workbench.sim --tcp 0 --board BOARD ...`` as a detached process
(its own session: it outlives the request, and the Jupyter server too, like a board left
plugged in) and returns once the board has registered itself in
:mod:`workbench.link.registry`, so every listing (the panel, ``workbench devices``) finds it
at its ``socket://127.0.0.1:PORT`` URL. Each board started here keeps its flash in its own
file under the registry's folder (``<sim dir>/lab/``), removed by :func:`stop`.

:func:`stop` ends a running virtual board named by its process id, only if the registry
lists that process as a virtual board (any board in the registry, also one started by
``workbench sim``), and waits until it is gone.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from ..errors import WorkbenchError

__all__ = ["VirtualBoardError", "NoSuchVirtualBoard", "start", "stop", "reap", "START_TIMEOUT_S",
           "STOP_TIMEOUT_S"]

START_TIMEOUT_S = 30.0
"""How long :func:`start` waits for the board to register itself."""
STOP_TIMEOUT_S = 10.0
"""How long :func:`stop` waits after SIGTERM before it kills the board."""

_started: dict[int, tuple[subprocess.Popen, Path]] = {}
"""Boards started by this process: pid -> (process, flash file); reaped by :func:`stop`."""


class VirtualBoardError(WorkbenchError, RuntimeError):
    """A virtual board could not be started or stopped; the message says why."""


class NoSuchVirtualBoard(VirtualBoardError, KeyError):
    """No running virtual board has that process id."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def _lab_dir() -> Path:
    from ..link.registry import registry_dir

    return registry_dir().parent / "lab"


def start(board: str = "nano33ble", *, scenario: str | None = None, replay: str | None = None,
          timeout: float = START_TIMEOUT_S) -> dict:
    """Start a virtual ``board`` (a catalog id) and return its registry entry
    ``{"board", "url", "pid"}`` once it is listed.

    ``scenario`` (``idle``, ``walking``, ...) and ``replay`` (``basicmotions``) are passed to
    the board. Raises :class:`workbench.boards.UnknownBoardError` (a KeyError) for an unknown
    board and :class:`VirtualBoardError`, with what the board printed, if it exits or does not
    register within ``timeout`` seconds (it is then killed).
    """
    from ..boards import get_board
    from ..link.registry import running

    get_board(board)  # an unknown id fails here, with the valid ones named
    reap()
    folder = _lab_dir()
    folder.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(4)
    flash = folder / f"{board}-{token}.flash"
    log = folder / f"{board}-{token}.log"
    cmd = [sys.executable, "-m", "workbench.sim", "--tcp", "0", "--board", board,
           "--flash", str(flash)]
    if scenario:
        cmd += ["--scenario", scenario]
    if replay:
        cmd += ["--replay", replay]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True)
    deadline = time.monotonic() + timeout
    try:
        while True:
            for entry in running():
                if int(entry.get("pid", -1)) == proc.pid:
                    _started[proc.pid] = (proc, flash)
                    log.unlink(missing_ok=True)
                    return entry
            if proc.poll() is not None:
                raise VirtualBoardError(f"the virtual {board} exited ({proc.returncode}) before it "
                                        f"was ready: {_tail(log) or 'it printed nothing'}")
            if time.monotonic() > deadline:
                raise VirtualBoardError(f"the virtual {board} did not register within {timeout:g} s "
                                        f"(is the machine very busy?): {_tail(log)}")
            time.sleep(0.05)
    except VirtualBoardError:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        flash.unlink(missing_ok=True)
        raise


def stop(pid: int, *, timeout: float = STOP_TIMEOUT_S) -> dict:
    """Stop the running virtual board whose process id is ``pid``; returns its registry entry.

    Sends SIGTERM (the board removes its registry entry as it exits), then SIGKILL after
    ``timeout`` seconds. Raises :class:`NoSuchVirtualBoard` (a KeyError) if the registry lists
    no running board with that pid: no other process is ever signalled.
    """
    from ..link.registry import registry_dir, running

    reap()
    entry = next((e for e in running() if int(e.get("pid", -1)) == pid), None)
    if entry is None:
        listed = ", ".join(f"{e['board']} (pid {e['pid']})" for e in running()) or "none"
        raise NoSuchVirtualBoard(f"no running virtual board has process id {pid}; running: {listed}")
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    started = _started.pop(pid, None)
    deadline = time.monotonic() + timeout
    while _alive(pid, started):
        if time.monotonic() > deadline:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            if started is not None:
                started[0].wait()
            break
        time.sleep(0.05)
    (registry_dir() / f"{pid}.json").unlink(missing_ok=True)  # a killed board leaves it
    if started is not None:
        started[1].unlink(missing_ok=True)
    return entry


def reap() -> None:
    """Collect the boards started here that have ended by themselves (killed from outside):
    until collected, an ended child is a zombie that the registry would take for running.
    The listings call it before they read the registry."""
    from ..link.registry import registry_dir

    for pid, (proc, flash) in list(_started.items()):
        if proc.poll() is not None:
            _started.pop(pid, None)
            (registry_dir() / f"{pid}.json").unlink(missing_ok=True)
            flash.unlink(missing_ok=True)


def _alive(pid: int, started: tuple[subprocess.Popen, Path] | None) -> bool:
    if started is not None:  # our child: reap it, or it stays a zombie that looks alive
        return started[0].poll() is None
    from ..link.registry import process_alive

    return process_alive(pid)


def _tail(log: Path, chars: int = 600) -> str:
    try:
        return log.read_text(errors="replace").strip()[-chars:]
    except OSError:
        return ""
