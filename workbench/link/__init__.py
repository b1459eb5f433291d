"""Reaching boards: transports by URL, the host side of the device protocol, discovery.

Call order: ``open_device(url)`` opens the port, runs the HELLO handshake (or
recognises a line-mode sketch) and returns a :class:`Device`; close it when
done (``with open_device(...) as dev:``). ``find_devices()`` lists the boards
this machine can reach (serial ports, running virtual boards), asking each HELLO.

Modules, bottom to top: :mod:`.transport` (a pyserial port by URL),
:mod:`.timeouts`, :mod:`.session` (reader thread, requests), :mod:`.streams`,
:mod:`.linemode`, :mod:`.image_check` (an image checked before its first byte
is sent), :mod:`.transfer`, :mod:`.inference`, :mod:`.simcontrol`,
:mod:`.device` (the :class:`Device` facade), :mod:`.discovery` and
:mod:`.registry` (running virtual boards), :mod:`.traffic` (a serial monitor's tap on a
session: the raw bytes both ways, as text lines or named frames).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from .delta import DeltaError, DeltaUnavailable, make_patch
from .device import Device
from .discovery import FoundDevice, find_devices, list_ports, probe_port
from .errors import (
    ArenaTooSmall,
    BadArgument,
    Busy,
    ConnectionLost,
    DeltaBaseMismatch,
    DeviceError,
    ImageUnsigned,
    InferFailed,
    Internal,
    InvalidSetting,
    LinkError,
    LinkTimeout,
    Malformed,
    ModelInvalid,
    ModelTooLarge,
    NoFallback,
    NoModel,
    NotFound,
    NotFramed,
    NotPending,
    NoTransfer,
    NotSupported,
    OpenError,
    OutOfOrder,
    SelfTestFailed,
    SignatureInvalid,
    SlotActive,
    SlotFallback,
    UnknownRequest,
    UnsupportedOp,
    VerifyFailed,
    WebSerialCancelled,
    WebSerialError,
    WebSerialNotConnected,
    WebSerialUnsupported,
)
from .image_check import ImageCheck, check_image
from .inference import InferenceResult
from .simcontrol import SimControls
from .streams import SampleBlock, SensorSamples, Stream
from .timeouts import Timeouts
from .transfer import UploadPlan
from .transport import DEFAULT_BAUD, MAX_BAUD, MIN_BAUD, check_baud, open_port

__all__ = ["open_device", "open_port", "Device", "Timeouts", "Stream", "SampleBlock",
           "SensorSamples", "InferenceResult", "SimControls",
           "find_devices", "list_ports", "probe_port", "FoundDevice",
           "DEFAULT_BAUD", "MIN_BAUD", "MAX_BAUD", "check_baud",
           # errors of the link itself
           "LinkError", "LinkTimeout", "ConnectionLost", "NotFramed", "OpenError",
           "InvalidSetting", "WebSerialError", "WebSerialUnsupported", "WebSerialCancelled",
           "WebSerialNotConnected",
           # errors a device reports (ERROR frames), one class per code
           "DeviceError", "Malformed", "UnknownRequest", "BadArgument", "Busy", "NotFound",
           "NoModel", "ModelTooLarge", "ArenaTooSmall", "UnsupportedOp", "ModelInvalid",
           "OutOfOrder", "VerifyFailed", "NoFallback", "SlotActive", "InferFailed",
           "NotSupported", "Internal", "NoTransfer", "SlotFallback", "ImageUnsigned",
           "SignatureInvalid", "NotPending", "SelfTestFailed", "DeltaBaseMismatch",
           # the host's image check before an upload
           "check_image", "ImageCheck",
           # delta updates (detools patches from the board's active image)
           "make_patch", "DeltaError", "DeltaUnavailable", "UploadPlan"]

MODES = ("auto", "framed", "line")


def open_device(url: str, *, baudrate: int = DEFAULT_BAUD, mode: str = "auto",
                timeouts: Timeouts | None = None) -> Device:
    """Open ``url`` and identify what answers.

    ``mode="auto"`` tries the HELLO handshake and, if nothing answers, listens
    for lines of numbers (a hobbyist sketch); ``"framed"`` requires the
    handshake; ``"line"`` skips it. ``timeouts`` overrides the named defaults of
    :mod:`workbench.link.timeouts`. Raises :class:`InvalidSetting` (a ValueError)
    for an unknown mode or a baud rate outside [MIN_BAUD, MAX_BAUD] (in the
    argument or a ``sim://...?baud=`` option), :class:`OpenError` if the port
    cannot be opened, :class:`NotFramed` if ``mode="auto"`` heard neither frames
    nor sample lines, :class:`LinkTimeout` if ``mode="framed"`` got no answer.
    Side effect for ``sim://``: starts a virtual board process, which
    :meth:`Device.close` stops. ``webserial://<id>`` waits for the user to connect a port
    in the page's ``WebSerial`` widget (see :mod:`workbench.link.webserial`) and raises
    its errors (``WebSerialUnsupported``, ``WebSerialCancelled``, ``WebSerialNotConnected``).

    In line mode the sample lines read to learn the sketch's format and rate
    are not lost: the first stream (or ``record``) begins with them.
    """
    if mode not in MODES:
        raise InvalidSetting(f"mode must be 'auto', 'framed' or 'line', not {mode!r}")
    baudrate = check_baud(baudrate, "baudrate")
    timeouts = Timeouts() if timeouts is None else timeouts
    wire_baud = _wire_baud(url, baudrate)
    port = open_port(url, baudrate)
    dev = Device(port, url=url, timeouts=timeouts, baudrate=wire_baud)
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


def _wire_baud(url: str, baudrate: int) -> int | None:
    """The line rate of ``url``: a ``sim://`` URL's own ``baud`` option, None for a
    ``webserial://`` port (the rate the browser opened it at), else ``baudrate``."""
    if url.startswith("webserial://"):
        return None
    if url.startswith("sim://"):
        q = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
        if "baud" in q:
            return check_baud(q["baud"], f"{url}: baud=")
    return baudrate
