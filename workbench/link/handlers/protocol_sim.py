"""``sim://<board>?options``: a virtual board started for you, behind a real pty.

Opening the port starts ``python -m workbench.sim --board <board> --pty`` in a
new session (so a notebook interrupt does not kill it), reads the
pseudo-terminal path it announces and opens that path with pyserial's own
POSIX implementation, so everything above sees a real serial port. Closing
the port stops the virtual board; its flash file stays.

Options (query string): ``baud`` (default: the port's baudrate; from
:data:`~workbench.link.transport.MIN_BAUD` to ``MAX_BAUD``), ``mode``
(``framed`` or ``line``), ``sensor`` and ``rate`` (line mode: e.g.
``sensor=accel,gyro&rate=200``), ``scenario``, ``replay``
(``basicmotions``), ``seed``, ``flash`` (path of the flash file), ``drop`` and
``flip`` (fault rates per byte), ``key`` (an Ed25519 public key PEM the board is
provisioned with; repeat it for several: ``key=a.pem&key=b.pem``), ``delta`` (``on``, the
default, or ``off``: a board without delta updates).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import deque
from urllib.parse import parse_qsl, urlsplit

import serial

from ..errors import InvalidSetting
from ..transport import check_baud

SIM_START_TIMEOUT = 30.0
"""Seconds to wait for the virtual board to announce its port."""

_OPTIONS = {"baud", "mode", "sensor", "rate", "scenario", "replay", "seed", "flash", "drop",
            "flip", "key", "delta"}


def sim_command(url: str, baudrate: int) -> list[str]:
    """The command line that runs the virtual board a ``sim://`` URL names."""
    parts = urlsplit(url)
    board = parts.netloc or parts.path.strip("/")
    if not board:
        raise serial.SerialException(f"{url}: name a board, e.g. sim://nano33ble "
                                     "(`workbench boards` lists them)")
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    opts = dict(p for p in pairs if p[0] != "key")
    keys = [v for k, v in pairs if k == "key"]
    unknown = set(opts) - _OPTIONS
    if unknown:
        raise serial.SerialException(f"{url}: unknown option(s) {', '.join(sorted(unknown))}; "
                                     f"known: {', '.join(sorted(_OPTIONS))}")
    try:
        baud = check_baud(opts.pop("baud", baudrate), f"{url}: baud=")
    except InvalidSetting as e:
        raise serial.SerialException(str(e)) from None
    cmd = [sys.executable, "-m", "workbench.sim", "--board", board, "--pty", "--exit-with-parent",
           "--baud", str(baud)]
    for key, value in opts.items():
        cmd += [f"--{key}", value]
    for path in keys:
        cmd += ["--key", path]
    return cmd


class Serial(serial.Serial):
    """A pyserial port whose far end is a freshly started virtual board."""

    _sim: subprocess.Popen | None = None

    def open(self) -> None:
        url = self._port
        cmd = sim_command(url, self._baudrate)
        env = dict(os.environ)
        self._sim = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env,
                                     start_new_session=True)
        line = self._await_announce()
        if not line.startswith("PTY "):
            try:
                self._sim.wait(5)
                err = self._sim.stderr.read()
            except subprocess.TimeoutExpired:
                err = ""
            self._stop_sim()
            raise serial.SerialException(
                f"{url}: the virtual board did not start: {err.strip() or line or 'no output'}")
        # Drain the child's stderr in the background so it can never block on it,
        # keeping the last lines to explain a board that stopped.
        self._stderr_tail: deque[str] = deque(maxlen=20)
        threading.Thread(target=self._drain_stderr, args=(self._sim, self._stderr_tail),
                         daemon=True).start()
        self.sim_url = url
        self.port = line.split(" ", 1)[1].strip()  # sets portstr and name too
        try:
            super().open()
        except serial.SerialException:
            self._stop_sim()
            raise

    def _await_announce(self) -> str:
        out: list[str] = []
        t = threading.Thread(target=lambda: out.append(self._sim.stdout.readline()), daemon=True)
        t.start()
        t.join(SIM_START_TIMEOUT)
        return out[0].strip() if out else ""

    @staticmethod
    def _drain_stderr(proc: subprocess.Popen, tail: deque) -> None:
        for line in proc.stderr:
            tail.append(line.rstrip())

    @property
    def exit_reason(self) -> str | None:
        """Why the virtual board stopped (exit status, last stderr line), or None."""
        proc = self._sim
        if proc is None or proc.poll() is None:
            return None
        code = proc.returncode
        why = {3: "injected power cut"}.get(code, f"exit status {code}")
        tail = [t for t in getattr(self, "_stderr_tail", ()) if t.strip()]
        return why + (f": {tail[-1]}" if tail else "")

    @property
    def sim_process(self) -> subprocess.Popen | None:
        return self._sim

    def _stop_sim(self) -> None:
        if self._sim is not None and self._sim.poll() is None:
            self._sim.terminate()
            try:
                self._sim.wait(5)
            except subprocess.TimeoutExpired:
                self._sim.kill()
                self._sim.wait()
        self._sim = None

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._stop_sim()
