"""Every time-out and retry count of the link, by name, and the ceilings on them.

A request waits its named time-out plus the time the bytes need on the wire at
the port's baud rate (``wire_time``), so a slow link is not mistaken for a dead
one. That allowance is capped (:data:`WIRE_ALLOWANCE_MAX`), the time-outs
themselves are bounded (:data:`TIMEOUT_MAX`) and absurd baud rates are refused
when a device is opened (:func:`workbench.link.transport.check_baud`), so no wait
grows without limit: a mistyped ``sim://nano33ble?baud=1`` fails at once instead
of waiting hours per HELLO.

Override the defaults per device with ``open_device(url, timeouts=Timeouts(...))``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from .errors import InvalidSetting

HELLO_TIMEOUT = 0.6
"""Seconds to wait for the answer to one HELLO attempt (plus wire time)."""
HELLO_ATTEMPTS = 3
"""HELLO attempts before a board counts as silent (then ``mode="auto"`` listens for lines)."""
REQUEST_TIMEOUT = 1.0
"""Seconds to wait for the answer to one attempt of an ordinary request (plus wire time)."""
REQUEST_RETRIES = 3
"""Re-sends of a request (same request id, so the device never acts twice) before giving up."""
VERIFY_TIMEOUT = 60.0
"""MODEL_END, MODEL_COMMIT, MODEL_ROLLBACK: the device hashes the image and checks the model can
run in its arena."""
INFER_TIMEOUT = 30.0
"""One inference on the device (never re-sent: an inference is not idempotent in time)."""
CHUNK_RETRIES = 8
"""How many times one model chunk may be re-sent before the upload gives up."""
LINE_DETECT_TIMEOUT = 2.0
"""How long ``mode="auto"`` listens for sample lines when HELLO got no answer."""
LINE_RATE_SETTLE = 1.0
"""After the first sample lines, how long to wait for a sample-rate estimate."""
STREAM_STALL_TIMEOUT = 2.0
"""``Device.record``: a stream with no sample for REQUEST_TIMEOUT plus this long has stalled."""

WIRE_ALLOWANCE_MAX = 30.0
"""Ceiling (seconds) on the wire time added to any time-out. At the slowest accepted baud rate
(:data:`workbench.link.transport.MIN_BAUD`) a full request and answer fit in it."""
TIMEOUT_MAX = 600.0
"""Ceiling (seconds) on every time-out field of :class:`Timeouts`: no single wait of the link is
longer than ``TIMEOUT_MAX + WIRE_ALLOWANCE_MAX``."""
ATTEMPTS_MAX = 100
"""Ceiling on every attempt and retry count of :class:`Timeouts`."""


@dataclass(frozen=True)
class Timeouts:
    """The time-outs (seconds) and retry counts of one device, defaults as named above.

    Raises :class:`InvalidSetting` (a ValueError) when a field is not a finite positive number up to
    :data:`TIMEOUT_MAX` (counts: a whole number up to :data:`ATTEMPTS_MAX`).
    """

    hello: float = HELLO_TIMEOUT
    hello_attempts: int = HELLO_ATTEMPTS
    request: float = REQUEST_TIMEOUT
    retries: int = REQUEST_RETRIES
    verify: float = VERIFY_TIMEOUT
    infer: float = INFER_TIMEOUT
    chunk_retries: int = CHUNK_RETRIES
    line_detect: float = LINE_DETECT_TIMEOUT

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("hello_attempts", "retries", "chunk_retries"):
                low = 1 if f.name == "hello_attempts" else 0
                if isinstance(value, bool) or not isinstance(value, int) or not (
                        low <= value <= ATTEMPTS_MAX):
                    raise InvalidSetting(f"Timeouts.{f.name} must be a whole number from {low} "
                                        f"to {ATTEMPTS_MAX}, not {value!r}")
            elif (isinstance(value, bool) or not isinstance(value, (int, float))
                  or not math.isfinite(value) or not 0 < value <= TIMEOUT_MAX):
                raise InvalidSetting(f"Timeouts.{f.name} must be a number of seconds above 0 and "
                                    f"at most {TIMEOUT_MAX:g}, not {value!r}")


def wire_time(nbytes: int, baudrate: int) -> float:
    """Seconds ``nbytes`` take on a UART at ``baudrate`` (10 bits a byte), capped at
    :data:`WIRE_ALLOWANCE_MAX`."""
    return min(WIRE_ALLOWANCE_MAX, nbytes * 10.0 / baudrate)

