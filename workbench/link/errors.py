"""Exceptions of the device link. Each says what went wrong and what to try.

Device-reported errors (ERROR frames) map one-to-one onto subclasses of
:class:`DeviceError` through :func:`error_from_frame`, so callers can catch
``ModelTooLarge`` rather than compare codes.
"""

from __future__ import annotations

from ..errors import WorkbenchError
from ..protocol.messages import Error, ErrorCode


class LinkError(WorkbenchError):
    """Base of every error raised by ``workbench.link``."""


class OpenError(LinkError):
    """The port or URL could not be opened."""


class WebSerialError(OpenError):
    """A board reached through the browser (``webserial://``) cannot be opened."""


class WebSerialUnsupported(WebSerialError):
    """The browser has no Web Serial: Firefox and Safari lack it, and Chrome or Edge offer it
    only to pages served from localhost or over HTTPS."""


class WebSerialCancelled(WebSerialError):
    """The user closed the browser's port picker without choosing a port."""


class WebSerialNotConnected(WebSerialError, TimeoutError):
    """No port was connected in the browser in time (nobody clicked Connect), or no
    Web Serial widget with that id exists."""


class InvalidSetting(LinkError, ValueError):
    """An option of the link is out of range: a baud rate, a time-out, a mode."""


class ConnectionLost(LinkError):
    """The port closed or the device went away while we were talking to it.

    ``recording`` holds what :meth:`~workbench.link.Device.record` had received
    before the loss (a :class:`~workbench.link.SensorSamples`), else None.
    """

    recording = None


class LinkTimeout(LinkError, TimeoutError):
    """No valid answer arrived within the named time-out, after all retries.

    ``recording`` holds what :meth:`~workbench.link.Device.record` had received
    before its stream stalled, else None.
    """

    recording = None


class NotFramed(LinkError):
    """The device does not speak the framed protocol (it may be a line-mode sketch)."""


class DeviceError(LinkError):
    """The device answered a request with an ERROR frame, or the host's image check
    (:mod:`.image_check`) found, before sending anything, the error it would answer."""

    code: ErrorCode | int = 0

    def __init__(self, message: str, *, code: int = 0, detail: int = 0) -> None:
        super().__init__(message)
        self.code = code or type(self).code
        self.detail = detail


class Malformed(DeviceError):
    """The device could not parse a request."""

    code = ErrorCode.MALFORMED


class UnknownRequest(DeviceError):
    """The firmware does not know this request type."""

    code = ErrorCode.UNKNOWN_TYPE


class BadArgument(DeviceError):
    """A request argument is out of range."""

    code = ErrorCode.BAD_ARGUMENT


class Busy(DeviceError):
    """The device is busy with another operation."""

    code = ErrorCode.BUSY


class NotFound(DeviceError):
    """No such sensor, slot or tensor."""

    code = ErrorCode.NOT_FOUND


class NoModel(DeviceError):
    """No model is active on the device."""

    code = ErrorCode.NO_MODEL


class ModelTooLarge(DeviceError):
    """The model does not fit a model slot in flash."""

    code = ErrorCode.MODEL_TOO_LARGE


class ArenaTooSmall(DeviceError):
    """The model needs more RAM for its tensor arena than the board has."""

    code = ErrorCode.ARENA_TOO_SMALL


class UnsupportedOp(DeviceError):
    """The model uses an operator the firmware lacks."""

    code = ErrorCode.UNSUPPORTED_OP


class ModelInvalid(DeviceError):
    """The bytes are not a valid .tflite model."""

    code = ErrorCode.MODEL_INVALID


class OutOfOrder(DeviceError):
    """A chunk arrived at an unexpected offset; detail is the expected one."""

    code = ErrorCode.OUT_OF_ORDER


class VerifyFailed(DeviceError):
    """The received image does not match its size or SHA-256."""

    code = ErrorCode.VERIFY_FAILED


class NoFallback(DeviceError):
    """There is no previous model to roll back to."""

    code = ErrorCode.NO_FALLBACK


class SlotActive(DeviceError):
    """The running model's slot cannot be overwritten."""

    code = ErrorCode.SLOT_ACTIVE


class SlotFallback(DeviceError):
    """The slot holds the fallback model (the rollback target) and the request did
    not consent to overwriting it (MODEL_BEGIN without REPLACE_FALLBACK); detail
    is the slot."""

    code = ErrorCode.SLOT_FALLBACK


class InferFailed(DeviceError):
    """The interpreter failed to run the model."""

    code = ErrorCode.INFER_FAILED


class NotSupported(DeviceError):
    """The device lacks this capability."""

    code = ErrorCode.NOT_SUPPORTED


class Internal(DeviceError):
    """The firmware hit a fault of its own (a bug)."""

    code = ErrorCode.INTERNAL


class NoTransfer(DeviceError):
    """A model chunk or end arrived with no transfer begun."""

    code = ErrorCode.NO_TRANSFER


class ImageUnsigned(DeviceError):
    """The board accepts only update images signed by a key it was provisioned with
    (capability SIGNED_ONLY) and was given a raw model or an unsigned image. Sign it with
    :func:`workbench.deploy.signing.make_update_image` (or ``deploy_model(..., key=...)``)."""

    code = ErrorCode.IMAGE_UNSIGNED


class SignatureInvalid(DeviceError):
    """The update image's SHA-256 or signature does not match its bytes (it was changed
    after it was made or signed), or the key that signed it is not one the board trusts."""

    code = ErrorCode.SIGNATURE_INVALID


class NotPending(DeviceError):
    """MODEL_CONFIRM with no test switch on trial: nothing to confirm (the board may have
    been reset and reverted it; its slot table says which model runs)."""

    code = ErrorCode.NOT_PENDING


class SelfTestFailed(DeviceError):
    """The board's self-test rejected the model of a test switch and reverted to the
    previous one; detail is the slot now active (0xFF: none)."""

    code = ErrorCode.SELF_TEST_FAILED


class DeltaBaseMismatch(DeviceError):
    """A delta patch was made from another image than the one the device runs (its
    active slot); the message names what the device runs. detail is the active slot
    (0xFF: none). Send the full image, or a patch made from the active image."""

    code = ErrorCode.DELTA_BASE_MISMATCH


_BY_CODE = {cls.code: cls for cls in (
    Malformed, UnknownRequest, BadArgument, Busy, NotFound, NoModel, ModelTooLarge,
    ArenaTooSmall, UnsupportedOp, ModelInvalid, OutOfOrder, VerifyFailed, NoFallback,
    SlotActive, InferFailed, NotSupported, NoTransfer, Internal, SlotFallback, ImageUnsigned,
    SignatureInvalid, NotPending, SelfTestFailed, DeltaBaseMismatch)}


def error_from_frame(err: Error) -> DeviceError:
    """The exception for a decoded ERROR payload (an unknown code gives DeviceError)."""
    cls = _BY_CODE.get(err.code, DeviceError)
    return cls(err.message, code=err.code, detail=err.detail)
