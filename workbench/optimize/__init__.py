"""Optimize and compare: every variant of a model, measured side by side.

The flow, each step a plain object the next one takes::

    from workbench.optimize import make_variants, measure_all, ComparisonTable, report
    variants = make_variants(model, data)            # float, dynamic, int8, int16x8, QAT, ...
    measured = measure_all(variants, data)           # accuracy in TFLM, arena, sizes, ops
    table = ComparisonTable(measured, board="nano33ble")   # fits, estimates, Pareto front
    table.board = "pico"                              # re-evaluated for another board
    report(variants[2].tflite, "nano33ble", data=data).save("int8.html")

Modules: :mod:`.variants` (conversion), :mod:`.measuring` (measurement), :mod:`.graph`
(op-by-op analysis), :mod:`.latency` (the per-board cost model, docs/latency-model.md),
:mod:`.boardfit` (fits and estimates for one board), :mod:`.table` (the comparison),
:mod:`.reporting` (the HTML report), :mod:`.importers` (existing .tflite, Keras,
SavedModel and ONNX models). The widget is :class:`workbench.ui.CompareTable`.

``import workbench.optimize`` is light: each name loads its module on first use, and
TensorFlow only loads when something is converted.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Variant": ".variants", "make_variants": ".variants", "TECHNIQUES": ".variants",
    "FineTune": ".variants", "variant_from_tflite": ".variants",
    "measure": ".measuring", "measure_all": ".measuring", "measure_on_device": ".measuring",
    "Measurement": ".records", "BoardVerdict": ".records",
    "evaluate": ".boardfit",
    "analyze": ".graph", "Graph": ".graph",
    "estimate": ".latency", "LatencyEstimate": ".latency",
    "ComparisonTable": ".table",
    "report": ".reporting", "Report": ".reporting",
    "load_model": ".importers", "ImportedModel": ".importers",
    "ModelImportError": ".importers",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
