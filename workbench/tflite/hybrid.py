"""Dynamic-range ("hybrid") models: float activations computed with int8 weights.

The converter's dynamic-range quantization (``quantize="dynamic"``) stores the
weights of large FULLY_CONNECTED, CONV_2D, ... ops as int8 and leaves the
activations float32; LiteRT runs such ops with hybrid kernels, TFLite Micro has
none (its FULLY_CONNECTED refuses "Input type: FLOAT32 with filter type: INT8").
The rule, one place for everybody (:mod:`workbench.optimize.graph` labels such ops
``"hybrid"``, the link's image check and the virtual board refuse such models by
that name): an op is hybrid when its activation operand is float32 and one of its
constant operands is int8 or int4. Pure functions of the parsed graph; no TFLM.
"""

from __future__ import annotations

from collections.abc import Iterable

from .model import ModelInfo

__all__ = ["HYBRID_MESSAGE", "HYBRID_WEIGHT_DTYPES", "hybrid_ops", "is_hybrid_operands"]

HYBRID_WEIGHT_DTYPES = ("int8", "int4")
"""Constant operand types that make a float op hybrid."""

HYBRID_MESSAGE = ("hybrid (dynamic-range) model: TFLite Micro has no hybrid kernels; "
                  "convert with full int8 quantization")
"""The reason a hybrid model does not run on a TFLite Micro board (device and host say it)."""


def is_hybrid_operands(activation_dtype: str, constant_dtypes: Iterable[str]) -> bool:
    """True when an op computing in ``activation_dtype`` has int8/int4 constant operands."""
    return activation_dtype == "float32" and any(
        d in HYBRID_WEIGHT_DTYPES for d in constant_dtypes)


def hybrid_ops(info: ModelInfo) -> list[str]:
    """The hybrid operators of subgraph 0, as ``"FULLY_CONNECTED (op 0)"``; [] if none.

    ``info`` comes from :func:`~.model.inspect_model` (with its graph). The
    activation operand is the first input that has no stored data (TRANSPOSE_CONV:
    the first that is not an int32 shape); QUANTIZE and DEQUANTIZE are conversions,
    never hybrid.
    """
    g = info.graph
    if g is None:
        return []
    found = []
    for op in g.operators:
        if op.opcode in ("QUANTIZE", "DEQUANTIZE"):
            continue
        ins = [g.tensors[i] for i in op.inputs if 0 <= i < len(g.tensors)]
        consts = [t for t in ins if g.constant_bytes(t) > 0 and not t.is_variable]
        acts = [t for t in ins if t not in consts]
        if op.opcode == "TRANSPOSE_CONV":
            acts = [t for t in acts if t.dtype != "int32"] or acts
        if acts and is_hybrid_operands(acts[0].dtype, (t.dtype for t in consts)):
            found.append(f"{op.opcode} (op {op.index})")
    return found
