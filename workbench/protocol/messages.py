"""The message set of the framed protocol in one namespace.

``from workbench.protocol import messages as m`` gives every code, payload class
and codec helper: ``m.Msg.HELLO``, ``m.Hello(...).encode()``, ``m.Info.decode(p)``.
They are defined, by family, in:

- :mod:`.codes`: message types, error codes, capabilities, dtypes, slot states, modes;
- :mod:`.wire`: primitives (:class:`Writer`, :class:`Reader`, :class:`MalformedPayload`)
  and the :class:`Field` declarations that most payloads are encoded from;
- :mod:`.info` (HELLO, INFO, SENSORS), :mod:`.streaming` (STREAM_*, SAMPLES),
  :mod:`.inference` (INFER, RESULT, GET_OUTPUT), :mod:`.chunks` (chunk and offset
  layouts), :mod:`.transfer` (MODEL_*, SLOT_STATUS), :mod:`.control` (SET_MODE,
  TELEMETRY*, LOG, ERROR), :mod:`.simctl` (SIM_SCENARIO, SIM_FAULTS);
- :mod:`.limits`: the range of every field a host sets, and what the device answers.

Every payload type is a frozen dataclass with ``encode() -> bytes`` and
``decode(payload) -> instance``; ``decode`` raises :class:`MalformedPayload`
(a ``ValueError``) on a short, long or inconsistent payload. docs/protocol.md
describes the same layouts for firmware authors, and its worked examples are
the golden vectors of ``golden_vectors.json``.
"""

from __future__ import annotations

from .chunks import Chunk, Offset
from .codes import (
                    ALL_SENSORS,
                    NO_SLOT,
                    PROTOCOL_VERSION,
                    RESPONSE_BIT,
                    BeginFlag,
                    Capability,
                    CommitFlag,
                    DType,
                    ErrorCode,
                    Mode,
                    Msg,
                    SlotState,
                    is_event,
                    response_type,
)
from .control import Error, Log, SetMode, Telemetry, TelemetryConfig
from .inference import (
                    RESULT_LATENCY_ESTIMATED,
                    RESULT_OUTPUTS_DETACHED,
                    GetOutput,
                    Infer,
                    Result,
                    Tensor,
)
from .info import Hello, Info, SensorDesc, SensorList
from .simctl import Faults, ScenarioState, Text
from .streaming import (
                    SAMPLES_HEADER,
                    Samples,
                    StreamStart,
                    StreamStarted,
                    StreamStop,
                    StreamStopped,
)
from .transfer import (
                    ModelBegin,
                    ModelBegun,
                    ModelCommit,
                    ModelVerified,
                    SlotInfo,
                    SlotRef,
                    SlotTable,
)
from .wire import (
                    STR_MAX_BYTES,
                    Declared,
                    Field,
                    MalformedPayload,
                    Reader,
                    Writer,
                    f32_tidy,
)

_f32_tidy = f32_tidy  # the name this module used before the split

PAYLOADS: dict[tuple[int, str], type] = {
    (Msg.HELLO, "request"): Hello, (Msg.HELLO, "response"): Info,
    (Msg.SENSORS, "response"): SensorList,
    (Msg.STREAM_START, "request"): StreamStart, (Msg.STREAM_START, "response"): StreamStarted,
    (Msg.STREAM_STOP, "request"): StreamStop, (Msg.STREAM_STOP, "response"): StreamStopped,
    (Msg.INFER, "request"): Infer, (Msg.INFER, "response"): Result,
    (Msg.SET_INPUT, "request"): Chunk, (Msg.SET_INPUT, "response"): Offset,
    (Msg.GET_OUTPUT, "request"): GetOutput, (Msg.GET_OUTPUT, "response"): Chunk,
    (Msg.MODEL_BEGIN, "request"): ModelBegin, (Msg.MODEL_BEGIN, "response"): ModelBegun,
    (Msg.MODEL_CHUNK, "request"): Chunk, (Msg.MODEL_CHUNK, "response"): Offset,
    (Msg.MODEL_END, "response"): ModelVerified,
    (Msg.MODEL_COMMIT, "request"): ModelCommit, (Msg.MODEL_COMMIT, "response"): SlotRef,
    (Msg.MODEL_ROLLBACK, "response"): SlotRef, (Msg.MODEL_CONFIRM, "response"): SlotRef,
    (Msg.SLOT_STATUS, "response"): SlotTable,
    (Msg.SET_MODE, "request"): SetMode,
    (Msg.TELEMETRY_CONFIG, "request"): TelemetryConfig,
    (Msg.SIM_SCENARIO, "request"): Text, (Msg.SIM_SCENARIO, "response"): ScenarioState,
    (Msg.SIM_FAULTS, "request"): Faults,
    (Msg.SAMPLES, "event"): Samples, (Msg.TELEMETRY, "event"): Telemetry,
    (Msg.LOG, "event"): Log, (Msg.ERROR, "error"): Error,
}
"""The payload class of each (message type, role). Missing pairs carry no payload
(SENSORS, MODEL_END, MODEL_ROLLBACK, SLOT_STATUS, MODEL_CONFIRM and RESET requests; the empty
answers of RESET, SET_MODE, TELEMETRY_CONFIG, SIM_FAULTS) or raw bytes (PING)."""

__all__ = [
    "ALL_SENSORS", "NO_SLOT", "PAYLOADS", "PROTOCOL_VERSION", "RESPONSE_BIT",
    "RESULT_LATENCY_ESTIMATED", "RESULT_OUTPUTS_DETACHED", "SAMPLES_HEADER", "STR_MAX_BYTES",
    "BeginFlag", "Capability", "Chunk", "CommitFlag", "DType", "Declared", "Error", "ErrorCode",
    "Faults", "Field",
    "GetOutput", "Hello", "Infer", "Info", "Log", "MalformedPayload", "Mode", "ModelBegin",
    "ModelBegun", "ModelCommit", "ModelVerified", "Msg", "Offset", "Reader", "Result", "Samples",
    "ScenarioState",
    "SensorDesc", "SensorList", "SetMode", "SlotInfo", "SlotRef", "SlotState", "SlotTable",
    "StreamStart", "StreamStarted", "StreamStop", "StreamStopped", "Telemetry",
    "TelemetryConfig", "Tensor", "Text", "Writer", "f32_tidy", "is_event", "response_type",
]
