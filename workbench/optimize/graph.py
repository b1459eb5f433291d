"""Op-by-op analysis of a .tflite model: shapes, MACs, parameters, memory plan.

:func:`analyze` walks subgraph 0 (the one TFLite Micro runs) of a validated model
and returns a frozen :class:`Graph`: one :class:`OpStats` per operator, in execution
order, plus model totals and a TFLM-style plan of activation memory. It reads the
model through :func:`workbench.tflite.inspect_model` (the one parse of a .tflite: op
names, tensors, options), loads no interpreter and imports no TensorFlow, so it is
cheap enough to run on every variant.

Counting conventions (per inference, the batch included):

- ``CONV_2D``: ``batch * out_h * out_w * out_c * kh * kw * in_c`` MACs, where
  ``in_c`` is the filter's input depth (so a grouped convolution counts its groups
  once). ``CONV_3D`` adds the kernel depth.
- ``DEPTHWISE_CONV_2D``: ``batch * out_h * out_w * out_c * kh * kw``.
- ``TRANSPOSE_CONV``: ``batch * in_h * in_w * in_c * kh * kw * out_c`` (each input
  value is scattered through the whole kernel).
- ``FULLY_CONNECTED``: ``batch * units * in_features``; ``BATCH_MATMUL``:
  ``batch * rows * cols * depth``.
- Recurrent ops (``UNIDIRECTIONAL_SEQUENCE_LSTM``, ``SVDF``, ...) count their
  matrix products approximately (see :func:`_macs`).
- Pooling, element-wise, activation, softmax and data-movement ops count 0 MACs;
  the latency model (:mod:`workbench.optimize.latency`) still charges them cycles
  per element.

``params`` counts the *elements* of constant tensors that are parameters: the
weights and biases of MAC ops, and the constant operands of other ops (an ADD's
constant, PRELU's alphas), but not int32/int64 shape and index operands (RESHAPE's
new shape, PAD's paddings, MEAN's axes). An op counts each of its own; the graph
total counts each constant buffer once, because the converter stores identical
constants once (an untrained model whose biases are all zero may share one bias
buffer between layers, so its total is smaller than the Keras parameter count).
``weight_bytes`` is the stored size of *all* constant buffers the ops use, shape
operands included, each once.

Usage::

    from workbench.optimize.graph import analyze
    g = analyze(Path("model.tflite").read_bytes())
    print(g.macs, g.params, g.activation_peak_bytes, g.op_counts)
    for op in g.ops:
        print(op.index, op.op, op.macs, op.detail, op.compute_dtype)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from ..tflite import ModelInfo, inspect_model
from ..tflite.hybrid import is_hybrid_operands
from ..tflite.schema import enum_names, schema

__all__ = [
    "TensorSpec",
    "OpStats",
    "Buffer",
    "Graph",
    "analyze",
    "MEMORY_ALIGNMENT",
]

#: Activation buffers in the memory plan start at multiples of this many bytes and
#: are rounded up to it, as TFLite Micro's arena allocator does.
MEMORY_ALIGNMENT = 16

# Bytes per element; sub-byte types are fractions (packed two or four per byte).
_DTYPE_BYTES = {
    "float32": 4, "float16": 2, "bfloat16": 2, "float64": 8,
    "int8": 1, "uint8": 1, "int16": 2, "uint16": 2, "int32": 4, "uint32": 4,
    "int64": 8, "uint64": 8, "bool": 1, "complex64": 8, "complex128": 16,
    "int4": 0.5, "uint4": 0.5, "int2": 0.25,
    "float8_e4m3fn": 1, "float8_e5m2": 1,
}
_INTEGER_COMPUTE = ("int8", "int16", "uint8")
# Conversion ops: their compute type is their integer side, so that the
# QUANTIZE/DEQUANTIZE pair at the edges of an int8 model with float I/O does not
# count as "float ops left behind".
_CONVERSION_OPS = ("QUANTIZE", "DEQUANTIZE")
# Ops whose constant operands are all parameters (weights and biases).
_MAC_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "CONV_3D", "FULLY_CONNECTED",
            "BATCH_MATMUL", "UNIDIRECTIONAL_SEQUENCE_LSTM", "BIDIRECTIONAL_SEQUENCE_LSTM",
            "LSTM", "UNIDIRECTIONAL_SEQUENCE_RNN", "RNN", "SVDF")
_ACTIVATION_TEXT = {
    "NONE": "", "RELU": "ReLU", "RELU_N1_TO_1": "ReLU(-1..1)", "RELU6": "ReLU6",
    "TANH": "tanh", "SIGN_BIT": "sign bit",
}


@dataclass(frozen=True)
class TensorSpec:
    """One tensor as an op sees it.

    ``nbytes`` is the size of its data from shape and type (sub-byte types
    rounded up); ``constant`` is True for tensors whose data is stored in the
    model (weights, biases, lookup tables, shape operands).
    """

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    nbytes: int
    constant: bool

    @property
    def size(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)


@dataclass(frozen=True)
class OpStats:
    """One operator of subgraph 0, in execution order.

    ``op`` is the schema name (``"CONV_2D"``) or ``"CUSTOM:<name>"``. ``params``
    counts the elements of the op's constant inputs; ``macs`` follows the
    conventions in the module docstring (0 for ops without multiply-accumulates).
    ``compute_dtype`` is the type the kernel computes in: ``"int8"``, ``"int16"``
    (int16 activations, int8 weights), ``"float32"``, ``"hybrid"`` (float
    activations with int8 constant weights: a dynamic-range op), or the activation
    dtype for other ops (e.g. ``"int32"`` for shape arithmetic). QUANTIZE and
    DEQUANTIZE report their integer side.
    """

    index: int
    op: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    params: int
    macs: int
    detail: str
    compute_dtype: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Buffer:
    """One activation tensor placed in the planned arena.

    ``offset`` is in bytes from the start of the planned area; ``nbytes`` is the
    tensor's own size (its slot is rounded up to :data:`MEMORY_ALIGNMENT`). The
    tensor is alive from op ``first_op`` to op ``last_op`` inclusive (model inputs
    from op 0, model outputs to the last op).
    """

    tensor: str
    offset: int
    nbytes: int
    first_op: int
    last_op: int


@dataclass(frozen=True)
class Graph:
    """What :func:`analyze` found in a model. Sizes are bytes.

    ``params``/``macs`` are model totals (constant buffers counted once);
    ``weight_bytes`` is the stored size of all constant data used by the ops;
    ``activation_peak_bytes`` is the size of the activation area from a greedy,
    largest-first memory plan like TFLM's (``memory_layout``). TFLM's real arena
    adds persistent structures (tensor metadata, per-channel quantization data,
    kernel scratch buffers) on top, and TFLM's planner borrows temporary memory while
    allocating: measure the arena a board needs with
    :func:`workbench.tflite.min_arena` (its ``needed_bytes``).
    """

    ops: tuple[OpStats, ...]
    params: int
    macs: int
    weight_bytes: int
    activation_peak_bytes: int
    memory_layout: tuple[Buffer, ...]
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @property
    def op_counts(self) -> dict[str, int]:
        """How many times each op occurs, in order of first appearance."""
        counts: dict[str, int] = {}
        for op in self.ops:
            counts[op.op] = counts.get(op.op, 0) + 1
        return counts

    @property
    def float_ops(self) -> tuple[OpStats, ...]:
        """Ops computing in float32 in a model whose other compute is integer.

        These are the ops a post-training quantization left in float (each usually
        wrapped in DEQUANTIZE/QUANTIZE). Empty for an all-float model and for a
        clean integer one.
        """
        if not any(op.compute_dtype in _INTEGER_COMPUTE for op in self.ops):
            return ()
        return tuple(op for op in self.ops if op.compute_dtype == "float32")

    @property
    def is_hybrid(self) -> bool:
        """Any op has float activations and int8 constant weights (dynamic-range
        quantization). LiteRT runs such ops; TensorFlow Lite Micro refuses them."""
        return any(op.compute_dtype == "hybrid" for op in self.ops)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: every field, plus ``op_counts``, ``float_ops`` (indices)
        and ``is_hybrid``."""
        return {
            "ops": [op.to_dict() for op in self.ops],
            "params": self.params,
            "macs": self.macs,
            "weight_bytes": self.weight_bytes,
            "activation_peak_bytes": self.activation_peak_bytes,
            "memory_layout": [asdict(b) for b in self.memory_layout],
            "inputs": [asdict(t) for t in self.inputs],
            "outputs": [asdict(t) for t in self.outputs],
            "op_counts": self.op_counts,
            "float_ops": [op.index for op in self.float_ops],
            "is_hybrid": self.is_hybrid,
        }


# --------------------------------------------------------------------------------------
# Analysis
# --------------------------------------------------------------------------------------


def analyze(model: bytes | ModelInfo) -> Graph:
    """Analyze subgraph 0 of a .tflite model op by op.

    Args:
        model: the bytes of a .tflite file, validated and parsed here with
            :func:`workbench.tflite.inspect_model`; or the :class:`ModelInfo` that
            function already returned (then nothing is parsed again).

    Returns:
        A frozen :class:`Graph`.

    Raises:
        workbench.tflite.ModelError: malformed, truncated or non-TFLite bytes (the
            message says what is wrong).
        TypeError: ``model`` is neither bytes-like nor a ModelInfo (e.g. a path).
    """
    info = model if isinstance(model, ModelInfo) else inspect_model(model)
    if info.graph is None:
        raise TypeError("analyze() needs a ModelInfo from inspect_model(), with its graph")
    return _Analyzer(info).run()


class _Analyzer:
    def __init__(self, info: ModelInfo):
        fb = schema()
        self.g = info.graph
        self.tensors = self.g.tensors
        self.act_names = enum_names(fb.ActivationFunctionType)
        self.pad_names = enum_names(fb.Padding)
        self._specs: dict[int, TensorSpec] = {}

    # -- tensors -----------------------------------------------------------------------

    def _buffer_bytes(self, buf_index: int) -> int:
        return self.g.buffer_bytes[buf_index] if 0 < buf_index < len(self.g.buffer_bytes) else 0

    def spec(self, index: int) -> TensorSpec:
        if index not in self._specs:
            t = self.tensors[index]
            shape = tuple(int(d) for d in t.shape)
            elems = math.prod(shape)
            nbytes = math.ceil(elems * _DTYPE_BYTES.get(t.dtype, 1))
            constant = self.g.constant_bytes(t) > 0 and not t.is_variable
            self._specs[index] = TensorSpec(index=index, name=t.name or f"tensor_{index}",
                                            shape=shape, dtype=t.dtype, nbytes=int(nbytes),
                                            constant=constant)
        return self._specs[index]

    # -- ops ---------------------------------------------------------------------------

    def run(self) -> Graph:
        op_list = []
        for op in self.g.operators:
            k, name = op.index, op.opcode
            ins = tuple(self.spec(i) for i in op.inputs if i >= 0)
            outs = tuple(self.spec(i) for i in op.outputs if i >= 0)
            opts = op.options
            macs = _macs(name, ins, outs, opts)
            op_list.append(OpStats(
                index=k,
                op=name,
                inputs=ins,
                outputs=outs,
                params=sum(t.size for pos, t in _unique(ins) if _is_parameter(name, t, macs, pos)),
                macs=int(macs),
                detail=self.detail(name, ins, outs, opts),
                compute_dtype=_compute_dtype(name, ins, outs),
            ))
        ops = tuple(op_list)

        # Totals: each constant buffer once.
        seen_buffers: set[int] = set()
        params = weight_bytes = 0
        counted: set[int] = set()
        for op in ops:
            for pos, t in enumerate(op.inputs):
                if not t.constant:
                    continue
                buf = self.tensors[t.index].buffer
                if buf not in seen_buffers:
                    seen_buffers.add(buf)
                    weight_bytes += self._buffer_bytes(buf)
                if buf not in counted and _is_parameter(op.op, t, op.macs, pos):
                    counted.add(buf)
                    params += t.size

        g_inputs = tuple(self.spec(i) for i in self.g.inputs)
        g_outputs = tuple(self.spec(i) for i in self.g.outputs)
        layout, peak = _plan_memory(ops, g_inputs, g_outputs,
                                    {t.index for t in self.tensors if t.is_variable})
        return Graph(
            ops=ops,
            params=int(params),
            macs=int(sum(op.macs for op in ops)),
            weight_bytes=int(weight_bytes),
            activation_peak_bytes=int(peak),
            memory_layout=layout,
            inputs=g_inputs,
            outputs=g_outputs,
        )

    # -- human-readable detail -------------------------------------------------------

    def _act(self, opts) -> str:
        code = getattr(opts, "fusedActivationFunction", 0) or 0
        return _ACTIVATION_TEXT.get(self.act_names.get(code, ""), "")

    def _pad(self, opts) -> str:
        return self.pad_names.get(getattr(opts, "padding", 0), "?")

    def detail(self, name, ins, outs, opts) -> str:
        parts: list[str] = []
        try:
            if name in ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV") and opts is not None:
                w = _weights(name, ins)
                if w is not None and len(w.shape) == 4:
                    kh, kw = w.shape[1], w.shape[2]
                    kind = "depthwise" if name == "DEPTHWISE_CONV_2D" else "kernel"
                    parts.append(f"{kh}x{kw} {kind}")
                sh, sw = getattr(opts, "strideH", 1), getattr(opts, "strideW", 1)
                parts.append(f"stride {sh}" if sh == sw else f"stride {sh}x{sw}")
                dh = getattr(opts, "dilationHFactor", 1) or 1
                dw = getattr(opts, "dilationWFactor", 1) or 1
                if dh > 1 or dw > 1:
                    parts.append(f"dilation {dh}" if dh == dw else f"dilation {dh}x{dw}")
                mult = getattr(opts, "depthMultiplier", 1) or 1
                if name == "DEPTHWISE_CONV_2D" and mult > 1:
                    parts.append(f"multiplier {mult}")
                parts.append(self._pad(opts))
            elif name == "FULLY_CONNECTED":
                w = _weights(name, ins)
                if w is not None and len(w.shape) == 2:
                    parts.append(f"{w.shape[1]} -> {w.shape[0]}")
            elif name in ("AVERAGE_POOL_2D", "MAX_POOL_2D", "L2_POOL_2D") and opts is not None:
                parts.append(f"{opts.filterHeight}x{opts.filterWidth} pool")
                sh, sw = opts.strideH, opts.strideW
                parts.append(f"stride {sh}" if sh == sw else f"stride {sh}x{sw}")
                parts.append(self._pad(opts))
            elif name == "SOFTMAX" and opts is not None:
                parts.append(f"beta {opts.beta:g}")
            elif outs and name in ("RESHAPE", "SQUEEZE", "EXPAND_DIMS", "MEAN", "SUM",
                                   "REDUCE_MAX", "CONCATENATION", "PAD", "TRANSPOSE",
                                   "STRIDED_SLICE", "QUANTIZE", "DEQUANTIZE"):
                src = ins[0].shape if ins else ()
                parts.append(f"{_fmt_shape(src)} -> {_fmt_shape(outs[0].shape)}")
            act = self._act(opts) if opts is not None else ""
            if act:
                parts.append(act)
            if name in ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "BATCH_MATMUL") and (
                    _compute_dtype(name, ins, outs) == "hybrid"):
                parts.append("int8 weights, float activations")
        except Exception:  # detail is cosmetic: never fail an analysis over it
            pass
        return ", ".join(p for p in parts if p)


# --------------------------------------------------------------------------------------
# Helpers (pure functions)
# --------------------------------------------------------------------------------------


def _unique(specs):
    """(position, tensor) for each distinct tensor, first occurrence."""
    seen = set()
    for pos, t in enumerate(specs):
        if t.index not in seen:
            seen.add(t.index)
            yield pos, t


def _is_parameter(op_name: str, t: TensorSpec, macs: int, position: int) -> bool:
    """Constant data that is a model parameter: the weights and biases of a MAC op,
    and the non-index constants of other ops (an ADD's constant operand, PRELU's
    alphas); not the int32/int64 shape and index operands of ops such as RESHAPE,
    PAD, TRANSPOSE, MEAN, or TRANSPOSE_CONV's output shape."""
    if not t.constant:
        return False
    if op_name == "TRANSPOSE_CONV" and position == 0:
        return False
    if macs or op_name in _MAC_OPS:
        return True
    return t.dtype not in ("int32", "int64")


def _fmt_shape(shape) -> str:
    return "x".join(str(d) for d in shape) if shape else "scalar"


def _weights(name: str, ins: tuple[TensorSpec, ...]) -> TensorSpec | None:
    """The weight (filter) operand of a MAC op: input 1 for CONV_2D, DEPTHWISE_CONV_2D,
    FULLY_CONNECTED and CONV_3D, and also for TRANSPOSE_CONV (output_shape, weights,
    input[, bias])."""
    return ins[1] if len(ins) > 1 else None


def _activation_input(name: str, ins: tuple[TensorSpec, ...]) -> TensorSpec | None:
    if name == "TRANSPOSE_CONV":
        return ins[2] if len(ins) > 2 else None
    for t in ins:
        if not t.constant:
            return t
    return ins[0] if ins else None


def _macs(name: str, ins: tuple[TensorSpec, ...], outs: tuple[TensorSpec, ...], opts) -> int:
    """Multiply-accumulates of one op (see the module docstring for conventions)."""
    if not outs:
        return 0
    out = outs[0]
    w = _weights(name, ins)
    if name == "CONV_2D" and w is not None and len(w.shape) == 4 and len(out.shape) == 4:
        _, kh, kw, in_c = w.shape
        return out.size * kh * kw * in_c
    if name == "DEPTHWISE_CONV_2D" and w is not None and len(w.shape) == 4:
        _, kh, kw, _ = w.shape
        return out.size * kh * kw
    if name == "CONV_3D" and w is not None and len(w.shape) == 5:
        kd, kh, kw, in_c, _ = w.shape
        return out.size * kd * kh * kw * in_c
    if name == "TRANSPOSE_CONV" and w is not None and len(w.shape) == 4:
        x = _activation_input(name, ins)
        out_c, kh, kw, _ = w.shape
        return (x.size if x is not None else 0) * kh * kw * out_c
    if name == "FULLY_CONNECTED" and w is not None and len(w.shape) == 2:
        units, depth = w.shape
        x = _activation_input(name, ins)
        batch = (x.size // depth) if (x is not None and depth) else 1
        return batch * units * depth
    if name == "BATCH_MATMUL" and len(ins) >= 2 and len(ins[0].shape) >= 2:
        adj_x = bool(getattr(opts, "adjX", False))
        depth = ins[0].shape[-2] if adj_x else ins[0].shape[-1]
        return out.size * depth
    if name in ("UNIDIRECTIONAL_SEQUENCE_LSTM", "BIDIRECTIONAL_SEQUENCE_LSTM", "LSTM"):
        # inputs: x, then 4 input-to-gate (units x in) and 4 recurrent (units x units)
        # weight matrices; every time step multiplies all eight.
        x = ins[0] if ins else None
        mats = [t for t in ins[1:9] if t.constant and len(t.shape) == 2]
        if x is None or not mats or len(x.shape) < 2:
            return 0
        steps = x.size // x.shape[-1]
        per_step = sum(t.shape[0] * t.shape[1] for t in mats)
        return steps * per_step * (2 if name.startswith("BIDIRECTIONAL") else 1)
    if name in ("UNIDIRECTIONAL_SEQUENCE_RNN", "RNN", "SVDF"):
        x = ins[0] if ins else None
        mats = [t for t in ins[1:3] if t.constant and len(t.shape) == 2]
        if x is None or not mats or len(x.shape) < 1 or not x.shape[-1]:
            return 0
        rows = x.size // x.shape[-1]
        return rows * sum(t.shape[0] * t.shape[1] for t in mats)
    return 0


def _compute_dtype(name: str, ins: tuple[TensorSpec, ...], outs: tuple[TensorSpec, ...]) -> str:
    if name in _CONVERSION_OPS:
        for t in (*outs, *ins):
            if t.dtype in _INTEGER_COMPUTE:
                return t.dtype
    act = [t for t in ins if not t.constant]
    if name == "TRANSPOSE_CONV":
        act = [t for t in act if t.dtype != "int32"] or act  # skip the output_shape operand
    dtype = (act[0].dtype if act else (outs[0].dtype if outs else (ins[0].dtype if ins else "")))
    if is_hybrid_operands(dtype, (t.dtype for t in ins if t.constant)):
        return "hybrid"
    return dtype


def _plan_memory(ops: tuple[OpStats, ...], g_inputs, g_outputs, variables: set[int]):
    """Greedy largest-first placement of activation tensors, as TFLM's planner does.

    Each non-constant tensor lives from the op that produces it (op 0 for model
    inputs and variables) to the last op that reads it (the last op for model
    outputs and variables). Buffers are placed in order of decreasing size, each at
    the lowest offset where it overlaps no already placed buffer that is alive at
    the same time.
    """
    last = max(len(ops) - 1, 0)
    first: dict[int, int] = {}
    end: dict[int, int] = {}
    spec: dict[int, TensorSpec] = {}

    def touch(t: TensorSpec, k: int) -> None:
        if t.constant:
            return
        spec[t.index] = t
        first[t.index] = min(first.get(t.index, k), k)
        end[t.index] = max(end.get(t.index, k), k)

    for t in g_inputs:
        touch(t, 0)
    for op in ops:
        for t in op.outputs:
            touch(t, op.index)
        for t in op.inputs:
            touch(t, op.index)
    for t in g_outputs:
        touch(t, last)
    for idx in variables & set(spec):
        first[idx], end[idx] = 0, last
    for t in g_inputs:
        if t.index in first:
            first[t.index] = 0

    def aligned(n: int) -> int:
        return -(-max(n, 1) // MEMORY_ALIGNMENT) * MEMORY_ALIGNMENT

    order = sorted(spec, key=lambda i: (-aligned(spec[i].nbytes), first[i], i))
    placed: list[tuple[int, int, int]] = []  # (offset, size, tensor index)
    offsets: dict[int, int] = {}
    for idx in order:
        size = aligned(spec[idx].nbytes)
        live = sorted((off, sz) for off, sz, j in placed
                      if first[j] <= end[idx] and first[idx] <= end[j])
        candidate = 0
        for off, sz in live:
            if candidate + size <= off:
                break
            candidate = max(candidate, off + sz)
        offsets[idx] = candidate
        placed.append((candidate, size, idx))
    peak = max((off + sz for off, sz, _ in placed), default=0)
    layout = tuple(
        Buffer(tensor=spec[i].name, offset=offsets[i], nbytes=spec[i].nbytes,
               first_op=first[i], last_op=end[i])
        for i in sorted(offsets, key=lambda i: (offsets[i], first[i], i))
    )
    return layout, peak
