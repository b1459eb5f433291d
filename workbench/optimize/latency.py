"""On-device latency and energy of a model, estimated op by op from its graph.

:func:`estimate` turns a :class:`~workbench.optimize.graph.Graph` and a catalog board
into a :class:`LatencyEstimate`: cycles per op from a documented cost model, the sum at
the board's clock, and energy as latency times the board's typical active power. The
model, its constants, where each comes from, and how it compares with published
measurements are in ``docs/latency-model.md``; read that before trusting a number.

In short, for microcontrollers (TFLite Micro, **reference kernels**)::

    cycles(op) = op overhead
               + MACs x cycles/MAC              (inner multiply-accumulate loop)
               + kernel taps x cycles/tap       (conv/depthwise: per output and kernel
                                                 position: bounds checks, addressing)
               + outputs x cycles/output        (bias, requantization, clamp, store;
                                                 or the per-element cost of
                                                 element-wise, pooling, softmax,
                                                 data-movement ops)
               + weight bytes fetched x stall cycles/byte   (flash wait states or
                                                             XIP cache misses)

with the Cortex-M4 costs as the base, scaled per core family (integer and float
separately; float on a core without an FPU is soft-float). Linux boards (Cortex-A,
LiteRT with XNNPACK, one thread) use their own per-MAC and per-op costs.

Where the figures live: the per-core and per-op constants are in this module; the
per-board hardware figures (``weight_memory``: flash wait states or cache-miss cost;
``active_power``; ``code_density``) are fields of the board's entry in
``workbench/boards/catalog.yaml``, each with its source or marked "assumed", read
here from the :class:`~workbench.boards.catalog.Board`. A board without them gets
the per-core defaults below (:data:`DEFAULT_WEIGHT_MEMORY`, :data:`CORE_MW_PER_MHZ`,
:data:`CORE_CODE_DENSITY`).

Usage::

    from workbench.boards.catalog import get_board
    from workbench.optimize.graph import analyze
    from workbench.optimize.latency import estimate
    est = estimate(analyze(blob), get_board("nucleo-l4r5zi"))
    print(est.latency_ms, est.energy_mj, est.basis)

No TensorFlow, no interpreter, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from ..boards.catalog import Board, WeightMemory
from .graph import Graph, OpStats

__all__ = [
    "OpEstimate",
    "LatencyEstimate",
    "estimate",
    "kernel_code_bytes",
    "stall_per_byte",
    "M4_REFERENCE_CYCLES",
    "CORE_FACTORS",
    "CORE_MW_PER_MHZ",
    "CORE_CODE_DENSITY",
    "DEFAULT_WEIGHT_MEMORY",
]

DOC = "docs/latency-model.md"

# --------------------------------------------------------------------------------------
# Constants (each is explained in docs/latency-model.md)
# --------------------------------------------------------------------------------------

#: Cycles per unit of work of TFLite Micro's reference kernels on a Cortex-M4(F),
#: by compute type. "mac": inner loop per multiply-accumulate (the one constant set
#: on the MLPerf Tiny anchors, see the docs); "tap": per output element and kernel
#: position of a conv/depthwise (bounds check and addressing around the channel
#: loop); "out_mac": per output of a conv/depthwise/fully-connected (bias,
#: requantization, clamp, store); the rest per output element unless named
#: "_in" (per input element read) or "_byte".
M4_REFERENCE_CYCLES: dict[str, dict[str, float]] = {
    "mac":         {"int8": 3.8, "int16": 4.8, "float32": 5.4},
    "tap":         {"int8": 12.0, "int16": 12.0, "float32": 12.0},
    "out_mac":     {"int8": 30.0, "int16": 40.0, "float32": 8.0},
    "pool_in":     {"int8": 4.0, "int16": 4.0, "float32": 5.0},
    "pool_out":    {"int8": 20.0, "int16": 24.0, "float32": 10.0},
    "reduce_in":   {"int8": 5.0, "int16": 5.0, "float32": 5.0},
    "softmax":     {"int8": 250.0, "int16": 150.0, "float32": 150.0},
    "transcend":   {"int8": 120.0, "int16": 60.0, "float32": 120.0},
    "add":         {"int8": 70.0, "int16": 80.0, "float32": 8.0},
    "mul":         {"int8": 40.0, "int16": 45.0, "float32": 8.0},
    "elementwise": {"int8": 30.0, "int16": 35.0, "float32": 8.0},
    "quantize":    {"int8": 30.0, "int16": 30.0, "float32": 30.0},
    "dequantize":  {"int8": 15.0, "int16": 15.0, "float32": 15.0},
    "move":        {"int8": 6.0, "int16": 6.0, "float32": 6.0},
    "copy_byte":   {"int8": 0.5, "int16": 0.5, "float32": 0.5},
    "op":          {"int8": 600.0, "int16": 600.0, "float32": 600.0},
}
#: Fixed cycles per ``Invoke()`` (interpreter loop entry, profiling hooks), M4.
INVOKE_OVERHEAD_CYCLES = 2000.0


@dataclass(frozen=True)
class CoreFactors:
    """How much slower (>1) or faster (<1) than a Cortex-M4F a core runs the same
    reference-kernel work, per clock cycle: integer MAC loops, other integer work
    (requantization, addressing, element-wise), float MAC loops, other float work."""

    int_mac: float
    int_other: float
    float_mac: float
    float_other: float
    why: str
    caveat: str = ""


#: Per-core factors relative to the Cortex-M4F (reasoning in the docs).
CORE_FACTORS: dict[str, CoreFactors] = {
    "Cortex-M4F": CoreFactors(1.0, 1.0, 1.0, 1.0, "the base (MLPerf Tiny anchors)"),
    "Cortex-M4": CoreFactors(1.0, 1.0, 18.0, 12.0, "as M4F, soft-float"),
    "Cortex-M33": CoreFactors(0.95, 0.95, 0.95, 0.95,
                              "3-stage Armv8-M pipeline like the M4 (CoreMark/MHz 4.0 vs 3.4)"),
    "Cortex-M7": CoreFactors(0.6, 0.6, 0.5, 0.5,
                             "6-stage dual-issue (CoreMark/MHz 5.0); pipelined FPU MACs"),
    "Cortex-M0+": CoreFactors(2.0, 2.6, 18.0, 12.0,
                              "Armv6-M: no MLA/SMULL, 8 low registers, no post-increment "
                              "loads; soft-float"),
    "Xtensa LX6": CoreFactors(1.3, 1.2, 1.2, 1.2,
                              "GCC code for windowed-register Xtensa; single-precision FPU",
                              caveat="Espressif publishes reference-kernel timings about 15x "
                                     "slower than this and ESP-NN timings near it"),
    "ARC EM9D": CoreFactors(1.0, 1.0, 1.5, 1.5,
                            "3-stage ARCv2 DSP core; reference kernels do not use XY memory"),
}
#: Used for a core not in :data:`CORE_FACTORS` (a conservative guess).
UNKNOWN_CORE = CoreFactors(1.5, 1.5, 2.0, 2.0, "unknown core: 1.5x the Cortex-M4F")
#: Soft-float factors, used when the board has no FPU whatever its core.
SOFT_FLOAT = (18.0, 12.0)


#: Weight memory for a board whose catalog entry gives no ``weight_memory``.
DEFAULT_WEIGHT_MEMORY = WeightMemory("flash", line_bytes=8, zero_wait_hz=30_000_000,
                                     source="assumed: generic on-chip flash, one wait state "
                                            "per 30 MHz")


def stall_per_byte(memory: WeightMemory, clock_hz: float) -> float:
    """Stall cycles per weight byte read from ``memory`` at ``clock_hz`` (see
    :class:`~workbench.boards.catalog.WeightMemory` for the three kinds)."""
    if memory.kind == "flash" and memory.zero_wait_hz > 0:
        wait = max(0, math.ceil(clock_hz / memory.zero_wait_hz - 1e-9) - 1)
        return wait / memory.line_bytes
    if memory.kind == "xip":
        return memory.miss_ns * 1e-9 * clock_hz / memory.line_bytes
    return 0.0


#: Share of the active power that does not scale with the clock: a board's
#: ``active_power`` (catalog) at its ``clock_hz`` is scaled to another clock as
#: ``mw * (STATIC_SHARE + (1 - STATIC_SHARE) * clock / clock_hz)``.
STATIC_SHARE = 0.2
#: Fallback power density (mW per MHz) by core, for a board whose catalog entry gives
#: no ``active_power``.
CORE_MW_PER_MHZ = {"Cortex-M0+": 0.5, "Cortex-M4F": 0.3, "Cortex-M4": 0.3,
                   "Cortex-M33": 0.17, "Cortex-M7": 0.3, "Xtensa LX6": 0.7,
                   "ARC EM9D": 0.1, "Cortex-A72": 2.3, "Cortex-A57": 1.8}


@dataclass(frozen=True)
class LinuxCosts:
    """Per-unit cycles for LiteRT (XNNPACK delegate, one thread) on an application core."""

    mac_int8: float
    mac_float: float
    mac_depthwise: float
    mac_int16: float
    per_output: float
    per_element: float
    softmax: float
    op: float
    invoke: float
    why: str


LINUX_CORES: dict[str, LinuxCosts] = {
    "Cortex-A72": LinuxCosts(0.2, 0.3, 0.6, 0.8, 0.5, 1.0, 8.0, 3000.0, 15000.0,
                             "NEON GEMM microkernels: ~5 int8 / ~3 float MACs per cycle "
                             "on small layers"),
    "Cortex-A57": LinuxCosts(0.26, 0.39, 0.78, 1.04, 0.65, 1.3, 10.4, 3900.0, 19500.0,
                             "as the A72, 1.3x slower per clock"),
}

# Op name -> cost class of the reference-kernel model.
_CONV = {"CONV_2D", "CONV_3D", "TRANSPOSE_CONV"}
_DEPTHWISE = {"DEPTHWISE_CONV_2D"}
_FC = {"FULLY_CONNECTED", "BATCH_MATMUL", "UNIDIRECTIONAL_SEQUENCE_LSTM",
       "BIDIRECTIONAL_SEQUENCE_LSTM", "LSTM", "UNIDIRECTIONAL_SEQUENCE_RNN", "RNN", "SVDF"}
_POOL = {"AVERAGE_POOL_2D", "MAX_POOL_2D", "L2_POOL_2D"}
_REDUCE = {"MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD", "ARG_MAX", "ARG_MIN",
           "L2_NORMALIZATION"}
_SOFTMAX = {"SOFTMAX", "LOG_SOFTMAX"}
_TRANSCEND = {"LOGISTIC", "TANH", "EXP", "LOG", "SQRT", "RSQRT", "SIN", "COS", "ELU",
              "GELU", "HARD_SWISH", "POW"}
_ADD = {"ADD", "SUB", "ADD_N", "SQUARED_DIFFERENCE"}
_MUL = {"MUL", "DIV", "FLOOR_DIV"}
_COPY = {"RESHAPE", "SQUEEZE", "EXPAND_DIMS"}
_MOVE = {"CONCATENATION", "PAD", "PADV2", "MIRROR_PAD", "TRANSPOSE", "STRIDED_SLICE", "SLICE",
         "GATHER", "GATHER_ND", "SPLIT", "SPLIT_V", "PACK", "UNPACK", "TILE",
         "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "SPACE_TO_DEPTH", "DEPTH_TO_SPACE",
         "SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND", "BROADCAST_TO", "REVERSE_V2", "FILL",
         "ZEROS_LIKE", "ONES_LIKE", "SELECT", "SELECT_V2"}
_NO_WORK = {"SHAPE", "RANK", "CALL_ONCE", "READ_VARIABLE", "ASSIGN_VARIABLE", "VAR_HANDLE"}


# --------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpEstimate:
    """Estimated cycles of one op (``index`` as in the graph)."""

    index: int
    op: str
    macs: int
    cycles: float


@dataclass(frozen=True)
class LatencyEstimate:
    """The cost model's estimate for one model on one board.

    ``kernels`` is the kernel library the cost model follows, named as in the
    catalog (:data:`workbench.boards.catalog.KERNELS`): ``"reference"``, the
    portable reference kernels of ``tflite-micro``, on microcontrollers (whatever
    library the board's own build uses, its ``Board.kernels``); ``"xnnpack"``,
    LiteRT's default CPU delegate, on Linux boards. ``power_mw`` is the typical active power used for
    ``energy_mj = latency_ms * power_mw / 1000``. ``basis`` is one sentence saying
    what the numbers rest on.
    """

    board_id: str
    core: str
    clock_hz: int
    kernels: str
    cycles: float
    latency_ms: float
    energy_mj: float
    power_mw: float
    per_op: tuple[OpEstimate, ...]
    basis: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------


def _family(op: OpStats) -> str:
    """The cost column an op is charged in: "int8", "int16" or "float32"."""
    dt = op.compute_dtype
    if dt in ("float32", "float16", "hybrid", "float64"):
        return "float32"
    if dt == "int16":
        return "int16"
    return "int8"


def _weight(op: OpStats):
    consts = [t for t in op.inputs if t.constant and len(t.shape) >= 2]
    return max(consts, key=lambda t: t.nbytes) if consts else None


def _out_elems(op: OpStats) -> int:
    return sum(t.size for t in op.outputs)


def _in_elems(op: OpStats) -> int:
    return sum(t.size for t in op.inputs if not t.constant)


def _taps(op: OpStats) -> int:
    """Output elements x kernel positions (the loop around the channel loop)."""
    w = _weight(op)
    if w is None or len(w.shape) < 4:
        return 0
    if op.op == "DEPTHWISE_CONV_2D":
        return op.macs  # one MAC per tap
    if op.op == "CONV_2D":
        return _out_elems(op) * w.shape[1] * w.shape[2]
    if op.op == "TRANSPOSE_CONV":
        act = [t for t in op.inputs if not t.constant and t.dtype != "int32"]
        return (act[0].size if act else 0) * w.shape[1] * w.shape[2]
    if op.op == "CONV_3D" and len(w.shape) == 5:
        return _out_elems(op) * w.shape[0] * w.shape[1] * w.shape[2]
    return 0


def _window(op: OpStats) -> int:
    """Input elements a pooling op reads (outputs x window)."""
    text = op.detail.split(" pool", 1)[0]
    try:
        fh, fw = (int(v) for v in text.split("x"))
    except ValueError:
        return _in_elems(op)
    return _out_elems(op) * fh * fw


def _fetch_bytes(op: OpStats, mem: WeightMemory) -> float:
    """Weight bytes read from weight memory by one op."""
    w = _weight(op)
    if w is None or op.macs == 0 or mem.kind == "sram":
        return 0.0
    elem_bytes = w.nbytes / max(w.size, 1)
    if w.nbytes <= mem.cache_bytes:
        return float(w.nbytes)  # cold misses only
    return float(max(w.nbytes, op.macs * elem_bytes))


def _mcu_op_cycles(op: OpStats, f: CoreFactors, mem: WeightMemory, clock_hz: float,
                   soft_float: bool) -> float:
    fam = _family(op)
    c = M4_REFERENCE_CYCLES
    is_float = fam == "float32"
    mac_k, other_k = (f.float_mac, f.float_other) if is_float else (f.int_mac, f.int_other)
    if is_float and soft_float:
        mac_k, other_k = SOFT_FLOAT

    def unit(name: str) -> float:
        return c[name][fam]

    name = op.op
    cycles = unit("op") * f.int_other
    if name in _CONV or name in _DEPTHWISE or name in _FC:
        cycles += op.macs * unit("mac") * mac_k
        cycles += _taps(op) * unit("tap") * f.int_other
        cycles += _out_elems(op) * unit("out_mac") * other_k
        if name in ("UNIDIRECTIONAL_SEQUENCE_LSTM", "BIDIRECTIONAL_SEQUENCE_LSTM", "LSTM"):
            cycles += _out_elems(op) * 4 * unit("transcend") * other_k  # gate activations
        cycles += _fetch_bytes(op, mem) * stall_per_byte(mem, clock_hz)
    elif name in _POOL:
        cycles += _window(op) * unit("pool_in") * other_k
        cycles += _out_elems(op) * unit("pool_out") * other_k
    elif name in _REDUCE:
        cycles += _in_elems(op) * unit("reduce_in") * other_k
        cycles += _out_elems(op) * unit("pool_out") * other_k
    elif name in _SOFTMAX:
        cycles += _out_elems(op) * unit("softmax") * other_k
    elif name in _TRANSCEND:
        cycles += _out_elems(op) * unit("transcend") * other_k
    elif name in _ADD:
        cycles += _out_elems(op) * unit("add") * other_k
    elif name in _MUL:
        cycles += _out_elems(op) * unit("mul") * other_k
    elif name == "QUANTIZE":
        src_float = any(t.dtype == "float32" for t in op.inputs)
        k = (SOFT_FLOAT[1] if soft_float else f.float_other) if src_float else f.int_other
        cycles += _out_elems(op) * unit("quantize") * k
    elif name == "DEQUANTIZE":
        k = SOFT_FLOAT[1] if soft_float else f.float_other
        cycles += _out_elems(op) * unit("dequantize") * k
    elif name in _COPY:
        cycles += sum(t.nbytes for t in op.outputs) * unit("copy_byte") * f.int_other
    elif name in _MOVE:
        cycles += _out_elems(op) * unit("move") * f.int_other
    elif name in _NO_WORK:
        pass
    else:  # element-wise and anything unknown: a per-output cost
        cycles += _out_elems(op) * unit("elementwise") * other_k
    return cycles


def _linux_op_cycles(op: OpStats, lc: LinuxCosts) -> float:
    fam = _family(op)
    name = op.op
    cycles = lc.op
    if op.macs:
        if name in _DEPTHWISE:
            per_mac = lc.mac_depthwise
        elif fam == "int16":
            per_mac = lc.mac_int16
        elif op.compute_dtype == "float32":
            per_mac = lc.mac_float
        else:  # int8 and hybrid (inputs quantized on the fly, int8 GEMM)
            per_mac = lc.mac_int8
        cycles += op.macs * per_mac + _out_elems(op) * lc.per_output
        if op.compute_dtype == "hybrid":
            cycles += _in_elems(op) * lc.per_element
    elif name in _SOFTMAX or name in _TRANSCEND:
        cycles += _out_elems(op) * lc.softmax
    elif name in _POOL:
        cycles += _window(op) * lc.per_element * 0.5 + _out_elems(op) * lc.per_output
    elif name in _COPY:
        cycles += sum(t.nbytes for t in op.outputs) * 0.1
    elif name not in _NO_WORK:
        cycles += max(_out_elems(op), _in_elems(op)) * lc.per_element
    return cycles


def _power_mw(board: Board) -> tuple[float, str]:
    spec = board.active_power
    if spec is None:
        per_mhz = CORE_MW_PER_MHZ.get(board.core, 0.3)
        return (per_mhz * board.clock_hz / 1e6,
                f"assumed {per_mhz} mW/MHz typical for a {board.core}")
    scale = STATIC_SHARE + (1 - STATIC_SHARE) * board.clock_hz / spec.clock_hz
    return spec.mw * scale, spec.source


def _fmt_mhz(hz: float) -> str:
    return f"{hz / 1e9:g} GHz" if hz >= 1e9 else f"{hz / 1e6:g} MHz"


def estimate(graph: Graph, board: Board) -> LatencyEstimate:
    """Estimate one inference of ``graph`` on ``board``: cycles, latency, energy.

    Args:
        graph: from :func:`workbench.optimize.graph.analyze`.
        board: a :class:`workbench.boards.catalog.Board` (``kind`` ``"mcu"`` or
            ``"linux"``). Its ``weight_memory`` and ``active_power`` give the stall
            and power figures (per-core defaults when the catalog gives none), its
            ``core`` the cost factors, its ``clock_hz`` the clock, its ``fpu`` hard or
            soft float.

    Returns:
        A frozen :class:`LatencyEstimate` whose ``basis`` names the assumptions.

    Raises:
        ValueError: the board's clock is not positive.
    """
    clock = float(board.clock_hz)
    if not clock > 0:
        raise ValueError(f"board {board.id!r} has clock_hz={board.clock_hz!r}; need > 0")
    linux = board.kind == "linux"
    per_op = []
    if linux:
        lc = LINUX_CORES.get(board.core, LINUX_CORES["Cortex-A72"])
        core_note = "" if board.core in LINUX_CORES else " (unknown core: Cortex-A72 costs)"
        for op in graph.ops:
            per_op.append(OpEstimate(op.index, op.op, op.macs, _linux_op_cycles(op, lc)))
        overhead = lc.invoke
        kernels = "xnnpack"
    else:
        factors = CORE_FACTORS.get(board.core, UNKNOWN_CORE)
        mem = board.weight_memory or DEFAULT_WEIGHT_MEMORY
        soft_float = not board.fpu
        for op in graph.ops:
            per_op.append(OpEstimate(op.index, op.op, op.macs,
                                     _mcu_op_cycles(op, factors, mem, clock, soft_float)))
        overhead = INVOKE_OVERHEAD_CYCLES * factors.int_other
        kernels = "reference"
    cycles = overhead + sum(o.cycles for o in per_op)
    latency_ms = cycles / clock * 1e3
    power_mw, power_src = _power_mw(board)
    energy_mj = latency_ms * power_mw / 1e3
    where = f"{board.core} at {_fmt_mhz(clock)}"
    mw = f"{power_mw:.0f}" if power_mw >= 100 else f"{power_mw:.3g}"
    power = f"energy = latency x {mw} mW, {power_src}"
    if linux:
        basis = (f"LiteRT with XNNPACK on one {where}{core_note}: per-MAC and per-op costs of "
                 f"an application core, not calibrated against a measurement; {power}; "
                 f"see {DOC}")
    else:
        core_note = "" if board.core in CORE_FACTORS else " (unknown core: M4 x 1.5)"
        scaled = "" if board.core == "Cortex-M4F" else f", scaled to the {board.core}"
        caveat = f"; {factors.caveat}" if factors.caveat else ""
        basis = (f"TFLite Micro reference kernels on one {where}{core_note}: Cortex-M4 cycles "
                 f"per MAC, kernel tap and output (per-MAC cost calibrated on two MLPerf "
                 f"Tiny v0.5 results){scaled}, plus weight-memory stalls; {power}{caveat}; "
                 f"see {DOC}")
    return LatencyEstimate(
        board_id=board.id,
        core=board.core,
        clock_hz=int(board.clock_hz),
        kernels=kernels,
        cycles=float(cycles),
        latency_ms=float(latency_ms),
        energy_mj=float(energy_mj),
        power_mw=float(power_mw),
        per_op=tuple(per_op),
        basis=basis,
    )


# --------------------------------------------------------------------------------------
# Code size
# --------------------------------------------------------------------------------------

#: Interpreter core (MicroInterpreter, allocator, memory planner, flatbuffer access,
#: op resolver, logging) in bytes of Thumb-2 code at -Os (estimate).
TFLM_CORE_BYTES = 24 * 1024
#: Reference-kernel code per op in bytes, Thumb-2 at -Os (estimates; see the docs).
KERNEL_BYTES: dict[str, int] = {
    "CONV_2D": 6144, "DEPTHWISE_CONV_2D": 6656, "FULLY_CONNECTED": 4096,
    "TRANSPOSE_CONV": 5120, "BATCH_MATMUL": 5120, "CONV_3D": 5120,
    "AVERAGE_POOL_2D": 3584, "MAX_POOL_2D": 3584, "L2_POOL_2D": 2048,
    "SOFTMAX": 3584, "LOG_SOFTMAX": 3072, "LOGISTIC": 2560, "TANH": 2560,
    "ADD": 3072, "SUB": 3072, "MUL": 2560, "DIV": 2048, "ADD_N": 1536,
    "RESHAPE": 768, "SQUEEZE": 512, "EXPAND_DIMS": 768, "QUANTIZE": 2048, "DEQUANTIZE": 1536,
    "MEAN": 4096, "SUM": 4096, "REDUCE_MAX": 3072, "CONCATENATION": 2048, "PAD": 2048,
    "PADV2": 2048, "TRANSPOSE": 1536, "STRIDED_SLICE": 2048, "SLICE": 1536, "SPLIT": 1024,
    "PACK": 1024, "UNPACK": 1024, "RELU": 1024, "RELU6": 1024, "LEAKY_RELU": 1536,
    "PRELU": 1536, "HARD_SWISH": 2048, "MAXIMUM": 1536, "MINIMUM": 1536, "ARG_MAX": 1536,
    "GATHER": 1536, "RESIZE_NEAREST_NEIGHBOR": 1536, "RESIZE_BILINEAR": 2048,
    "UNIDIRECTIONAL_SEQUENCE_LSTM": 10240, "SVDF": 4096, "SHAPE": 512,
}
#: Kernels not in :data:`KERNEL_BYTES` (custom ops included).
DEFAULT_KERNEL_BYTES = 2048
#: Shared integer-quantization helpers, linked once when any op computes in integers.
QUANT_HELPERS_BYTES = 3 * 1024
#: Soft-float library (libgcc/ROM helpers plus libm) linked on a board without an FPU
#: (the reference kernels carry their float paths whatever the model's type).
SOFT_FLOAT_LIB_BYTES = 8 * 1024
#: Code-density factor relative to Thumb-2 by core, for a board whose catalog entry
#: gives no ``code_density`` (the catalog's boards all give theirs).
CORE_CODE_DENSITY = {"Cortex-M0+": 1.2, "Xtensa LX6": 1.35, "ARC EM9D": 1.1}
#: A whole LiteRT runtime (interpreter, builtin kernels, XNNPACK) for aarch64 Linux;
#: it does not depend on the ops.
LITERT_RUNTIME_BYTES = 4 * 1024 * 1024


def kernel_code_bytes(ops: Iterable[str], board) -> int:
    """Estimated flash for the TFLite Micro kernels these ops need plus the interpreter core.

    Args:
        ops: op names as in :attr:`Graph.op_counts` (``"CONV_2D"``, ``"CUSTOM:x"``);
            duplicates count once (each kernel is linked once). A dict such as
            ``graph.op_counts`` works (its keys are used).
        board: a catalog board; its ``code_density`` (or, without one, its core's
            default) scales the Thumb-2 figures. Linux boards get the size of a
            LiteRT runtime instead, whatever the ops.

    Returns:
        Bytes, rounded up to a whole KiB.
    """
    names = set(ops)
    if getattr(board, "kind", "mcu") == "linux":
        return LITERT_RUNTIME_BYTES
    total = TFLM_CORE_BYTES + sum(KERNEL_BYTES.get(n, DEFAULT_KERNEL_BYTES) for n in names)
    if names - {"RESHAPE", "SQUEEZE", "EXPAND_DIMS", "SHAPE"}:
        total += QUANT_HELPERS_BYTES
    if not getattr(board, "fpu", True) and names:
        total += SOFT_FLOAT_LIB_BYTES
    density = getattr(board, "code_density", None)
    total *= (density.factor if density is not None
              else CORE_CODE_DENSITY.get(getattr(board, "core", ""), 1.0))
    return int(-(-total // 1024) * 1024)
