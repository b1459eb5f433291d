"""The virtual board's process: a pseudo-terminal or TCP port, paced like a UART.

``python -m workbench.sim --board nano33ble --pty`` opens a pseudo-terminal
and prints ``PTY /dev/pts/N`` on stdout (one line, flushed) once it is ready;
``--tcp PORT`` listens on 127.0.0.1 (``--bind ADDR``: another address, ``0.0.0.0``
for every interface, as a Linux board's runner does) and prints ``TCP host:port``. Any
program can then open that path with pyserial, or ``socket://host:port``.

The board's catalog ``runtime`` picks the firmware's inference engine
(:mod:`.engines`): TFLite Micro for microcontrollers, LiteRT for Linux boards
(``--board rpi4``: the LiteRT runner of a Raspberry Pi's deployment package).

One thread runs everything: it reads what the host sent, at most at the
line rate (baud/10 bytes per second, as a UART would deliver it), hands it to
the :class:`~workbench.sim.firmware.VirtualFirmware`, and writes the
firmware's output at the same line rate. Injected faults drop or flip bytes
in both directions.
"""

from __future__ import annotations

import errno
import os
import random
import select
import signal
import socket
import sys
import time
import tty
from dataclasses import dataclass
from pathlib import Path

from ..boards import get_board
from ..errors import WorkbenchError
from ..protocol import limits
from ..protocol.image import KeyFileError, TrustedKey
from .firmware import Disconnect, PowerCut, VirtualFirmware, default_flash_path
from .flash import Flash

PACING_BURST_SECONDS = 0.002
"""Bytes may run this far ahead of the line rate (a UART's FIFO)."""
PTY_HANGUP_POLL = 0.05
PARENT_CHECK_S = 0.5
HOST_OPEN_SETTLE = 0.03
"""After the host opens the pty, wait this long (it flushes its input on open)."""


class ByteFaults:
    """Drop or flip bytes at given rates (per byte), reproducibly from a seed."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed ^ 0x5EED)
        self.drop_rate = 0.0
        self.flip_rate = 0.0
        self.dropped = 0
        self.flipped = 0

    def apply(self, data: bytes) -> bytes:
        if not (self.drop_rate or self.flip_rate) or not data:
            return data
        out = bytearray()
        rng = self.rng
        for b in data:
            if self.drop_rate and rng.random() < self.drop_rate:
                self.dropped += 1
                continue
            if self.flip_rate and rng.random() < self.flip_rate:
                b ^= 1 << rng.randrange(8)
                self.flipped += 1
            out.append(b)
        return bytes(out)


class Pacer:
    """A token bucket at ``rate`` bytes/s with a small burst allowance."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.burst = max(16.0, rate * PACING_BURST_SECONDS)
        self.tokens = self.burst
        self.t = time.monotonic()

    def allowance(self) -> int:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.t) * self.rate)
        self.t = now
        return int(self.tokens)

    def spend(self, n: int) -> None:
        self.tokens -= n

    def wait_for(self, n: int) -> float:
        """Seconds until ``n`` bytes may go."""
        return max(0.0, (min(n, self.burst) - self.tokens) / self.rate)


class SimOptionError(WorkbenchError, ValueError):
    """A start option of the virtual board is out of range (the message lists each)."""


@dataclass
class SimOptions:
    board: str = "nano33ble"
    baud: int = 115200
    flash: str | None = None
    mode: str = "framed"
    """framed (the workbench protocol), line (a sketch printing CSV) or smp (a Zephyr board
    with mcumgr over its console UART: :mod:`workbench.sim.smp_server`)."""
    sensor: str | None = None
    """Line mode: the sensor(s) to print, comma-separated (``accel,gyro``)."""
    rate: float = 0.0
    """Line mode: lines per second (0: the first sensor's default rate)."""
    scenario: str = "idle"
    replay: str | None = None
    seed: int = 0
    drop_rate: float = 0.0
    flip_rate: float = 0.0
    exit_with_parent: bool = False
    """Stop when the process that started us dies (boards started for a sim:// URL)."""
    keys: tuple[str, ...] = ()
    """Paths of Ed25519 public (or private) key PEMs the board is provisioned with: with
    any, it accepts only update images signed by one of them (docs/protocol.md 7.6)."""
    delta: bool = True
    """Apply delta updates (announce the DELTA capability) if detools is installed."""
    bind: str = "127.0.0.1"
    """TCP: the address to listen on (``0.0.0.0``: every interface, as a Linux board's
    runner does so that ``socket://board:PORT`` reaches it)."""

    def check(self) -> None:
        """Raise :class:`SimOptionError` naming every option out of its range
        (docs/protocol.md 5.21). Sensor, rate and scenario are checked against the
        board by :class:`~workbench.sim.firmware.VirtualFirmware`."""
        problems = [p for p in (
            limits.baud_problem(self.baud),
            limits.fault_rate_problem("--drop", self.drop_rate),
            limits.fault_rate_problem("--flip", self.flip_rate),
            limits.seed_problem(self.seed),
            None if self.mode in ("framed", "line", "smp") else
            f"mode {self.mode!r} is unknown; use framed, line or smp",
            None if self.replay in (None, "basicmotions") else
            f"replay {self.replay!r} is unknown; use basicmotions",
        ) if p]
        problems += [p for p in (_key_problem(k) for k in self.keys) if p]
        if problems:
            raise SimOptionError("; ".join(problems))

    def trusted_keys(self) -> tuple[TrustedKey, ...]:
        """The provisioned keys, read from :attr:`keys` (:meth:`check` has vetted them)."""
        return tuple(TrustedKey.from_pem(Path(k).read_bytes(), name=str(k)) for k in self.keys)


def _key_problem(path: str) -> str | None:
    try:
        TrustedKey.from_pem(Path(path).read_bytes(), name=f"--key {path}")
    except OSError as e:
        return f"--key {path}: cannot read it ({e.strerror or e})"
    except KeyFileError as e:
        return str(e)
    return None


class SimServer:
    """Runs one virtual board on a file descriptor (pty master or TCP socket)."""

    def __init__(self, opts: SimOptions) -> None:
        opts.check()
        self.opts = opts
        self.board = get_board(opts.board)
        slots = self.board.model_slots
        self.flash = Flash(opts.flash or default_flash_path(self.board.id), slots.count,
                           slots.slot_bytes)
        for note in self.flash.load_notes:  # also sent as LOG events after the next INFO
            print(f"workbench sim: {note}", file=sys.stderr, flush=True)
        self.out = bytearray()
        self.rx_pacer = Pacer(opts.baud / 10.0)
        self.tx_pacer = Pacer(opts.baud / 10.0)
        self.faults = ByteFaults(opts.seed)
        self.faults.drop_rate, self.faults.flip_rate = opts.drop_rate, opts.flip_rate
        firmware = VirtualFirmware
        if opts.mode == "smp":  # imported only here: it needs the deploy extra's smp package
            from .smp_server import SmpFirmware as firmware
        self.fw = firmware(self.board, self.flash, self.out.extend,
                           tx_backlog=lambda: len(self.out), scenario=opts.scenario,
                           seed=opts.seed, replay=opts.replay, mode=opts.mode,
                           line_sensor=opts.sensor, line_rate_hz=opts.rate,
                           keys=opts.trusted_keys(), delta=opts.delta)
        self._faults_seen = self.fw.faults

    def _sync_faults(self) -> None:
        f = self.fw.faults
        if f is not self._faults_seen:  # a SIM_FAULTS request arrived: it sets both rates
            self._faults_seen = f
            self.faults.drop_rate, self.faults.flip_rate = f.drop_rate, f.flip_rate

    def serve_fd(self, fd: int, *, is_pty: bool) -> str:
        """Serve until the peer goes away (TCP) or forever (pty). Returns why it stopped.

        On a pty, reading the master fails with EIO while no program has the port
        open: that is how the board sees the host come and go (the ``while
        (!Serial)`` of an Arduino sketch, or DTR).
        """
        os.set_blocking(fd, False)
        connected = not is_pty
        if connected:
            self.fw.host_connected()
        parent = os.getppid()
        next_parent_check = time.monotonic() + PARENT_CHECK_S
        while True:
            if self.opts.exit_with_parent and time.monotonic() > next_parent_check:
                if os.getppid() != parent:
                    return "the program that started this board has ended"
                next_parent_check = time.monotonic() + PARENT_CHECK_S
            wait = self.fw.tick()
            if self.out:
                wait = min(wait, self.tx_pacer.wait_for(len(self.out)))
            wait = min(wait, self.rx_pacer.wait_for(64))
            want_write = bool(self.out) and self.tx_pacer.allowance() > 0
            try:
                r, w, _ = select.select([fd], [fd] if want_write else [], [], max(wait, 0.0005))
            except InterruptedError:
                continue
            if r or not connected:
                budget = self.rx_pacer.allowance()
                if budget > 0:
                    try:
                        data = os.read(fd, budget)
                    except OSError as e:
                        if e.errno == errno.EIO and is_pty:  # nobody has the port open
                            connected = False
                            self.out.clear()  # what a board prints to nobody is lost
                            time.sleep(PTY_HANGUP_POLL)
                            continue
                        if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                            data = None
                        else:
                            return f"read failed: {e}"
                    if not connected:
                        connected = True
                        time.sleep(HOST_OPEN_SETTLE)
                        self.out.clear()
                        self.fw.host_connected()
                    if data == b"":
                        if is_pty:
                            time.sleep(PTY_HANGUP_POLL)
                            continue
                        return "peer closed the connection"
                    if data:
                        self.rx_pacer.spend(len(data))
                        try:
                            self.fw.receive(self.faults.apply(data))
                        except Disconnect:
                            return "disconnect"
                        self._sync_faults()
                else:
                    time.sleep(self.rx_pacer.wait_for(1))
            if w and self.out:
                n = min(len(self.out), self.tx_pacer.allowance())
                if n > 0:
                    chunk = bytes(self.out[:n])
                    wire = self.faults.apply(chunk)
                    try:
                        sent = os.write(fd, wire) if wire else 0
                    except BlockingIOError:
                        sent = 0
                    except OSError as e:
                        if e.errno == errno.EIO and is_pty:
                            # no reader: what a board prints to nobody is lost
                            del self.out[:n]
                            continue
                        return f"write failed: {e}"
                    # Without faults ``wire is chunk`` and a partial write keeps the
                    # rest queued; with faults the damaged chunk has left the UART.
                    done = sent if wire is chunk else n
                    del self.out[:done]
                    self.tx_pacer.spend(done)


def _open_pty() -> tuple[int, str]:
    master, slave = os.openpty()
    tty.setraw(slave)  # no echo, no line discipline: a byte pipe like a UART
    path = os.ttyname(slave)
    os.close(slave)  # from now on the master sees EIO exactly while no host has it open
    return master, path


def _listen(bind: str, port: int) -> socket.socket:
    """A listening TCP socket on ``bind:port`` (IPv4 or IPv6 by the address's form).
    Raises :class:`SimOptionError` saying why it cannot listen (port in use, no such
    address on this machine)."""
    try:
        family = socket.getaddrinfo(bind, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as e:
        raise SimOptionError(f"--bind {bind}: not an address of this machine ({e})") from None
    lsock = socket.socket(family, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        lsock.bind((bind, port))
    except OSError as e:
        lsock.close()
        if e.errno == errno.EADDRINUSE:
            raise SimOptionError(f"TCP port {port} on {bind} is in use by another program; "
                                 "stop it or choose another --tcp PORT") from None
        raise SimOptionError(f"cannot listen on {bind}:{port}: {e.strerror or e}") from None
    lsock.listen(1)
    return lsock


def run(opts: SimOptions, *, pty: bool = True, tcp_port: int | None = None,
        announce=print) -> int:
    """Run the virtual board until killed (pty) or forever accepting TCP clients."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server = SimServer(opts)
    except (KeyError, ValueError) as e:
        print(f"workbench sim: {e}", file=sys.stderr)
        return 2
    try:
        if tcp_port is None:
            master, path = _open_pty()
            announce(f"PTY {path}")
            sys.stdout.flush()
            why = server.serve_fd(master, is_pty=True)
            return 0 if why in ("disconnect", "the program that started this board has ended") else 1
        try:
            lsock = _listen(opts.bind, tcp_port)
        except SimOptionError as e:
            print(f"workbench sim: {e}", file=sys.stderr)
            return 2
        host, port = lsock.getsockname()[:2]
        announce(f"TCP {f'[{host}]' if ':' in host else host}:{port}")
        sys.stdout.flush()
        while True:
            conn, _ = lsock.accept()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            server.serve_fd(conn.fileno(), is_pty=False)
            conn.close()
    except PowerCut:
        os._exit(3)  # like pulling the plug: no clean-up, no flush of anything
