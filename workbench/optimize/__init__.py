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
SavedModel and ONNX models; its parts :mod:`.imported_model`, :mod:`.keras_import`,
:mod:`.onnx_import`, :mod:`.model_trust`). The widget is :class:`workbench.ui.CompareTable`.

Call order: :func:`make_variants` (or :func:`load_model` / :func:`variant_from_tflite` for a
model that exists) -> :func:`measure` / :func:`measure_all` (and :func:`measure_on_device`
for a board's own latency) -> :func:`board_verdict` for one board, or a
:class:`ComparisonTable` for many rows -> :func:`report`. :func:`analyze` and
:func:`estimate` are the op-by-op analysis and the cost model underneath.

``import workbench.optimize`` is light: each name loads its module on first use, and
TensorFlow only loads when something is converted. ``.h5`` models run code when they
load, so :func:`load_model` refuses untrusted ones that hold ``Lambda`` layers (see
:mod:`.importers`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._exports import lazy

if TYPE_CHECKING:  # pragma: no cover - for type checkers only
    from .boardfit import board_verdict
    from .graph import Graph, analyze
    from .imported_model import ImportedModel, ModelImportError, UntrustedModelError
    from .importers import load_model
    from .latency import LatencyEstimate, estimate
    from .measuring import measure, measure_all, measure_on_device
    from .records import BoardVerdict, Measurement
    from .reporting import Report, report
    from .table import ComparisonTable
    from .variants import TECHNIQUES, FineTune, Variant, make_variants, variant_from_tflite

# public name -> submodule that defines it (no submodule is named like a public name)
_LAZY = {
    "Variant": ".variants", "make_variants": ".variants", "TECHNIQUES": ".variants",
    "FineTune": ".variants", "variant_from_tflite": ".variants",
    "measure": ".measuring", "measure_all": ".measuring", "measure_on_device": ".measuring",
    "Measurement": ".records", "BoardVerdict": ".records",
    "board_verdict": ".boardfit",
    "analyze": ".graph", "Graph": ".graph",
    "estimate": ".latency", "LatencyEstimate": ".latency",
    "ComparisonTable": ".table",
    "report": ".reporting", "Report": ".reporting",
    "load_model": ".importers", "ImportedModel": ".imported_model",
    "ModelImportError": ".imported_model", "UntrustedModelError": ".imported_model",
}

__all__ = ["BoardVerdict", "ComparisonTable", "FineTune", "Graph", "ImportedModel",
           "LatencyEstimate", "Measurement", "ModelImportError", "Report", "TECHNIQUES",
           "UntrustedModelError", "Variant", "analyze", "board_verdict", "estimate", "load_model",
           "make_variants", "measure", "measure_all", "measure_on_device", "report",
           "variant_from_tflite"]

__getattr__, __dir__ = lazy(__name__, _LAZY)
