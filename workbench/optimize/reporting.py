"""``report(model, board)``: one model on one board, explained, as a dict and a self-contained HTML page.

The report puts side by side what a model *is* (proxy metrics: parameters, MACs, file size)
and what it *does on the board* (perceptible metrics: RAM arena measured by TFLite Micro,
latency and energy, estimated by the cost model or measured on a board), then goes op by op
(type, shapes, parameters, MACs, estimated cycles), draws the planned activation memory,
and lists warnings a student should act on (unsupported ops, hybrid models that TFLite Micro
refuses, float ops left in an int8 model, a dynamic batch).

Usage::

    from workbench.optimize import report
    r = report(tflite_bytes, "nano33ble", data=data)   # data: TrainingData (optional)
    r.save("int8-report.html")                          # one file, no network needed
    r.to_dict()["perceptible"]["arena_bytes"]
    display(r)                                          # in a notebook

Call order and side effects: unless a :class:`~workbench.optimize.records.Measurement` is
given, :func:`workbench.optimize.measuring.measure` runs (child processes for the arena
search; the test split through the interpreter). Nothing is written until :meth:`Report.save`.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..boards.catalog import Board
from .boardfit import board_verdict, fmt_bytes
from .records import Measurement
from .variants import Variant

__all__ = ["report", "Report"]

_EXPLAIN = {
    "params": "Numbers the model learned (weights and biases). Stored in flash.",
    "macs": "Multiply-accumulate operations per inference: the arithmetic work.",
    "model_bytes": "The .tflite file: weights plus the graph description. Goes in flash.",
    "code_bytes": "Estimated TFLite Micro kernel code for the ops this model needs (also flash).",
    "arena_bytes": ("The smallest tensor arena (RAM for activations and bookkeeping) in which "
                    "TFLite Micro ran the model: measured, not estimated."),
    "latency_ms": "Time for one inference on the board.",
    "energy_mj": "Energy for one inference: latency times the board's active power.",
    "host_latency_ms": ("Time for one inference on this computer: useful to compare variants, "
                        "says nothing about the board."),
}


@dataclass
class Report:
    """The report: :attr:`data` (JSON-ready dict) and :attr:`html` (a complete page)."""

    data: dict[str, Any]
    html: str

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(self.data))

    def save(self, path) -> Path:
        """Write the HTML page (and ``<path>.json`` beside it if path ends in .html)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.html, encoding="utf-8")
        if path.suffix == ".html":
            path.with_suffix(".json").write_text(json.dumps(self.data, indent=1),
                                                 encoding="utf-8")
        return path

    def _repr_html_(self) -> str:
        """The page in an ``<iframe srcdoc>``: its stylesheet stays inside the frame
        instead of restyling the notebook around it."""
        return (f'<iframe srcdoc="{html.escape(self.html, quote=True)}" '
                'style="width:100%;height:860px;border:1px solid #ddd;border-radius:4px" '
                f'title="{html.escape(self.data["model"]["name"])} report"></iframe>')


def _board(board) -> Board:
    if isinstance(board, Board):
        return board
    from ..boards import get_board

    return get_board(str(board))


def report(model, board, *, data=None, name: str | None = None,
           measurement: Measurement | None = None, trusted: bool = False) -> Report:
    """Explain ``model`` on ``board``: proxy and perceptible metrics, ops, memory, warnings.

    Args:
        model: .tflite bytes, a :class:`~workbench.optimize.variants.Variant`, a
            :class:`~workbench.optimize.records.Measurement` (with its ``graph``), or
            anything :func:`workbench.optimize.importers.load_model` accepts (a Keras
            model, a path to .tflite/.keras/.h5/SavedModel/.onnx), converted as float.
        board: a catalog board id or :class:`~workbench.boards.catalog.Board`.
        data: a TrainingData or ``(X_test, y_test, classes)`` for accuracy (optional).
        name: the model's name in the report.
        measurement: reuse this measurement of ``model`` instead of measuring again.
        trusted: passed to :func:`~workbench.optimize.importers.load_model` for a model
            file: only a trusted ``.h5`` with ``Lambda`` layers (code) is loaded.

    Raises:
        workbench.tflite.ModelError: malformed .tflite bytes.
        workbench.boards.catalog.UnknownBoardError: unknown board id.
        workbench.optimize.importers.ModelImportError: a model that cannot be imported
            (:class:`~workbench.optimize.importers.UntrustedModelError`: one with code in it).
    """
    b = _board(board)
    if isinstance(model, Measurement) and measurement is None:
        measurement = model
    if measurement is None:
        if not isinstance(model, (Variant, bytes, bytearray, memoryview)):
            from .importers import load_model

            imported = load_model(model, trusted=trusted)
            model = Variant(name or Path(str(imported.source)).name, imported.kind,
                            imported.tflite, imported.keras_model, list(imported.notes))
        runtime = b.runtime
        measurement = _measure(model, data, runtime, name)
    if measurement.graph is None:
        raise ValueError("the measurement has no op analysis (graph); measure the model with "
                         "workbench.optimize.measure() first")
    verdict = board_verdict(measurement, b)
    from .latency import estimate

    est = estimate(measurement.graph, b)
    d = _report_dict(measurement, b, verdict, est, name)
    return Report(d, _render(d))


def _measure(model, data, runtime: str, name: str | None) -> Measurement:
    from .measuring import measure

    return measure(model, data, runtime=runtime, name=name)


def _warnings(m: Measurement, board: Board) -> list[dict[str, str]]:
    out = []
    g = m.graph
    if m.unsupported_ops:
        out.append({"level": "error", "text": (
            "TFLite Micro has no kernel for " + ", ".join(m.unsupported_ops) + ": the board "
            "cannot run this model. Replace those layers, or quantize fully to int8.")})
    if g.is_hybrid:
        out.append({"level": "error", "text": (
            "Hybrid (dynamic-range) model: int8 weights but float activations. TFLite Micro "
            "refuses hybrid ops; convert with full int8 quantization (representative data).")})
    if g.float_ops:
        ops = sorted({op.op for op in g.float_ops})
        out.append({"level": "warning", "text": (
            f"{len(g.float_ops)} op(s) still compute in float in a quantized model "
            f"({', '.join(ops)}): slow on the board and they need float kernels. Check that "
            "every layer has quantization ranges.")})
    for w in m.warnings:
        if not any(w[:40] in x["text"] for x in out):
            out.append({"level": "warning", "text": w})
    if board.kind == "mcu" and not board.fpu and any(
            op.compute_dtype == "float32" and op.macs for op in g.ops):
        out.append({"level": "warning", "text": (
            f"{board.name} has no floating-point unit: float ops run in software, many times "
            "slower. Use the int8 model.")})
    return out


def _report_dict(m: Measurement, b: Board, verdict, est, name) -> dict[str, Any]:
    g = m.graph
    cycles = {o.index: o.cycles for o in est.per_op}
    ops = []
    for op in g.ops:
        c = cycles.get(op.index, 0.0)
        ops.append({
            "index": op.index, "op": op.op, "detail": op.detail, "dtype": op.compute_dtype,
            "inputs": [list(t.shape) for t in op.inputs if not t.constant],
            "weights": [list(t.shape) for t in op.inputs if t.constant],
            "outputs": [list(t.shape) for t in op.outputs],
            "params": op.params, "macs": op.macs, "est_cycles": round(c),
            "est_ms": c / b.clock_hz * 1e3 if b.clock_hz else None,
            "share": (c / est.cycles) if est.cycles else 0.0,
        })
    slots = b.model_slots
    return {
        "model": {"name": name or m.name, "kind": m.kind, "sha256": m.sha256,
                  "input": [list(t.shape) + [t.dtype] for t in g.inputs],
                  "output": [list(t.shape) + [t.dtype] for t in g.outputs],
                  "op_counts": g.op_counts},
        "board": {"id": b.id, "name": b.name, "mcu": b.mcu, "core": b.core,
                  "clock_hz": b.clock_hz, "runtime": b.runtime,
                  "slot_bytes": slots.slot_bytes, "arena_budget_bytes": slots.arena_bytes,
                  "firmware_flash_bytes": slots.firmware_flash_bytes,
                  "firmware_ram_bytes": slots.firmware_ram_bytes},
        "proxy": {"params": m.params, "macs": m.macs, "model_bytes": m.model_bytes,
                  "weight_bytes": g.weight_bytes, "code_bytes": m.code_bytes},
        "perceptible": {"arena_bytes": m.arena_bytes,
                        "activation_peak_bytes": g.activation_peak_bytes,
                        "latency_ms": verdict.latency_ms, "latency_source": verdict.latency_source,
                        "energy_mj": verdict.energy_mj, "basis": verdict.basis,
                        "kernels": est.kernels, "power_mw": est.power_mw,
                        "host_latency_ms": m.host_latency_ms,
                        "device_latency": m.device_latency},
        "accuracy": {"runtime": m.runtime, "accuracy": m.accuracy, "errors": m.errors,
                     "n_test": m.n_test, "agreement_with_float": m.agreement,
                     "per_class": m.per_class, "confusion": m.confusion},
        "fits": {"fits": verdict.fits, "reasons": verdict.reasons},
        "ops": ops,
        "memory": {"peak_bytes": g.activation_peak_bytes,
                   "buffers": [{"tensor": x.tensor, "offset": x.offset, "nbytes": x.nbytes,
                                "first_op": x.first_op, "last_op": x.last_op}
                               for x in g.memory_layout]},
        "warnings": _warnings(m, b),
        "explain": _EXPLAIN,
    }


# ----------------------------------------------------------------------------- HTML

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5em;color:#222;max-width:70em}
h1{font-size:1.4em;margin-bottom:.2em} h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
.sub{color:#666;margin-top:0}
table{border-collapse:collapse;font-size:.9em;margin:.4em 0}
td,th{border:1px solid #ddd;padding:.25em .5em;text-align:right;vertical-align:top}
th{background:#f4f6f8} td.l,th.l{text-align:left}
.cards{display:flex;flex-wrap:wrap;gap:.8em}
.card{border:1px solid #ddd;border-radius:6px;padding:.6em .8em;min-width:12em;flex:1}
.card b{font-size:1.3em;display:block} .card small{color:#666}
.ok{color:#17702e;font-weight:600} .bad{color:#b00020;font-weight:600}
.w-error{background:#fdecea;border-left:4px solid #b00020;padding:.4em .6em;margin:.3em 0}
.w-warning{background:#fff8e1;border-left:4px solid #e6a100;padding:.4em .6em;margin:.3em 0}
.bar{background:#4a7bd0;height:.7em;display:inline-block}
.est{color:#666}
"""


def _e(x: Any) -> str:
    return html.escape(str(x))


def _num(x, fmt="{:,}") -> str:
    return "?" if x is None else fmt.format(x)


def _card(title: str, value: str, note: str) -> str:
    return f'<div class="card">{_e(title)}<b>{value}</b><small>{_e(note)}</small></div>'


def _memory_svg(mem: dict, n_ops: int) -> str:
    """Activation buffers as rectangles: x = op index (lifetime), y = arena offset."""
    buffers = mem["buffers"]
    peak = max(1, mem["peak_bytes"])
    width, height, left = 640, 220, 50
    cols = max(1, n_ops)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width + left + 10}" '
             f'height="{height + 40}" role="img" aria-label="planned activation memory">',
             f'<rect x="{left}" y="10" width="{width}" height="{height}" fill="#fafafa" '
             'stroke="#ccc"/>']
    palette = ["#4a7bd0", "#e07b39", "#3fa34d", "#b84fc2", "#c9a227", "#2ab0b0", "#d0455b"]
    for i, buf in enumerate(buffers):
        x = left + width * buf["first_op"] / cols
        w = max(2.0, width * (buf["last_op"] - buf["first_op"] + 1) / cols)
        y = 10 + height * (1 - (buf["offset"] + buf["nbytes"]) / peak)
        h = max(1.0, height * buf["nbytes"] / peak)
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" '
            f'fill="{palette[i % len(palette)]}" fill-opacity="0.75" stroke="#333" '
            f'stroke-width="0.5"><title>{_e(buf["tensor"])}: {buf["nbytes"]:,} B at offset '
            f'{buf["offset"]:,}, alive ops {buf["first_op"]}-{buf["last_op"]}</title></rect>')
    parts.append(f'<text x="{left - 4}" y="16" font-size="10" text-anchor="end">'
                 f'{_e(fmt_bytes(peak))}</text>')
    parts.append(f'<text x="{left - 4}" y="{height + 10}" font-size="10" text-anchor="end">0</text>')
    parts.append(f'<text x="{left + width / 2}" y="{height + 30}" font-size="11" '
                 'text-anchor="middle">op index (time) →</text>')
    parts.append("</svg>")
    return "".join(parts)


def _render(d: dict[str, Any]) -> str:
    m, b, p, q = d["model"], d["board"], d["proxy"], d["perceptible"]
    acc, fits, ex = d["accuracy"], d["fits"], d["explain"]
    est = q["latency_source"] == "estimate"
    lat = ("?" if q["latency_ms"] is None else
           f'{"~" if est else ""}{q["latency_ms"]:.2f} ms')
    energy = "?" if q["energy_mj"] is None else f'{"~" if est else ""}{q["energy_mj"]:.3f} mJ'
    verdict = (f'<span class="ok">fits {_e(b["name"])}</span>' if fits["fits"] else
               f'<span class="bad">does not fit {_e(b["name"])}</span>: ' +
               "; ".join(_e(r) for r in fits["reasons"]))
    out = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{_e(m['name'])} on "
           f"{_e(b['name'])}</title><style>{_CSS}</style></head><body>",
           f"<h1>{_e(m['name'])} on {_e(b['name'])}</h1>",
           f'<p class="sub">{_e(m["kind"])} model · input {_e(m["input"])} · output '
           f'{_e(m["output"])} · sha256 {_e(m["sha256"][:16])}… · {_e(b["mcu"])} '
           f'({_e(b["core"])}, {b["clock_hz"] / 1e6:g} MHz, runtime {_e(b["runtime"])})</p>',
           f"<p>{verdict}</p>"]
    if d["warnings"]:
        out.append("<h2>Warnings</h2>")
        out += [f'<div class="w-{_e(w["level"])}">{_e(w["text"])}</div>' for w in d["warnings"]]

    out.append("<h2>What the model is (proxy metrics)</h2><div class='cards'>")
    out.append(_card("parameters", _num(p["params"]), ex["params"]))
    out.append(_card("MACs per inference", _num(p["macs"]), ex["macs"]))
    out.append(_card("model file", _e(fmt_bytes(p["model_bytes"])),
                     f'{ex["model_bytes"]} Slot: {fmt_bytes(b["slot_bytes"])}.'))
    out.append(_card("kernel code (estimate)", _e(fmt_bytes(p["code_bytes"])), ex["code_bytes"]))
    out.append("</div><p>Proxy metrics are easy to count, but they do not tell you how fast "
               "the board is or how much RAM it needs: those depend on the board.</p>")

    out.append("<h2>What it does on the board (perceptible metrics)</h2><div class='cards'>")
    out.append(_card("RAM arena (measured)", _e(fmt_bytes(q["arena_bytes"])),
                     f'{ex["arena_bytes"]} Budget on this board: '
                     f'{fmt_bytes(b["arena_budget_bytes"])}.'))
    out.append(_card("latency" + (" (estimate)" if est else f' ({q["latency_source"]})'),
                     _e(lat), ex["latency_ms"]))
    out.append(_card("energy per inference", _e(energy), ex["energy_mj"]))
    if q["host_latency_ms"] is not None:
        out.append(_card("on this computer", f'{q["host_latency_ms"]:.3f} ms',
                         ex["host_latency_ms"]))
    out.append("</div>")
    out.append(f'<p class="est"><b>Basis of the latency:</b> {_e(q["basis"])}</p>')
    for dev_board, rep in (q["device_latency"] or {}).items():
        kind = "host time of the virtual board" if rep.get("estimated") else "measured on silicon"
        out.append(f'<p class="est">Reported by {_e(rep.get("device", dev_board))} '
                   f'({_e(dev_board)}): {rep["latency_ms"]:.3f} ms ({kind}).</p>')

    if acc["accuracy"] is not None:
        out.append("<h2>Accuracy</h2>")
        agree = acc["agreement_with_float"]
        out.append(f'<p>Test accuracy <b>{acc["accuracy"]:.1%}</b> ({acc["errors"]} wrong of '
                   f'{acc["n_test"]}), run in <b>{_e(acc["runtime"])}</b>, the interpreter the '
                   "board uses"
                   + (f"; same class as the float model on {agree:.1%} of windows"
                      if agree is not None else "") + ".</p>")
        rows = "".join(
            f'<tr><td class="l">{_e(c)}</td><td>{_num(v.get("precision"), "{:.2f}")}</td>'
            f'<td>{_num(v.get("recall"), "{:.2f}")}</td><td>{_num(v.get("f1"), "{:.2f}")}</td>'
            f'<td>{v.get("support", "")}</td></tr>' for c, v in acc["per_class"].items())
        out.append('<table><tr><th class="l">class</th><th>precision</th><th>recall</th>'
                   f"<th>F1</th><th>windows</th></tr>{rows}</table>")

    out.append("<h2>Op by op</h2><p>Estimated cycles come from the same cost model as the "
               "latency; the bar shows each op's share of the time.</p>")
    rows = []
    for op in d["ops"]:
        rows.append(
            f'<tr><td>{op["index"]}</td><td class="l">{_e(op["op"])}<br><small>'
            f'{_e(op["detail"])}</small></td><td class="l">{_e(op["dtype"])}</td>'
            f'<td class="l">{_e(op["inputs"])}</td><td class="l">{_e(op["weights"])}</td>'
            f'<td class="l">{_e(op["outputs"])}</td><td>{op["params"]:,}</td>'
            f'<td>{op["macs"]:,}</td><td>{op["est_cycles"]:,}</td>'
            f'<td class="l"><span class="bar" style="width:{100 * op["share"]:.1f}px"></span> '
            f'{op["share"]:.0%}</td></tr>')
    out.append('<table><tr><th>#</th><th class="l">op</th><th class="l">computes in</th>'
               '<th class="l">input</th><th class="l">weights</th><th class="l">output</th>'
               "<th>params</th><th>MACs</th><th>est. cycles</th><th class='l'>time</th></tr>"
               + "".join(rows) + "</table>")

    mem = d["memory"]
    out.append("<h2>Memory layout</h2>")
    out.append(f"<p>Activations are planned into {_e(fmt_bytes(mem['peak_bytes']))}: tensors "
               "that are never alive at the same time share memory. The measured arena "
               f"({_e(fmt_bytes(q['arena_bytes']))}) adds TFLite Micro's own bookkeeping. "
               "Hover a block to see its tensor.</p>")
    out.append(_memory_svg(mem, len(d["ops"])))
    out.append(f"<h2>Flash budget on {_e(b['name'])}</h2><table>"
               f"<tr><td class='l'>firmware (incl. runtime)</td><td>"
               f"{_e(fmt_bytes(b['firmware_flash_bytes']))}</td></tr>"
               f"<tr><td class='l'>one model slot</td><td>{_e(fmt_bytes(b['slot_bytes']))}</td></tr>"
               f"<tr><td class='l'>this model</td><td>{_e(fmt_bytes(p['model_bytes']))}</td></tr>"
               "</table>")
    out.append("</body></html>")
    return "".join(out)
