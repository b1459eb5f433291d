"""Find boards: serial ports matched to the catalog by USB VID:PID, plus HELLO.

``find_devices()`` lists the ports the operating system sees (and running
virtual boards, from :mod:`.registry`), names the catalog boards whose VID:PID
matches (the VID:PID table is catalog data: :func:`workbench.boards.match_usb`),
and, unless told not to, opens each port and asks HELLO, reporting what the
board said. Nothing is opened by ``list_ports()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..boards.catalog import Board, match_usb
from .registry import running
from .timeouts import Timeouts

PROBE_HELLO_TIMEOUT = 0.4
"""Per attempt; a port that does not answer in 2 attempts is reported as silent."""


@dataclass
class FoundDevice:
    url: str
    description: str = ""
    usb: str = ""
    """``VID:PID`` as 4-digit hex, empty for ports that are not USB."""
    candidates: list[Board] = field(default_factory=list)
    hello: object | None = None
    """The board's :class:`~workbench.protocol.messages.Info` if it answered HELLO."""
    sensors: tuple = ()
    probe_error: str = ""
    virtual: bool = False

    def to_dict(self) -> dict:
        info = self.hello
        return {
            "url": self.url, "description": self.description, "usb": self.usb,
            "virtual": self.virtual,
            "catalog_matches": [b.id for b in self.candidates],
            "hello": None if info is None else {
                "board_id": info.board_id, "board_name": info.board_name,
                "firmware": info.firmware, "mcu": info.mcu, "core": info.core,
                "clock_hz": info.clock_hz, "flash_bytes": info.flash_bytes,
                "ram_bytes": info.ram_bytes, "slot_bytes": info.slot_bytes,
                "arena_bytes": info.arena_bytes, "serial_number": info.serial_number,
                "sensors": [{"id": s.id, "kind": s.kind, "channels": list(s.channels),
                             "rate_hz": s.rate_hz, "units": s.units} for s in self.sensors]},
            "probe_error": self.probe_error,
        }


def list_ports() -> list[FoundDevice]:
    """Serial ports of this machine and running virtual boards, without opening any."""
    from serial.tools import list_ports as lp

    found = []
    for p in sorted(lp.comports(), key=lambda p: p.device):
        usb = f"{p.vid:04X}:{p.pid:04X}" if p.vid is not None and p.pid is not None else ""
        cands = match_usb(p.vid, p.pid) if usb else []
        found.append(FoundDevice(p.device, p.description or "", usb, cands))
    for entry in running():
        found.append(FoundDevice(entry["url"], f"virtual {entry['board']} (pid {entry['pid']})",
                                 virtual=True))
    return found


def probe_port(dev: FoundDevice, baudrate: int = 115200) -> FoundDevice:
    """Open the port and try the HELLO handshake; fills ``hello`` or ``probe_error``."""
    from . import LinkError, open_device

    try:
        with open_device(dev.url, baudrate=baudrate, mode="framed",
                         timeouts=Timeouts(hello=PROBE_HELLO_TIMEOUT, hello_attempts=2)) as d:
            dev.hello = d.info
            dev.sensors = d.sensors
    except LinkError as e:
        dev.probe_error = str(e).split(". ")[0]
    return dev


def find_devices(probe_ports: bool = True, extra_urls: list[str] = (),
                 baudrate: int = 115200, probe_all: bool = False) -> list[FoundDevice]:
    """All ports (and ``extra_urls``), probed with HELLO if ``probe_ports``.

    Only USB ports, virtual boards and ``extra_urls`` are probed unless
    ``probe_all``: writing a handshake to a built-in UART (a modem, a console)
    is not ours to do uninvited.
    """
    found = list_ports() + [FoundDevice(u) for u in extra_urls]
    if probe_ports:
        for dev in found:
            if probe_all or dev.usb or dev.virtual or dev.url in extra_urls:
                probe_port(dev, baudrate)
            else:
                dev.probe_error = "not probed: not a USB port (--probe-all to try)"
    return found
