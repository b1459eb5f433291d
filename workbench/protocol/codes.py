"""Codes of the framed protocol: message types, error codes, capability bits,
element types, slot states and modes (docs/protocol.md sections 4.1, 5 and 6).

Every number a frame header or a payload carries as a code is named here once.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag

PROTOCOL_VERSION = 1
RESPONSE_BIT = 0x80


class Msg(IntEnum):
    """Frame types. Requests are 0x01-0x3F, their responses ``type | 0x80``;
    device events (``req_id`` 0) are 0x40-0x7F; ERROR answers any request."""

    HELLO = 0x01
    SENSORS = 0x02
    STREAM_START = 0x03
    STREAM_STOP = 0x04
    INFER = 0x05
    SET_INPUT = 0x06
    GET_OUTPUT = 0x07
    MODEL_BEGIN = 0x10
    MODEL_CHUNK = 0x11
    MODEL_END = 0x12
    MODEL_COMMIT = 0x13
    MODEL_ROLLBACK = 0x14
    SLOT_STATUS = 0x15
    MODEL_CONFIRM = 0x16
    PING = 0x20
    RESET = 0x21
    SET_MODE = 0x22
    TELEMETRY_CONFIG = 0x23
    SIM_SCENARIO = 0x30
    SIM_FAULTS = 0x31
    # device events
    SAMPLES = 0x40
    TELEMETRY = 0x41
    LOG = 0x42
    # responses that are not request | 0x80
    ERROR = 0xFF


def response_type(request: int) -> int:
    return request | RESPONSE_BIT


def is_event(ftype: int) -> bool:
    return 0x40 <= ftype <= 0x7F


class ErrorCode(IntEnum):
    """Typed errors carried by an ERROR frame. The host maps each to an exception."""

    MALFORMED = 1
    UNKNOWN_TYPE = 2
    BAD_ARGUMENT = 3
    BUSY = 4
    NOT_FOUND = 5
    NO_MODEL = 6
    MODEL_TOO_LARGE = 7
    ARENA_TOO_SMALL = 8
    UNSUPPORTED_OP = 9
    MODEL_INVALID = 10
    OUT_OF_ORDER = 11
    VERIFY_FAILED = 12
    NO_FALLBACK = 13
    SLOT_ACTIVE = 14
    INFER_FAILED = 15
    NOT_SUPPORTED = 16
    NO_TRANSFER = 17
    INTERNAL = 18
    SLOT_FALLBACK = 19
    """MODEL_BEGIN into the slot holding the fallback without REPLACE_FALLBACK."""
    IMAGE_UNSIGNED = 20
    """A SIGNED_ONLY board was sent a raw model or an image without a signature."""
    SIGNATURE_INVALID = 21
    """A signed update image whose SHA-256 TLV or signature does not match its bytes, or
    whose signing key the board was not provisioned with (docs/protocol.md 7.6)."""
    NOT_PENDING = 22
    """MODEL_CONFIRM with no test switch on trial."""
    SELF_TEST_FAILED = 23
    """The device's self-test rejected a test switch; it reverted to the previous model."""
    DELTA_BASE_MISMATCH = 24
    """A delta MODEL_BEGIN (or its MODEL_END) whose base is not the image the device runs."""


class Capability(IntFlag):
    STREAM = 1 << 0
    INFER = 1 << 1
    MODEL_UPDATE = 1 << 2
    TELEMETRY = 1 << 3
    LINE_MODE = 1 << 4
    SIMULATED = 1 << 5
    """A virtual board: SIM_SCENARIO and SIM_FAULTS are available."""
    SIGNED_ONLY = 1 << 6
    """The board was provisioned with public keys and accepts only update images signed
    by one of them (docs/protocol.md 7.6); a raw ``.tflite`` is refused (IMAGE_UNSIGNED)."""
    DELTA = 1 << 7
    """The board applies delta updates: MODEL_BEGIN with BeginFlag.DELTA (docs/protocol.md 7.5)."""


class BeginFlag(IntFlag):
    """MODEL_BEGIN's ``flags`` (docs/protocol.md 5.8). Other bits are reserved: sent as 0."""

    REPLACE_FALLBACK = 1 << 0
    """The host consents to overwrite the fallback (rollback target); it sets this
    only after its own image check passed."""
    DELTA = 1 << 1
    """The object sent is a detools sequential patch from the active slot's image to the
    new one (:mod:`workbench.protocol.delta`); MODEL_BEGIN then carries ``image_size`` and
    ``base_sha256`` after ``flags`` (docs/protocol.md 5.8, 7.5)."""


class CommitFlag(IntFlag):
    """MODEL_COMMIT's ``flags`` (docs/protocol.md 5.11). Other bits are reserved: sent as 0."""

    TEST = 1 << 0
    """A test switch: the model runs now and reverts at the next reset unless confirmed
    (MODEL_CONFIRM). Without it the switch is permanent."""


class DType(IntEnum):
    """Element types of samples and tensors (codes shared by SAMPLES and INFER)."""

    INT8 = 1
    UINT8 = 2
    INT16 = 3
    UINT16 = 4
    INT32 = 5
    FLOAT32 = 6

    @property
    def numpy(self) -> str:
        return {1: "<i1", 2: "<u1", 3: "<i2", 4: "<u2", 5: "<i4", 6: "<f4"}[self.value]

    @property
    def size(self) -> int:
        return {1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4}[self.value]

    @classmethod
    def from_name(cls, name: str) -> DType:
        try:
            return cls[name.upper()]
        except KeyError:
            raise ValueError(f"unsupported element type {name!r}; use one of "
                             + ", ".join(m.name.lower() for m in cls)) from None


class SlotState(IntEnum):
    EMPTY = 0
    RECEIVING = 1
    VERIFIED = 2
    ACTIVE = 3
    FALLBACK = 4
    INVALID = 5
    TESTING = 6
    """Active on a test switch: reverts at the next reset unless confirmed."""
    PENDING = 7
    """A test switch recorded but not yet booted: it runs once at the next boot."""


class Mode(IntEnum):
    FRAMED = 0
    LINE = 1


NO_SLOT = 0xFF
ALL_SENSORS = 0xFF
