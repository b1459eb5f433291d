"""The devices the TinyML panel lists: serial ports, running virtual boards, and their state.

:func:`devices` reads what :mod:`workbench.link.discovery` sees (the operating system's serial
ports, matched to the board catalog by USB VID:PID, and the registry of running virtual
boards) and adds, for each, the catalog's capabilities of its board and its live state. It
opens nothing: a board in use by a notebook is not disturbed (no HELLO is sent), so the
listing can be refreshed every few seconds.

Live state, on Linux (``None`` elsewhere, where it cannot be seen without opening the port):

* a serial port or a pseudo-terminal is *in use* while a process of this user holds it open
  (``/proc/<pid>/fd``);
* a TCP virtual board is *in use* while a client is connected to it (``/proc/net/tcp``).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["devices", "board_capabilities", "catalog_boards"]


def board_capabilities(board) -> dict:
    """What the catalog says a board can do (a :class:`workbench.boards.Board` as JSON)."""
    return {
        "id": board.id, "name": board.name, "vendor": board.vendor, "kind": board.kind,
        "mcu": board.mcu, "core": board.core, "clock_hz": board.clock_hz,
        "flash_bytes": board.flash_bytes, "ram_bytes": board.ram_bytes,
        "slot_bytes": board.model_slots.slot_bytes, "arena_bytes": board.model_slots.arena_bytes,
        "sensors": [{"id": s.id, "kind": s.kind, "channels": list(s.channels), "units": s.units,
                     "rate_hz": s.rate_hz} for s in board.sensors],
    }


def catalog_boards() -> list[dict]:
    """Every catalog board as ``{"id", "name", "usb": ["VID:PID", ...]}``, sorted by id: the
    start-a-board menu, and what the panel matches a Web Serial port's USB ids against."""
    from ..boards import load_catalog

    return [{"id": b.id, "name": b.name, "usb": [str(u) for u in b.usb]}
            for _, b in sorted(load_catalog().items())]


def devices() -> list[dict]:
    """Every serial port and running virtual board, as the panel shows them.

    Each is ``{"url", "kind": "serial" | "virtual", "description", "usb", "catalog_matches",
    "board": capabilities or None, "pid": the virtual board's process or None, "state":
    {"in_use": bool or None, "clients": int or None}}`` (``clients``: the processes holding a
    port open, or the connections to a TCP board; None where this system does not tell).
    ``board`` is the catalog entry of a virtual board's board, or of the port's only catalog
    match (None when the VID:PID matches no board, or several). Reads the registry of virtual
    boards, which removes the entries of boards whose process is gone; changes nothing else.
    """
    from ..boards import get_board
    from ..link.discovery import list_ports
    from ..link.registry import running

    by_url = {entry["url"]: entry for entry in running()}
    holders = _open_file_holders()
    out = []
    for found in list_ports():
        entry = by_url.get(found.url) if found.virtual else None
        board = None
        if entry is not None:
            try:
                board = get_board(entry["board"])
            except KeyError:
                board = None
        elif len(found.candidates) == 1:
            board = found.candidates[0]
        pid = int(entry["pid"]) if entry is not None else None
        clients = _clients(found.url, holders, exclude=pid)
        out.append({
            "url": found.url, "kind": "virtual" if found.virtual else "serial",
            "description": found.description, "usb": found.usb,
            "catalog_matches": [b.id for b in found.candidates] or ([board.id] if board else []),
            "board": board_capabilities(board) if board is not None else None,
            "pid": pid,
            "state": {"in_use": None if clients is None else clients > 0, "clients": clients},
        })
    return out


def _clients(url: str, holders: dict[str, list[int]] | None, exclude: int | None) -> int | None:
    """How many processes (or TCP connections) use the device at ``url``; None when this
    system does not tell."""
    if url.startswith("socket://"):
        port = urlsplit(url).port
        return _tcp_clients(port) if port is not None else None
    if holders is None:
        return None
    try:
        real = os.path.realpath(url)
    except OSError:
        real = url
    return len({p for p in holders.get(real, []) if p != exclude})


def _open_file_holders() -> dict[str, list[int]] | None:
    """``{device path: [pid, ...]}`` for the character devices processes of this user hold
    open (Linux's ``/proc``), or None where there is no ``/proc``."""
    proc = Path("/proc")
    if not (proc / "self" / "fd").is_dir():
        return None
    held: dict[str, list[int]] = {}
    for pid_dir in proc.iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            fds = list((pid_dir / "fd").iterdir())
        except OSError:  # another user's process, or gone
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("/dev/"):
                held.setdefault(target, []).append(int(pid_dir.name))
    return held


def _tcp_clients(port: int) -> int | None:
    """Established connections whose local end is ``port`` (a board's side of a client's
    connection), or None where ``/proc/net/tcp`` does not exist."""
    tables = [Path("/proc/net/tcp"), Path("/proc/net/tcp6")]
    if not tables[0].exists():
        return None
    count = 0
    for table in tables:
        try:
            lines = table.read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 4:
                continue
            local, state = fields[1], fields[3]
            if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:
                count += 1
    return count
