"""Inference on the device: inputs inline or in chunks, outputs inline or fetched.

Inputs that fit go inside the INFER request; larger ones go ahead as SET_INPUT
chunks (:func:`~.transfer.send_chunks`). Outputs too large for the RESULT frame
are flagged detached and fetched with GET_OUTPUT.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..protocol import messages as m
from .errors import LinkError
from .transfer import CHUNK_HEADER, send_chunks

if TYPE_CHECKING:
    from .session import Session

INFER_HEADER = 16
"""Bytes of an INFER payload that are not tensor data (count, flags)."""
INLINE_TENSOR_HEADER = 5
"""Bytes each inline input adds besides its data (index, length)."""


@dataclass(frozen=True)
class InferenceResult:
    outputs: list[np.ndarray]
    latency_us: int
    arena_bytes: int
    latency_estimated: bool
    """True when the latency was not measured on silicon (virtual board)."""


def infer(session: Session, *inputs: np.ndarray) -> InferenceResult:
    """Run the active model on the device with these input tensors.

    Inputs are sent as raw little-endian bytes of their dtype (cast and shape
    them as the model expects: see ``Device.slots()`` and ``workbench.tflite``).
    The request is not re-sent on time-out (``timeouts.infer``). Raises
    :class:`NoModel`, :class:`BadArgument` (wrong input size),
    :class:`InferFailed`, :class:`NotFramed` on a line-mode sketch.
    """
    session.require_framed("inference")
    inline: list[tuple[int, bytes]] = []
    budget = session.max_payload - INFER_HEADER
    for index, arr in enumerate(inputs):
        data = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        if len(data) + INLINE_TENSOR_HEADER <= budget:
            inline.append((index, data))
            budget -= len(data) + INLINE_TENSOR_HEADER
        else:
            send_chunks(session, m.Msg.SET_INPUT, index, data)
    frame = session.request(m.Msg.INFER, m.Infer(tuple(inline)).encode(),
                            timeout=session.timeouts.infer, retries=0)
    res = m.Result.decode(frame.payload)
    outputs = []
    for index, t in enumerate(res.outputs):
        data = t.data
        if res.flags & m.RESULT_OUTPUTS_DETACHED:
            data = fetch_output(session, index, t.nbytes)
        arr = np.frombuffer(data, dtype=t.dtype.numpy).reshape(t.shape)
        outputs.append(arr.copy())
    return InferenceResult(outputs, res.latency_us, res.arena_bytes,
                           bool(res.flags & m.RESULT_LATENCY_ESTIMATED))


def fetch_output(session: Session, index: int, nbytes: int) -> bytes:
    """Read output tensor ``index`` (``nbytes`` long) of the last inference in GET_OUTPUT chunks."""
    out = bytearray()
    step = session.max_payload - CHUNK_HEADER
    while len(out) < nbytes:
        got = m.Chunk.decode(session.request(m.Msg.GET_OUTPUT, m.GetOutput(
            index, len(out), min(step, nbytes - len(out))).encode()).payload)
        if got.offset != len(out) or not got.data:
            raise LinkError(f"GET_OUTPUT returned offset {got.offset}, expected {len(out)}")
        out += got.data
    return bytes(out)
