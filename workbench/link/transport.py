"""Open any way of reaching a board as a pyserial port, by URL.

``/dev/ttyACM0`` or ``serial:///dev/ttyACM0`` (USB), ``socket://host:port``
(pyserial's TCP handler), ``sim://nano33ble`` (a virtual board started for
you), ``webserial://<id>`` (a port the browser opened, :mod:`.webserial`), ``loop://``
(pyserial's loopback, for framing tests).
"""

from __future__ import annotations

import errno

import serial

from ..protocol.limits import BAUD_MAX, BAUD_MIN

HANDLER_PACKAGE = "workbench.link.handlers"
DEFAULT_BAUD = 115200
MIN_BAUD = BAUD_MIN
"""Slowest baud rate the link accepts (:data:`workbench.protocol.limits.BAUD_MIN`)."""
MAX_BAUD = BAUD_MAX
"""Fastest baud rate the link accepts (:data:`workbench.protocol.limits.BAUD_MAX`)."""


def check_baud(baudrate, where: str = "baud rate") -> int:
    """``baudrate`` as an int if it lies in [MIN_BAUD, MAX_BAUD], else :class:`InvalidSetting`
    (a ValueError) naming ``where`` it came from and the accepted range."""
    from .errors import InvalidSetting

    try:
        value = int(baudrate)
        ok = value == float(baudrate) and MIN_BAUD <= value <= MAX_BAUD
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise InvalidSetting(f"{where} {baudrate!r} is not a usable baud rate: use a whole number "
                             f"from {MIN_BAUD:,} to {MAX_BAUD:,} (115200 is the usual one)")
    return value


def _register() -> None:
    if HANDLER_PACKAGE not in serial.protocol_handler_packages:
        serial.protocol_handler_packages.append(HANDLER_PACKAGE)


def open_port(url: str, baudrate: int = DEFAULT_BAUD, timeout: float = 0.02):
    """A pyserial-compatible port for ``url``, opened. Raises :class:`OpenError`."""
    from .errors import OpenError

    _register()
    kwargs = {"baudrate": baudrate, "timeout": timeout}
    if "://" not in url:
        kwargs["exclusive"] = True  # a second program on a real port garbles both
    try:
        return serial.serial_for_url(url, **kwargs)
    except ValueError as e:
        raise OpenError(f"{url}: {e}. Known schemes: a device path, serial://, socket://, "
                        "sim://, webserial://, loop://") from None
    except serial.SerialException as e:
        raise OpenError(_explain(url, e)) from None


def _explain(url: str, e: serial.SerialException) -> str:
    code = getattr(e, "errno", None)
    if code == errno.EACCES:
        return (f"{url}: permission denied. On Linux add yourself to the dialout group "
                "(sudo usermod -aG dialout $USER) and log in again.")
    if code == errno.ENOENT:
        return (f"{url}: no such port. Is the board plugged in with a data cable? "
                "`workbench devices` lists the ports this machine sees.")
    if code == errno.EBUSY or "busy" in str(e).lower() or "lock" in str(e).lower():
        return (f"{url}: the port is in use by another program (a serial monitor, another "
                "notebook?). Close it and try again.")
    return str(e) if str(e).startswith(url) else f"{url}: {e}"
