"""Reaching boards: transports by URL and the device protocol.

Call order: ``open_device(url)`` opens the port, runs the HELLO handshake (or
recognises a line-mode sketch) and returns a :class:`Device`; close it when
done (``with open_device(...) as dev:``).
"""

from __future__ import annotations

from .device import Device, InferenceResult, Recording, SampleBlock, Stream, Timeouts
from .errors import (ArenaTooSmall, BadArgument, Busy, ConnectionLost, DeviceError, InferFailed,
                     Internal, LinkError, LinkTimeout, Malformed, ModelInvalid, ModelTooLarge,
                     NoFallback, NoModel, NotFound, NotFramed, NotSupported, NoTransfer,
                     OpenError, OutOfOrder, SlotActive, UnknownRequest, UnsupportedOp,
                     VerifyFailed)
from .transport import DEFAULT_BAUD, open_port

__all__ = ["open_device", "open_port", "Device", "Timeouts", "Stream", "SampleBlock",
           "Recording", "InferenceResult",
           # errors of the link itself
           "LinkError", "LinkTimeout", "ConnectionLost", "NotFramed", "OpenError",
           # errors a device reports (ERROR frames), one class per code
           "DeviceError", "Malformed", "UnknownRequest", "BadArgument", "Busy", "NotFound",
           "NoModel", "ModelTooLarge", "ArenaTooSmall", "UnsupportedOp", "ModelInvalid",
           "OutOfOrder", "VerifyFailed", "NoFallback", "SlotActive", "InferFailed",
           "NotSupported", "Internal", "NoTransfer"]


def open_device(url: str, *, baudrate: int = DEFAULT_BAUD, mode: str = "auto",
                timeouts: Timeouts = Timeouts()) -> Device:
    """Open ``url`` and identify what answers.

    ``mode="auto"`` tries the HELLO handshake and, if nothing answers, listens
    for lines of numbers (a hobbyist sketch); ``"framed"`` requires the
    handshake; ``"line"`` skips it. Raises :class:`OpenError` if the port
    cannot be opened, :class:`NotFramed` if ``mode="auto"`` heard neither
    frames nor sample lines, :class:`LinkTimeout` if ``mode="framed"`` got no
    answer. Side effect for ``sim://``: starts a virtual board process, which
    :meth:`Device.close` stops.
    """
    if mode not in ("auto", "framed", "line"):
        raise ValueError(f"mode must be 'auto', 'framed' or 'line', not {mode!r}")
    port = open_port(url, baudrate)
    dev = Device(port, url=url, timeouts=timeouts, baudrate=_wire_baud(url, baudrate))
    try:
        if mode == "line":
            if not dev.detect_line_mode(timeouts.line_detect):
                dev.use_line_mode()
            return dev
        try:
            dev.hello()
            return dev
        except LinkTimeout:
            if mode == "framed":
                raise
        if dev.detect_line_mode(timeouts.line_detect):
            return dev
        raise NotFramed(f"{url} answered neither the workbench handshake nor printed lines of "
                        "numbers. Check the baud rate, or that the board runs a sketch or the "
                        "workbench firmware.")
    except BaseException:
        dev.close()
        raise


def _wire_baud(url: str, baudrate: int) -> int:
    from urllib.parse import parse_qsl, urlsplit

    if url.startswith("sim://"):
        q = dict(parse_qsl(urlsplit(url).query))
        if "baud" in q:
            return int(q["baud"])
    return baudrate
