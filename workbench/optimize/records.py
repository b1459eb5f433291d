"""The records the optimize step passes around: what was measured, and a board's verdict.

:class:`Measurement` is everything about one variant that does not depend on the board
(accuracy through the interpreter the device will use, sizes, arena, op counts);
:class:`BoardVerdict` is what one board makes of it (fits or not and why, estimated or
measured latency and energy). Both are plain data: the table, the widget and the report
read them, and ``to_dict()`` gives JSON-ready dicts.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ["Measurement", "BoardVerdict"]


@dataclass
class Measurement:
    """One variant, measured on this machine.

    Sizes are bytes. ``accuracy``/``errors``/``per_class``/``agreement`` are None when no
    test data was given or the interpreter cannot run the model (``unsupported_ops`` or
    ``warnings`` then say why). ``agreement`` is the fraction of test windows whose
    predicted class equals the float reference model's.
    """

    name: str                     #: "int8 PTQ", "QAT int8", ...
    #: float | dynamic | int8 | int16x8 | qat | pruned | clustered | distilled | imported
    kind: str
    model_bytes: int              #: the .tflite file
    sha256: str
    runtime: str                  #: interpreter used for accuracy: "tflite-micro" or "litert"
    params: int                   #: constant weights and biases (elements)
    macs: int                     #: multiply-accumulates per inference
    input_dtype: str
    accuracy: float | None = None
    errors: int | None = None
    n_test: int | None = None
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)
    confusion: list[list[int]] = field(default_factory=list)  #: rows: truth, columns: predicted
    agreement: float | None = None
    arena_bytes: int | None = None        #: smallest TFLM arena that works (None: TFLM cannot run it)
    code_bytes: int | None = None         #: estimated kernel code for the ops it needs
    host_latency_ms: float | None = None  #: median invoke time on this machine
    unsupported_ops: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: latencies reported by devices, board id -> {"latency_ms", "estimated" (bool), "device"}
    device_latency: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the op-by-op analysis (:class:`workbench.optimize.graph.Graph`), for estimates and reports
    graph: Any = field(default=None, repr=False, compare=False)
    #: predicted class per test window (kept for agreement; not in ``to_dict``)
    predictions: Any = field(default=None, repr=False, compare=False)

    @property
    def flash_bytes(self) -> int:
        """Model plus the kernel code it needs (the model alone when code is unknown)."""
        return self.model_bytes + (self.code_bytes or 0)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy: every field but ``predictions``, the graph as its own dict,
        and ``flash_bytes``. Reads the measurement and never changes it (the dict shares
        nothing with it)."""
        d = {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self)
             if f.name not in ("graph", "predictions")}
        d["flash_bytes"] = self.flash_bytes
        d["graph"] = self.graph.to_dict() if self.graph is not None else None
        return d


@dataclass
class BoardVerdict:
    """What one board makes of one :class:`Measurement`.

    ``latency_source`` is ``"measured"`` when a device on silicon reported it,
    ``"virtual"`` when the virtual board did (host time), else ``"estimate"``
    (the cost model, ``basis`` says how).
    """

    board_id: str
    fits: bool
    reasons: list[str]            #: why it does not fit (empty when it fits)
    latency_ms: float | None
    energy_mj: float | None
    latency_source: str
    basis: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
