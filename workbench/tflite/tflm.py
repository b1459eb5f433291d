"""Run .tflite models in the real TensorFlow Lite Micro interpreter, safely.

The virtual board (``workbench sim``) runs models in TFLM, the same C++ interpreter
that runs on microcontrollers, through the ``tflite-micro`` Python package. That
interpreter is not defensive: on this machine it raises ``RuntimeError("TFLM failed
to allocate tensors")`` for some too-small arenas but *segfaults the process* for
others (e.g. 100 bytes for ``sine_float``), and it segfaults on garbage bytes. It
also prints its diagnostics to the C-level stderr (file descriptor 2), not to
Python's ``sys.stderr``, and has no Python API for the arena bytes it used.

So this module works in three layers, always in this order:

1. :func:`inspect_model`: pure-Python structural validation and summary of the
   flatbuffer (no TFLM loaded). Anything malformed raises :class:`ModelError`, so
   garbage never reaches the interpreter.
2. :func:`probe` / :func:`min_arena`: run the model once in a *child process*
   (``sys.executable -I -c ...``), where a segfault or a hang cannot hurt the
   caller. The child's fd-2 text is captured and parsed: the arena total printed by
   ``print_allocations()``, unsupported ops, allocation failures.
3. :class:`TflmRunner`: an in-process interpreter, constructed only after a
   successful probe with the same model and arena size, for repeated fast
   inference.

No TensorFlow is imported anywhere; ``tflite_micro`` itself is imported lazily,
only by :class:`TflmRunner` (and in the probe's child process).
"""

from __future__ import annotations

import hashlib
import json
import re
import signal
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from ..errors import WorkbenchError

__all__ = [
    "ModelError",
    "TensorInfo",
    "ModelInfo",
    "ProbeResult",
    "inspect_model",
    "probe",
    "min_arena",
    "TflmRunner",
    "ARENA_ALIGNMENT",
    "DEFAULT_PROBE_TIMEOUT_S",
]

#: Arena sizes reported by :func:`min_arena` are multiples of this (TFLM aligns
#: arena allocations to 16 bytes).
ARENA_ALIGNMENT = 16
#: Default wall-clock limit for one probe child process, in seconds.
DEFAULT_PROBE_TIMEOUT_S = 30.0
#: Hard cap on child processes one :func:`min_arena` call may start.
MIN_ARENA_MAX_PROBES = 14

_TFLITE_IDENTIFIER = b"TFL3"


class ModelError(WorkbenchError, ValueError):
    """The model bytes cannot be run: malformed, unsupported, or need more memory.

    The message always says what is wrong and what to do about it. It is a
    ``ValueError`` so callers that already handle bad arguments handle it too.
    """


# --------------------------------------------------------------------------------------
# Schema access (pure Python, no TFLM)
# --------------------------------------------------------------------------------------


_SCHEMA_REL = ("tensorflow", "lite", "micro", "python", "schema_py_generated.py")
_schema_module = None


def _schema():
    """The flatbuffer schema module shipped with tflite-micro (pure Python).

    Loaded from its file under a private name, so that ``tflite_micro/__init__.py``
    (which loads the native interpreter library) does not run: inspecting a model
    touches no native TFLM code. Falls back to the normal import if the file moved.
    """
    global _schema_module
    if _schema_module is None:
        import importlib.util
        import os

        module = None
        spec = importlib.util.find_spec("tflite_micro")  # does not import it
        for root in (spec.submodule_search_locations or []) if spec else []:
            path = os.path.join(root, *_SCHEMA_REL)
            if os.path.isfile(path):
                file_spec = importlib.util.spec_from_file_location(
                    "_workbench_tflite_schema", path
                )
                module = importlib.util.module_from_spec(file_spec)
                file_spec.loader.exec_module(module)
                break
        if module is None:
            from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as module
        _schema_module = module
    return _schema_module


def _enum_names(enum_cls) -> dict[int, str]:
    return {
        v: k for k, v in vars(enum_cls).items() if not k.startswith("_") and isinstance(v, int)
    }


# TensorType enum name -> numpy dtype name. Types numpy has no dtype for keep a
# descriptive lower-case name (they cannot be fed from numpy anyway).
_TENSOR_TYPE_TO_DTYPE = {
    "FLOAT32": "float32",
    "FLOAT16": "float16",
    "FLOAT64": "float64",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "BOOL": "bool",
    "COMPLEX64": "complex64",
    "COMPLEX128": "complex128",
    "STRING": "string",
    "RESOURCE": "resource",
    "VARIANT": "variant",
    "INT4": "int4",
    "INT2": "int2",
    "UINT4": "uint4",
    "BFLOAT16": "bfloat16",
    "FLOAT8_E4M3FN": "float8_e4m3fn",
    "FLOAT8_E5M2": "float8_e5m2",
}


def _dtype_name(tensor_type: int) -> str:
    enum_name = _enum_names(_schema().TensorType).get(tensor_type)
    if enum_name is None:
        return f"unknown_type_{tensor_type}"
    return _TENSOR_TYPE_TO_DTYPE.get(enum_name, enum_name.lower())


@dataclass(frozen=True)
class TensorInfo:
    """One model input or output, as declared in the flatbuffer.

    ``shape`` is the static shape (a dynamic batch is stored as 1 there);
    ``shape_signature`` keeps ``-1`` for dynamic dimensions, or equals ``shape``.
    ``scale``/``zero_point`` are the per-tensor quantization parameters, or None
    for unquantized (or per-axis quantized) tensors.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: float | None
    zero_point: int | None
    index: int
    shape_signature: tuple[int, ...]

    @property
    def size(self) -> int:
        """Number of elements."""
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1


@dataclass(frozen=True)
class ModelInfo:
    """Summary of a validated .tflite model, from :func:`inspect_model`.

    ``ops`` are unique operator names in graph order (subgraph 0 first), builtin
    ops by their schema name (``"FULLY_CONNECTED"``), custom ops as
    ``"CUSTOM:<name>"``. ``inputs``/``outputs`` describe subgraph 0, the one TFLM runs.
    ``has_dynamic_batch`` is True when any of those inputs/outputs has a ``-1`` in its
    ``shape_signature`` (TFLM itself always runs the static ``shape``).
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

    Call this first (``probe``, ``min_arena`` and ``TflmRunner`` all do): it loads
    no TFLM code and has no side effects. It checks the ``TFL3`` file identifier,
    then walks the model with the schema module, bounds-checking every table,
    vector, and index it uses (operator codes, subgraphs, tensors, operators,
    buffers, quantization).

    Args:
        data: the bytes of a .tflite file (``bytes``, ``bytearray`` or ``memoryview``).

    Returns:
        A frozen :class:`ModelInfo`.

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
        dtype=_dtype_name(t.Type()),
        scale=scale,
        zero_point=zero_point,
        index=idx,
        shape_signature=sig,
    )


def _parse(data: bytes) -> ModelInfo:
    from flatbuffers.table import Table

    fb = _schema()
    chk = _Checker(data)
    root = struct.unpack_from("<I", data, 0)[0]
    chk.index(root, len(data) - 4, "root table offset")
    model = fb.Model.GetRootAs(data, 0)
    chk.table(model._tab, "model root table")
    version = int(model.Version())
    op_names = _enum_names(fb.BuiltinOperator)

    # Operator codes.
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
    for j in range(nbuf):
        b = model.Buffers(j)
        chk.table(b._tab, f"buffer {j}")
        chk.vector(b._tab, 4, 1, f"buffer {j} data")
        off, size = int(b.Offset()), int(b.Size())
        if off > 1 and off + size > len(data):
            chk.fail(f"buffer {j} points at bytes {off}..{off + size}, past the end of the file")

    # Subgraphs.
    nsub = chk.vector(model._tab, 8, 4, "subgraphs")
    if nsub == 0:
        chk.fail("the model has no subgraphs (nothing to run)")
    ops: list[str] = []
    inputs: list[TensorInfo] = []
    outputs: list[TensorInfo] = []
    dynamic = False
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
        for k in range(nops):
            op = sg.Operators(k)
            what = f"subgraph {s} operator {k}"
            chk.table(op._tab, what)
            code_idx = int(op.OpcodeIndex())
            chk.index(code_idx, ncodes, f"{what} opcode index")
            for j in range(chk.vector(op._tab, 6, 4, f"{what} inputs")):
                chk.index(int(op.Inputs(j)), ntens, f"{what} input {j}", allow_minus_one=True)
            for j in range(chk.vector(op._tab, 8, 4, f"{what} outputs")):
                chk.index(int(op.Outputs(j)), ntens, f"{what} output {j}", allow_minus_one=True)
            opts = op._tab.Offset(12)
            if opts:
                opt_tab = Table(data, op._tab.Indirect(op._tab.Pos + opts))
                chk.table(opt_tab, f"{what} builtin options")
            name = code_names[code_idx]
            if name not in ops:
                ops.append(name)
        if s == 0:
            inputs = [tinfos[i] for i in in_idx]
            outputs = [tinfos[i] for i in out_idx]
            dynamic = any(-1 in t.shape_signature for t in inputs + outputs)

    # Finally the full object-API unpack, which the tflite_micro wrapper itself does
    # before handing the bytes to C++ (it reads every field, options included).
    fb.ModelT.InitFromObj(model)

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
    )


# --------------------------------------------------------------------------------------
# Probing in a child process
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProbeResult:
    """What one child-process run of the model in TFLM showed.

    Attributes:
        ok: the interpreter allocated, invoked once with zero inputs, and reported.
        arena_bytes: "Arena allocation total" printed by TFLM's recording allocator
            after the invoke (persistent + planned bytes; None if not reached). Note
            that TFLM needs *more* than this to start, for temporary planning memory:
            use :func:`min_arena` for the smallest arena that works.
        error: a clean human message when not ok, else None.
        unsupported_ops: ops TFLM has no kernel for (``"LSH_PROJECTION"``,
            ``"CUSTOM:<name>"``), parsed from its log.
        crashed: the child died by a signal (e.g. SIGSEGV).
        raw_log: the child's fd-2 text (TFLM's own messages).
        arena_limit: the arena size the child was given.
        timed_out: the child was killed after the timeout.
        stage: the last stage the child reached ("allocate", "invoke", ...).
        returncode: the child's exit status (negative: killed by that signal).
    """

    ok: bool
    arena_bytes: int | None
    error: str | None
    unsupported_ops: list[str]
    crashed: bool
    raw_log: str
    arena_limit: int = 0
    timed_out: bool = False
    stage: str = ""
    returncode: int | None = None
    missing_bytes: int | None = field(default=None, repr=False)


# The child: reads the model on stdin, argv = [arena_size, json input specs]. It
# reports progress and its result on stdout as "STAGE <json>" / "RESULT <json>"
# lines, flushed at once, so the parent knows where a crash happened. TFLM writes
# its own messages (and print_allocations) to fd 2, which the parent captures.
_CHILD_CODE = r"""
import json, sys
def emit(kind, payload):
    sys.stdout.write(kind + " " + json.dumps(payload) + "\n")
    sys.stdout.flush()
stage = "start"
try:
    arena = int(sys.argv[1])
    specs = json.loads(sys.argv[2])
    data = sys.stdin.buffer.read()
    stage = "import"; emit("STAGE", stage)
    import numpy as np
    from tflite_micro import runtime
    stage = "allocate"; emit("STAGE", stage)
    it = runtime.Interpreter.from_bytes(data, arena_size=arena)
    stage = "set_input"; emit("STAGE", stage)
    for i, (shape, dtype) in enumerate(specs["inputs"]):
        it.set_input(np.zeros(shape, dtype=dtype), i)
    stage = "invoke"; emit("STAGE", stage)
    it.invoke()
    stage = "get_output"; emit("STAGE", stage)
    shapes = [list(np.asarray(it.get_output(i)).shape) for i in range(specs["n_outputs"])]
    stage = "print_allocations"; emit("STAGE", stage)
    sys.stderr.flush()
    it.print_allocations()
    emit("RESULT", {"ok": True, "stage": stage, "output_shapes": shapes})
except BaseException as exc:
    message = type(exc).__name__ + ": " + str(exc)
    emit("RESULT", {"ok": False, "stage": stage, "exception": message})
    sys.exit(3)
"""

_RE_TOTAL = re.compile(r"\[RecordingMicroAllocator\] Arena allocation total (\d+) bytes")
_RE_NO_BUILTIN = re.compile(r"Didn't find op for builtin opcode '([^']+)'")
_RE_NO_REGISTRATION = re.compile(r"Failed to get registration from op code (\S+)")
_RE_OUT_OF_RANGE = re.compile(r"Op builtin_code out of range: (-?\d+)")
_RE_MISSING = re.compile(r"Requested: (\d+), available (\d+), missing: (\d+)")
_RE_ARENA_HINT = re.compile(
    r"Failed to allocate|Failed to resize buffer|Too many buffers|Arena size is too small|arena|"
    r"Failed starting model allocation",
    re.IGNORECASE,
)


def _parse_child_stdout(text: str) -> tuple[str, dict[str, Any] | None]:
    stage, result = "", None
    for line in text.splitlines():
        kind, _, payload = line.partition(" ")
        try:
            value = json.loads(payload)
        except ValueError:
            continue
        if kind == "STAGE":
            stage = str(value)
        elif kind == "RESULT" and isinstance(value, dict):
            result = value
            stage = str(value.get("stage", stage))
    return stage, result


def _unsupported_ops(log: str, info: ModelInfo) -> list[str]:
    found: list[str] = []

    def add(name: str) -> None:
        if name not in found:
            found.append(name)

    for m in _RE_NO_BUILTIN.finditer(log):
        add(m.group(1))
    for m in _RE_NO_REGISTRATION.finditer(log):
        if m.group(1) == "CUSTOM":
            # TFLM does not name the custom op; the model does.
            for op in info.ops:
                if op.startswith("CUSTOM:"):
                    add(op)
        else:
            add(m.group(1))
    for m in _RE_OUT_OF_RANGE.finditer(log):
        add(f"BUILTIN_{m.group(1)}")
    return found


def _first_line(log: str, pattern: re.Pattern) -> str | None:
    for line in log.splitlines():
        if pattern.search(line):
            return line.strip()
    return None


def probe(data: bytes, arena_limit: int, timeout: float = DEFAULT_PROBE_TIMEOUT_S) -> ProbeResult:
    """Run the model once in TFLM in a child process and report what happened.

    Call order: validates with :func:`inspect_model` first (in this process; a
    :class:`ModelError` is raised before anything runs), then starts one child
    ``sys.executable -I -c <code>`` with the model on its stdin. The child builds an
    interpreter with ``arena_size=arena_limit``, invokes once with zero-filled
    inputs of the declared shapes and dtypes, and calls ``print_allocations()``.
    The parent captures the child's fd 2 (TFLM's log) and parses it.

    Side effects: starts and waits for one child process (about 0.2 s); kills it
    after ``timeout`` seconds. Nothing in the calling process touches TFLM, so a
    segfault or hang in TFLM cannot hurt it.

    Args:
        data: the .tflite bytes.
        arena_limit: tensor arena size in bytes given to TFLM (> 0).
        timeout: wall-clock limit for the child, seconds.

    Returns:
        A :class:`ProbeResult`. Model problems (arena too small, unsupported ops,
        crashes, timeouts) are reported there, never raised.

    Raises:
        ModelError: from :func:`inspect_model` (malformed data).
        ValueError: ``arena_limit`` is not a positive int.
    """
    info = inspect_model(data)
    data = bytes(data)
    if isinstance(arena_limit, bool) or not isinstance(arena_limit, (int, np.integer)):
        raise ValueError(f"arena_limit must be an int number of bytes, got {arena_limit!r}")
    arena_limit = int(arena_limit)
    if arena_limit <= 0:
        raise ValueError(f"arena_limit must be a positive number of bytes, got {arena_limit}")
    specs = {
        "inputs": [[list(t.shape), t.dtype] for t in info.inputs],
        "n_outputs": len(info.outputs),
    }
    cmd = [sys.executable, "-I", "-c", _CHILD_CODE, str(arena_limit), json.dumps(specs)]
    timed_out = False
    try:
        proc = subprocess.run(cmd, input=data, capture_output=True, timeout=timeout)
        out_b, err_b, rc = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:  # run() has killed and reaped the child
        out_b, err_b, rc = exc.stdout or b"", exc.stderr or b"", None
        timed_out = True
    stdout = out_b.decode("utf-8", "replace")
    log = err_b.decode("utf-8", "replace").replace("\r\n", "\n")
    stage, result = _parse_child_stdout(stdout)
    crashed = rc is not None and rc < 0
    unsupported = _unsupported_ops(log, info)
    m_total = _RE_TOTAL.search(log)
    arena_bytes = int(m_total.group(1)) if m_total else None
    m_missing = _RE_MISSING.search(log)
    missing = int(m_missing.group(3)) if m_missing else None
    ok = bool(result and result.get("ok")) and rc == 0 and not timed_out

    error = None
    if not ok:
        error = _explain(
            arena_limit=arena_limit,
            log=log,
            stage=stage,
            result=result,
            rc=rc,
            crashed=crashed,
            timed_out=timed_out,
            timeout=timeout,
            unsupported=unsupported,
            missing=missing,
        )
    return ProbeResult(
        ok=ok,
        arena_bytes=arena_bytes,
        error=error,
        unsupported_ops=unsupported,
        crashed=crashed,
        raw_log=log,
        arena_limit=arena_limit,
        timed_out=timed_out,
        stage=stage,
        returncode=rc,
        missing_bytes=missing,
    )


def _explain(
    *,
    arena_limit: int,
    log: str,
    stage: str,
    result: dict | None,
    rc: int | None,
    crashed: bool,
    timed_out: bool,
    timeout: float,
    unsupported: list[str],
    missing: int | None,
) -> str:
    if timed_out:
        return (
            f"TFLM did not finish within {timeout:g} s (last stage: {stage or 'start'}); "
            "the child process was killed. The model may be too slow or stuck."
        )
    where = f" while in stage '{stage}'" if stage else ""
    if crashed:
        try:
            sig = signal.Signals(-rc).name
        except ValueError:
            sig = f"signal {-rc}"
        how = f"the TFLM interpreter crashed ({sig}){where}"
    elif result is not None and result.get("exception"):
        how = f"TFLM raised {result['exception']}{where}"
    else:
        how = f"the TFLM child process exited with status {rc}{where}"
    if unsupported:
        return (
            f"TFLM has no kernel for: {', '.join(unsupported)} ({how}). Replace these ops "
            "(e.g. re-convert using only builtins that TFLite Micro supports) or register "
            "a custom kernel on the device."
        )
    hint = _first_line(log, _RE_ARENA_HINT)
    if hint is not None and stage in ("allocate", "set_input", "invoke", ""):
        need = f" (at least {arena_limit + missing} bytes)" if missing else ""
        return (
            f"tensor arena too small: {arena_limit} bytes were available and the model "
            f"needs more{need}. TFLM said {hint!r}; {how}. Give a larger arena; "
            "min_arena() finds the smallest that works."
        )
    if crashed and stage == "allocate":
        return (
            f"{how} with an arena of {arena_limit} bytes and no message; the arena is "
            "probably far too small for the model, or the model is malformed. Try a larger "
            "arena (min_arena() finds the smallest that works)."
        )
    last = [ln.strip() for ln in log.splitlines() if ln.strip()]
    said = f" TFLM said {last[-1]!r}." if last else ""
    return f"{how}.{said}"


def _ceil16(n: int) -> int:
    return -(-int(n) // ARENA_ALIGNMENT) * ARENA_ALIGNMENT


def min_arena(data: bytes, upper: int, timeout: float = DEFAULT_PROBE_TIMEOUT_S) -> int:
    """The smallest arena (a multiple of 16 bytes) in which the model allocates and runs.

    Call order: :func:`inspect_model` (raises :class:`ModelError`), then a probe
    at ``upper`` that must succeed; its measured "Arena allocation total" ``T`` is
    a lower bound (TFLM needs the persistent and planned bytes at once, plus
    temporary planning memory during allocation, which is why the answer is
    usually somewhat above ``T``). It then verifies ``ceil16(T)``, gallops upward
    in steps of ``max(256, T/4)`` (doubling) until a size succeeds, and bisects in
    16-byte steps. Failures that print ``missing: N`` raise the lower bound to
    ``size + N`` at once. Success is assumed monotonic in the arena size.

    Side effects: starts child processes via :func:`probe`, typically 6-9 and never
    more than ``MIN_ARENA_MAX_PROBES``.

    Args:
        data: the .tflite bytes.
        upper: an arena size in bytes expected to be enough (e.g. the board's RAM).
        timeout: per-probe timeout, seconds.

    Returns:
        ``v`` such that ``probe(data, v).ok`` and ``probe(data, v - 16)`` fails
        (``v`` may exceed ``upper`` by up to 15 bytes when ``upper`` is not a
        multiple of 16 and nothing smaller works).

    Raises:
        ModelError: the data is malformed, or the model fails even at ``upper``
            (the message includes the probe's error), or the search ran out of
            probes.
    """
    budget = [MIN_ARENA_MAX_PROBES]

    def run(n: int) -> ProbeResult:
        if budget[0] <= 0:
            raise ModelError(
                f"min_arena gave up after {MIN_ARENA_MAX_PROBES} probes; the model's arena "
                "needs do not behave monotonically. Pick an arena by hand with probe()."
            )
        budget[0] -= 1
        return probe(data, n, timeout=timeout)

    first = run(upper)  # inspect_model runs (and raises) here
    if not first.ok:
        raise ModelError(
            f"the model does not run even with an arena of {upper} bytes: {first.error}"
        )
    hi = int(upper)  # smallest size known to work
    total = first.arena_bytes or ARENA_ALIGNMENT
    lo = _ceil16(total) - ARENA_ALIGNMENT  # largest size known (or assumed) to fail

    def failed_at(n: int, r: ProbeResult) -> None:
        nonlocal lo
        lo = max(lo, n)
        if r.missing_bytes:
            lo = max(lo, _ceil16(n + r.missing_bytes) - ARENA_ALIGNMENT)

    # 1. Verify the measured total.
    c = lo + ARENA_ALIGNMENT
    if c < hi:
        r = run(c)
        if r.ok:
            hi = c
            # Confirm the assumed lower bound once; if it holds we are done.
            below = c - ARENA_ALIGNMENT
            if below > 0:
                r2 = run(below)
                if r2.ok:
                    hi, lo = below, 0
                else:
                    failed_at(below, r2)
        else:
            failed_at(c, r)
    # 2. Gallop upward until something works.
    step = max(256, _ceil16(total // 4))
    while hi - lo > ARENA_ALIGNMENT:
        c = _ceil16(lo + step)
        if c >= hi:
            break
        r = run(c)
        if r.ok:
            hi = c
            break
        failed_at(c, r)
        step *= 2
    # 3. Bisect on multiples of 16 in (lo, hi].
    while hi - lo > ARENA_ALIGNMENT:
        mid = _ceil16(lo + (hi - lo) // 2)
        if mid >= hi:
            mid = hi - ARENA_ALIGNMENT if hi % ARENA_ALIGNMENT == 0 else hi - hi % ARENA_ALIGNMENT
        if mid <= lo:
            break
        r = run(mid)
        if r.ok:
            hi = mid
        else:
            failed_at(mid, r)
    if hi % ARENA_ALIGNMENT:
        # Only `upper` itself (not a multiple of 16) was shown to work.
        v = _ceil16(hi)
        r = run(v)
        if not r.ok:
            raise ModelError(f"an arena of {v} bytes unexpectedly failed: {r.error}")
        return v
    return hi


# --------------------------------------------------------------------------------------
# In-process runner
# --------------------------------------------------------------------------------------


def _check_input(arr: Any, spec: TensorInfo, position: int) -> np.ndarray:
    try:
        expected = np.dtype(spec.dtype)
    except TypeError:
        raise ValueError(
            f"input {position} ('{spec.name}') has type {spec.dtype}, "
            "which cannot be fed from numpy"
        ) from None
    a = np.asarray(arr)
    if a.dtype != expected:
        same_float = expected.kind == "f" and a.dtype.kind in "fiub"
        int_fits = (
            a.dtype.kind in "iu"
            and expected.kind in "iu"
            and (
                a.size == 0
                or (
                    a.min() >= np.iinfo(expected).min and a.max() <= np.iinfo(expected).max
                )
            )
        )
        if same_float or int_fits:
            a = a.astype(expected)
        else:
            hint = ""
            if expected.kind in "iu" and a.dtype.kind == "f" and spec.scale is not None:
                hint = (
                    f"; the model is quantized: feed round(x / {spec.scale:g}) + "
                    f"{spec.zero_point} as {expected.name}"
                )
            raise ValueError(
                f"input {position} ('{spec.name}') expects dtype {expected.name}, got "
                f"{a.dtype.name}{hint}"
            )
    if a.shape != spec.shape:
        if a.size != spec.size:
            raise ValueError(
                f"input {position} ('{spec.name}') expects shape {spec.shape} "
                f"({spec.size} values), got shape {a.shape} ({a.size} values)"
            )
        a = a.reshape(spec.shape)
    return np.ascontiguousarray(a)


class TflmRunner:
    """A TFLM interpreter in this process, for a model already proven to run.

    Call order: ``TflmRunner(data, arena_bytes)`` validates the model with
    :func:`inspect_model`, then runs :func:`probe` with the same arena in a child
    process (skipped if ``probed`` is given), and only if that succeeded builds the
    interpreter here. Then call :meth:`invoke` as often as needed.

    Side effects: imports ``tflite_micro`` and allocates ``arena_bytes`` of native
    memory; the constructor starts one child process unless ``probed`` is given.

    Args:
        data: the .tflite bytes.
        arena_bytes: tensor arena size in bytes (e.g. from :func:`min_arena`).
        probed: ``True`` if the caller already probed this exact ``data`` and
            ``arena_bytes`` successfully (then the crash protection is theirs), or
            that successful :class:`ProbeResult` itself (which also supplies
            :attr:`arena_bytes_used`).
        timeout: timeout for the constructor's probe, seconds.

    Raises:
        ModelError: malformed model, or the probe failed (its message, e.g. arena
            too small or unsupported ops), or a given ProbeResult was not ok.
    """

    def __init__(
        self,
        data: bytes,
        arena_bytes: int,
        *,
        probed: bool | ProbeResult = False,
        timeout: float = DEFAULT_PROBE_TIMEOUT_S,
    ):
        self._data = bytes(data)  # TFLM keeps pointers into the model: keep it alive
        self._info = inspect_model(self._data)
        self._arena = int(arena_bytes)
        if isinstance(probed, ProbeResult):
            result: ProbeResult | None = probed
            if not result.ok:
                raise ModelError(f"cannot run the model: {result.error}")
        elif probed:
            result = None
        else:
            result = probe(self._data, self._arena, timeout=timeout)
            if not result.ok:
                raise ModelError(f"cannot run the model: {result.error}")
        self._probe = result
        from tflite_micro import runtime

        try:
            self._interp = runtime.Interpreter.from_bytes(self._data, arena_size=self._arena)
        except RuntimeError as exc:
            raise ModelError(
                f"TFLM could not allocate the model in {self._arena} bytes: {exc}. "
                "Give a larger arena (min_arena() finds the smallest that works)."
            ) from exc
        self._lock = threading.Lock()
        self._latency_us: float | None = None

    @property
    def info(self) -> ModelInfo:
        """The model summary from :func:`inspect_model`."""
        return self._info

    @property
    def input_details(self) -> list[TensorInfo]:
        """The model's inputs (subgraph 0), in order."""
        return list(self._info.inputs)

    @property
    def output_details(self) -> list[TensorInfo]:
        """The model's outputs (subgraph 0), in order."""
        return list(self._info.outputs)

    @property
    def arena_size(self) -> int:
        """The arena given to TFLM, in bytes."""
        return self._arena

    @property
    def arena_bytes_used(self) -> int | None:
        """The arena total TFLM reported in the probe (None if no probe result is known)."""
        return self._probe.arena_bytes if self._probe is not None else None

    @property
    def last_latency_us(self) -> float | None:
        """Host wall time of the last ``invoke()`` call inside TFLM, in microseconds."""
        return self._latency_us

    def invoke(self, inputs: Sequence[np.ndarray] | np.ndarray) -> list[np.ndarray]:
        """Run one inference.

        Args:
            inputs: one array per model input, in order (a single array for a
                one-input model). Arrays are reshaped if their element count matches;
                floats are cast between float widths, ints between int widths when the
                values fit; ints and bools are cast to a float input.

        Returns:
            Copies of all outputs, in order.

        Raises:
            ValueError: wrong number of inputs, or a shape/dtype that does not match.
            RuntimeError: TFLM reported an invoke failure.
        """
        specs = self._info.inputs
        if isinstance(inputs, np.ndarray):
            arrays: list[Any] = [inputs]
        elif isinstance(inputs, (list, tuple)):
            arrays = list(inputs)
        else:
            arrays = [inputs]
        if len(arrays) != len(specs):
            raise ValueError(f"the model has {len(specs)} input(s), got {len(arrays)}")
        checked = [_check_input(a, s, i) for i, (a, s) in enumerate(zip(arrays, specs))]
        with self._lock:
            for i, a in enumerate(checked):
                self._interp.set_input(a, i)
            t0 = time.perf_counter_ns()
            self._interp.invoke()
            t1 = time.perf_counter_ns()
            self._latency_us = (t1 - t0) / 1000.0
            n_out = len(self._info.outputs)
            return [np.array(self._interp.get_output(i), copy=True) for i in range(n_out)]
