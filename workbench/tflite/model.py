"""Reading and verifying a ``.tflite`` file: one bounds-checked parse, pure Python.

:func:`inspect_model` is the only parser of model bytes in the workbench. It checks
every table, vector and index it touches (the Python flatbuffers runtime verifies
nothing), resolves operator names once, and returns a frozen :class:`ModelInfo`:
a summary (ops, inputs, outputs, size, SHA-256) plus :attr:`ModelInfo.graph`, the
parsed subgraph 0 (every tensor, every operator with its opcode name, tensor
indices and builtin options, the stored size of every buffer). The probe, the
runner and :func:`workbench.optimize.graph.analyze` all read models through it.

No TFLM code is loaded and nothing is written; garbage raises :class:`ModelError`.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import WorkbenchError
from .schema import dtype_name, enum_names, schema

__all__ = [
    "ModelError",
    "ModelGraph",
    "ModelInfo",
    "OperatorInfo",
    "TensorInfo",
    "inspect_model",
]

_TFLITE_IDENTIFIER = b"TFL3"

class ModelError(WorkbenchError, ValueError):
    """The model bytes cannot be run: malformed, unsupported, or need more memory.

    The message always says what is wrong and what to do about it. It is a
    ``ValueError`` so callers that already handle bad arguments handle it too.
    """




@dataclass(frozen=True)
class TensorInfo:
    """One tensor of a model, as declared in the flatbuffer.

    ``shape`` is the static shape (a dynamic batch is stored as 1 there);
    ``shape_signature`` keeps ``-1`` for dynamic dimensions, or equals ``shape``.
    ``scale``/``zero_point`` are the per-tensor quantization parameters, or None
    for unquantized (or per-axis quantized) tensors. ``buffer`` is the index of its
    data buffer (0: none) and ``is_variable`` marks state kept between inferences.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: float | None
    zero_point: int | None
    index: int
    shape_signature: tuple[int, ...]
    buffer: int = 0
    is_variable: bool = False

    @property
    def size(self) -> int:
        """Number of elements."""
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1


@dataclass(frozen=True)
class OperatorInfo:
    """One operator of subgraph 0, in execution order.

    ``opcode`` is the schema name (``"FULLY_CONNECTED"``), ``"CUSTOM:<name>"`` for a
    custom op, or ``"BUILTIN_<n>"`` for a code this schema does not know. ``inputs``
    and ``outputs`` are tensor indices into :attr:`ModelGraph.tensors` (``-1``: an
    omitted optional input). ``options`` is the schema's builtin-options object
    (e.g. ``Conv2DOptionsT``: ``strideH``, ``padding``, ``fusedActivationFunction``)
    or None; treat it as read-only.
    """

    index: int
    opcode: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class ModelGraph:
    """Subgraph 0 of a model (the one TFLM runs), as parsed by :func:`inspect_model`.

    ``tensors`` holds every tensor, by index; ``inputs``/``outputs`` are tensor
    indices; ``buffer_bytes[i]`` is the stored data size of buffer ``i`` (0 for an
    empty buffer, including the sentinel buffer 0).
    """

    tensors: tuple[TensorInfo, ...]
    operators: tuple[OperatorInfo, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    buffer_bytes: tuple[int, ...]

    def constant_bytes(self, tensor: TensorInfo) -> int:
        """Bytes of data stored in the model for ``tensor`` (0: computed at run time)."""
        b = tensor.buffer
        return self.buffer_bytes[b] if 0 < b < len(self.buffer_bytes) else 0


@dataclass(frozen=True)
class ModelInfo:
    """A validated .tflite model, from :func:`inspect_model`.

    ``ops`` are unique operator names in graph order (subgraph 0 first), builtin
    ops by their schema name (``"FULLY_CONNECTED"``), custom ops as
    ``"CUSTOM:<name>"``. ``inputs``/``outputs`` describe subgraph 0, the one TFLM runs.
    ``has_dynamic_batch`` is True when any of those inputs/outputs has a ``-1`` in its
    ``shape_signature`` (TFLM itself always runs the static ``shape``). ``graph`` is
    the parsed subgraph 0, operator by operator.
    """

    size_bytes: int
    sha256: str
    schema_version: int
    ops: list[str]
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    subgraph_count: int
    has_dynamic_batch: bool
    description: str = ""
    graph: ModelGraph | None = field(default=None, compare=False, repr=False)


class _Checker:
    """Bounds checks for flatbuffer tables and vectors (a small verifier).

    The Python flatbuffers runtime does not verify; with Python's ``struct`` a
    negative offset even reads silently from the end of the buffer. Every table and
    vector we touch is checked here first, so inspecting garbage raises instead of
    returning nonsense.
    """

    def __init__(self, buf: bytes):
        self.buf = buf
        self.n = len(buf)

    def fail(self, msg: str):
        raise ModelError(f"not a valid .tflite flatbuffer: {msg}")

    def table(self, tab, what: str) -> None:
        pos = tab.Pos
        if not (0 <= pos <= self.n - 4):
            self.fail(f"{what} at offset {pos} lies outside the {self.n}-byte file")
        vt = pos - struct.unpack_from("<i", self.buf, pos)[0]
        if not (0 <= vt <= self.n - 4):
            self.fail(f"{what} at offset {pos} has its vtable outside the file")
        vt_size, obj_size = struct.unpack_from("<HH", self.buf, vt)
        if vt_size < 4 or vt_size % 2 or vt + vt_size > self.n:
            self.fail(f"{what} at offset {pos} has a corrupt vtable")
        if pos + obj_size > self.n:
            self.fail(f"{what} at offset {pos} runs past the end of the file")

    def vector(self, tab, slot: int, elem_size: int, what: str) -> int:
        """Check the vector in field ``slot`` of ``tab``; return its length (0 if absent)."""
        o = tab.Offset(slot)
        if not o:
            return 0
        field_pos = tab.Pos + o
        if field_pos + 4 > self.n:
            self.fail(f"{what}: field at offset {field_pos} lies outside the file")
        start = field_pos + struct.unpack_from("<I", self.buf, field_pos)[0]
        if start + 4 > self.n:
            self.fail(f"{what}: vector at offset {start} lies outside the {self.n}-byte file")
        length = struct.unpack_from("<I", self.buf, start)[0]
        if start + 4 + length * elem_size > self.n:
            self.fail(
                f"{what}: vector of {length} elements at offset {start} runs past the end "
                f"of the {self.n}-byte file"
            )
        return length

    def string(self, tab, slot: int, what: str) -> str:
        length = self.vector(tab, slot, 1, what)
        if not length:
            return ""
        o = tab.Offset(slot)
        raw = tab.String(o + tab.Pos)
        return raw.decode("utf-8", "replace")

    def index(self, value: int, limit: int, what: str, allow_minus_one: bool = False) -> None:
        if allow_minus_one and value == -1:
            return
        if not (0 <= value < limit):
            self.fail(f"{what} is {value}, out of range 0..{limit - 1}")


def _sniff(data: bytes) -> str:
    """A hint about what a non-.tflite file probably is."""
    if data[:4] == b"\x89HDF":
        return (
            " It looks like a Keras HDF5 (.h5) file: convert the model to TFLite first "
            "(the optimize step does this)."
        )
    if data[:4] == b"PK\x03\x04":
        return (
            " It looks like a zip archive (a .keras file or a deployment package): convert "
            "the model to TFLite first, or extract the .tflite file from the package."
        )
    if len(data) >= 12 and data[8:12] == _TFLITE_IDENTIFIER:
        return " It looks size-prefixed: strip the first 4 bytes."
    head = data[:64]
    if head and all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return (
            " It looks like text: pass the file's bytes (Path(p).read_bytes()), not its path "
            "or a base64/hex dump of it."
        )
    return ""


def inspect_model(data: bytes) -> ModelInfo:
    """Validate a .tflite flatbuffer in pure Python and summarize it.

    Call this first (``probe``, ``min_arena``, ``TflmRunner`` and
    ``optimize.graph.analyze`` all do): it loads no TFLM code and has no side
    effects. It checks the ``TFL3`` file identifier, then walks the model with the
    schema module, bounds-checking every table, vector, and index it uses (operator
    codes, subgraphs, tensors, operators, buffers, quantization), and finally
    unpacks it with the schema's object API as the TFLM wrapper does.

    Args:
        data: the bytes of a .tflite file (``bytes``, ``bytearray`` or ``memoryview``).

    Returns:
        A frozen :class:`ModelInfo`, with subgraph 0 parsed in its ``graph``.

    Raises:
        ModelError: empty, truncated, corrupted or non-TFLite data; the message
            starts with ``"not a valid .tflite flatbuffer: ..."`` (or says the
            model is empty) and says what to do.
        TypeError: ``data`` is not bytes-like (e.g. a path string).
    """
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    if not isinstance(data, bytes):
        raise TypeError(
            f"inspect_model() expects the model's bytes, got {type(data).__name__}; "
            "read the file first, e.g. Path('model.tflite').read_bytes()"
        )
    n = len(data)
    if n == 0:
        raise ModelError(
            "not a valid .tflite flatbuffer: the model is empty (0 bytes). Check that the "
            "file was written completely and is read in binary mode."
        )
    if n < 16:
        raise ModelError(
            f"not a valid .tflite flatbuffer: only {n} bytes, too short for any model. "
            "The file is probably truncated; export it again."
        )
    ident = data[4:8]
    if ident != _TFLITE_IDENTIFIER:
        raise ModelError(
            f"not a valid .tflite flatbuffer: file identifier is {ident!r}, expected "
            f"{_TFLITE_IDENTIFIER!r}.{_sniff(data)} Pass the bytes of a TensorFlow Lite "
            "model (.tflite)."
        )
    try:
        return _parse(data)
    except ModelError:
        raise
    except Exception as exc:  # any misread of a corrupt buffer
        kind = "struct.error" if isinstance(exc, struct.error) else type(exc).__name__
        raise ModelError(
            f"not a valid .tflite flatbuffer: {kind}: {exc}. The file is "
            "probably truncated or corrupted; export or copy it again."
        ) from exc


def _tensor_info(chk: _Checker, sg, idx: int, nbuf: int) -> TensorInfo:
    t = sg.Tensors(idx)
    what = f"tensor {idx}"
    chk.table(t._tab, what)
    rank = chk.vector(t._tab, 4, 4, f"{what} shape")
    shape = tuple(int(t.Shape(j)) for j in range(rank))
    sig_len = chk.vector(t._tab, 18, 4, f"{what} shape_signature")
    sig = tuple(int(t.ShapeSignature(j)) for j in range(sig_len)) or shape
    name = chk.string(t._tab, 10, f"{what} name")
    chk.index(t.Buffer(), max(nbuf, 1), f"{what} buffer index")
    scale = zero_point = None
    q = t.Quantization()
    if q is not None:
        chk.table(q._tab, f"{what} quantization")
        ns = chk.vector(q._tab, 8, 4, f"{what} quantization scale")
        nz = chk.vector(q._tab, 10, 8, f"{what} quantization zero_point")
        if ns == 1:
            scale = float(q.Scale(0))
            zero_point = int(q.ZeroPoint(0)) if nz >= 1 else 0
    return TensorInfo(
        name=name,
        shape=shape,
        dtype=dtype_name(t.Type()),
        scale=scale,
        zero_point=zero_point,
        index=idx,
        shape_signature=sig,
        buffer=int(t.Buffer()),
        is_variable=bool(t.IsVariable()),
    )




def _parse(data: bytes) -> ModelInfo:
    from flatbuffers.table import Table

    fb = schema()
    chk = _Checker(data)
    root = struct.unpack_from("<I", data, 0)[0]
    chk.index(root, len(data) - 4, "root table offset")
    model = fb.Model.GetRootAs(data, 0)
    chk.table(model._tab, "model root table")
    version = int(model.Version())
    op_names = enum_names(fb.BuiltinOperator)

    # Operator codes: each resolved to its name here, once for the whole workbench.
    ncodes = chk.vector(model._tab, 6, 4, "operator_codes")
    code_names: list[str] = []
    for j in range(ncodes):
        oc = model.OperatorCodes(j)
        chk.table(oc._tab, f"operator code {j}")
        code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
        if code == fb.BuiltinOperator.CUSTOM:
            custom = chk.string(oc._tab, 6, f"operator code {j} custom_code")
            code_names.append(f"CUSTOM:{custom}")
        else:
            code_names.append(op_names.get(code, f"BUILTIN_{code}"))

    # Buffers (constant data): every vector must lie inside the file.
    nbuf = chk.vector(model._tab, 12, 4, "buffers")
    buffer_bytes: list[int] = []
    for j in range(nbuf):
        b = model.Buffers(j)
        chk.table(b._tab, f"buffer {j}")
        inline = chk.vector(b._tab, 4, 1, f"buffer {j} data")
        off, size = int(b.Offset()), int(b.Size())
        if off > 1 and off + size > len(data):
            chk.fail(f"buffer {j} points at bytes {off}..{off + size}, past the end of the file")
        # Data stored outside the flatbuffer proper (offset > 1) counts by its size.
        buffer_bytes.append(inline if inline else (size if off > 1 else 0))

    # Subgraphs.
    nsub = chk.vector(model._tab, 8, 4, "subgraphs")
    if nsub == 0:
        chk.fail("the model has no subgraphs (nothing to run)")
    ops: list[str] = []
    inputs: list[TensorInfo] = []
    outputs: list[TensorInfo] = []
    dynamic = False
    first: Any = None  # subgraph 0's (tensors, operators, inputs, outputs); nsub > 0
    for s in range(nsub):
        sg = model.Subgraphs(s)
        chk.table(sg._tab, f"subgraph {s}")
        ntens = chk.vector(sg._tab, 4, 4, f"subgraph {s} tensors")
        nin = chk.vector(sg._tab, 6, 4, f"subgraph {s} inputs")
        nout = chk.vector(sg._tab, 8, 4, f"subgraph {s} outputs")
        nops = chk.vector(sg._tab, 10, 4, f"subgraph {s} operators")
        in_idx = [int(sg.Inputs(j)) for j in range(nin)]
        out_idx = [int(sg.Outputs(j)) for j in range(nout)]
        for j, i in enumerate(in_idx):
            chk.index(i, ntens, f"subgraph {s} input {j}")
        for j, i in enumerate(out_idx):
            chk.index(i, ntens, f"subgraph {s} output {j}")
        tinfos = [_tensor_info(chk, sg, i, nbuf) for i in range(ntens)]
        sg_ops = []
        for k in range(nops):
            op = sg.Operators(k)
            what = f"subgraph {s} operator {k}"
            chk.table(op._tab, what)
            code_idx = int(op.OpcodeIndex())
            chk.index(code_idx, ncodes, f"{what} opcode index")
            op_in = tuple(int(op.Inputs(j))
                          for j in range(chk.vector(op._tab, 6, 4, f"{what} inputs")))
            op_out = tuple(int(op.Outputs(j))
                           for j in range(chk.vector(op._tab, 8, 4, f"{what} outputs")))
            for j, i in enumerate(op_in):
                chk.index(i, ntens, f"{what} input {j}", allow_minus_one=True)
            for j, i in enumerate(op_out):
                chk.index(i, ntens, f"{what} output {j}", allow_minus_one=True)
            opts = op._tab.Offset(12)
            if opts:
                opt_tab = Table(data, op._tab.Indirect(op._tab.Pos + opts))
                chk.table(opt_tab, f"{what} builtin options")
            name = code_names[code_idx]
            sg_ops.append((k, name, op_in, op_out))
            if name not in ops:
                ops.append(name)
        if s == 0:
            inputs = [tinfos[i] for i in in_idx]
            outputs = [tinfos[i] for i in out_idx]
            dynamic = any(-1 in t.shape_signature for t in inputs + outputs)
            first = (tinfos, sg_ops, in_idx, out_idx)

    # Finally the full object-API unpack, which the tflite_micro wrapper itself does
    # before handing the bytes to C++ (it reads every field, options included). The
    # operators' builtin options are taken from it.
    unpacked = fb.ModelT.InitFromObj(model)
    tinfos, sg_ops, in_idx, out_idx = first
    op_objs = unpacked.subgraphs[0].operators or []
    graph = ModelGraph(
        tensors=tuple(tinfos),
        operators=tuple(OperatorInfo(k, name, op_in, op_out, op_objs[k].builtinOptions)
                        for k, name, op_in, op_out in sg_ops),
        inputs=tuple(in_idx),
        outputs=tuple(out_idx),
        buffer_bytes=tuple(buffer_bytes),
    )

    description = ""
    if model._tab.Offset(10):
        description = chk.string(model._tab, 10, "description")
    return ModelInfo(
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        schema_version=version,
        ops=ops,
        inputs=inputs,
        outputs=outputs,
        subgraph_count=nsub,
        has_dynamic_batch=dynamic,
        description=description,
        graph=graph,
    )
