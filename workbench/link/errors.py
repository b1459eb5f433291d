"""Exceptions of the device link. Each says what went wrong and what to try.

Device-reported errors (ERROR frames) map one-to-one onto subclasses of
:class:`DeviceError` through :func:`error_from_frame`, so callers can catch
``ModelTooLarge`` rather than compare codes.
"""

from __future__ import annotations

from .messages import Error, ErrorCode


class LinkError(Exception):
    """Base of every error raised by ``workbench.link``."""


class OpenError(LinkError):
    """The port or URL could not be opened."""


class ConnectionLost(LinkError):
    """The port closed or the device went away while we were talking to it."""


class LinkTimeout(LinkError, TimeoutError):
    """No valid answer arrived within the named time-out, after all retries."""


class NotFramed(LinkError):
    """The device does not speak the framed protocol (it may be a line-mode sketch)."""


class DeviceError(LinkError):
    """The device answered a request with an ERROR frame."""

    code: ErrorCode | int = 0

    def __init__(self, message: str, *, code: int = 0, detail: int = 0) -> None:
        super().__init__(message)
        self.code = code or type(self).code
        self.detail = detail


def _error_class(name: str, code: ErrorCode, doc: str) -> type[DeviceError]:
    return type(name, (DeviceError,), {"code": code, "__doc__": doc})


Malformed = _error_class("Malformed", ErrorCode.MALFORMED, "The device could not parse a request.")
UnknownRequest = _error_class("UnknownRequest", ErrorCode.UNKNOWN_TYPE, "The firmware does not know this request type.")
BadArgument = _error_class("BadArgument", ErrorCode.BAD_ARGUMENT, "A request argument is out of range.")
Busy = _error_class("Busy", ErrorCode.BUSY, "The device is busy with another operation.")
NotFound = _error_class("NotFound", ErrorCode.NOT_FOUND, "No such sensor, slot or tensor.")
NoModel = _error_class("NoModel", ErrorCode.NO_MODEL, "No model is active on the device.")
ModelTooLarge = _error_class("ModelTooLarge", ErrorCode.MODEL_TOO_LARGE, "The model does not fit a model slot in flash.")
ArenaTooSmall = _error_class("ArenaTooSmall", ErrorCode.ARENA_TOO_SMALL, "The model needs more RAM for its tensor arena than the board has.")
UnsupportedOp = _error_class("UnsupportedOp", ErrorCode.UNSUPPORTED_OP, "The model uses an operator the firmware lacks.")
ModelInvalid = _error_class("ModelInvalid", ErrorCode.MODEL_INVALID, "The bytes are not a valid .tflite model.")
OutOfOrder = _error_class("OutOfOrder", ErrorCode.OUT_OF_ORDER, "A chunk arrived at an unexpected offset; detail is the expected one.")
VerifyFailed = _error_class("VerifyFailed", ErrorCode.VERIFY_FAILED, "The received image does not match its size or SHA-256.")
NoFallback = _error_class("NoFallback", ErrorCode.NO_FALLBACK, "There is no previous model to roll back to.")
SlotActive = _error_class("SlotActive", ErrorCode.SLOT_ACTIVE, "The running model's slot cannot be overwritten.")
InferFailed = _error_class("InferFailed", ErrorCode.INFER_FAILED, "The interpreter failed to run the model.")
NotSupported = _error_class("NotSupported", ErrorCode.NOT_SUPPORTED, "The device lacks this capability.")
Internal = _error_class("Internal", ErrorCode.INTERNAL, "The firmware hit a fault of its own (a bug).")
NoTransfer = _error_class("NoTransfer", ErrorCode.NO_TRANSFER, "A model chunk or end arrived with no transfer begun.")

_BY_CODE = {cls.code: cls for cls in (
    Malformed, UnknownRequest, BadArgument, Busy, NotFound, NoModel, ModelTooLarge,
    ArenaTooSmall, UnsupportedOp, ModelInvalid, OutOfOrder, VerifyFailed, NoFallback,
    SlotActive, InferFailed, NotSupported, NoTransfer, Internal)}


def error_from_frame(err: Error) -> DeviceError:
    """The exception for a decoded ERROR payload (an unknown code gives DeviceError)."""
    cls = _BY_CODE.get(err.code, DeviceError)
    return cls(err.message, code=err.code, detail=err.detail)
