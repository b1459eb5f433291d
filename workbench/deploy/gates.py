"""Deployment gates: the tests a model must pass before any byte of it is sent to a board.

:func:`run_gates` judges one model for one catalog board and returns a :class:`GateReport`
with one :class:`GateResult` per gate, in this order:

``fits the board``
    every op has a kernel in the board's runtime, the model fits one model slot, its
    smallest TFLite Micro arena fits the RAM left for the arena: the verdict of
    :func:`workbench.optimize.board_verdict` on the model's
    :class:`~workbench.optimize.Measurement` (measured once, or the one you pass).
``accuracy``
    accuracy on the held-out test split, run through the board's interpreter (TFLite Micro
    for microcontrollers), at or above ``min_accuracy``.
``agreement``
    the fraction of test windows on which the model predicts the same class as the float
    model, at or above ``min_agreement``.
``input/output contract``
    shapes, dtypes and quantization (scale, zero point) of the inputs and outputs equal
    what the board will feed it and read from it (``expected_input``/``expected_output``:
    e.g. the tensors of the model the device runs now, from
    ``workbench.tflite.inspect_model(previous).inputs``). A changed input scale means the
    firmware's feature code would feed the model wrong numbers.
``latency`` and ``energy``
    the board's figure per inference (measured by a board on silicon when the measurement
    holds one, else the cost model's estimate) within ``latency_budget_ms`` /
    ``energy_budget_mj``.
``data``
    the dataset snapshot the model was trained on still verifies
    (:func:`workbench.data.verify_snapshot`): the recordings and labels are the same bytes.

A gate whose inputs were not given is skipped (``passed`` is None) and says what to pass;
a gate whose inputs were given but cannot be evaluated fails and says why, so nothing
slips through unchecked. Call order::

    report = run_gates(variant, "nano33ble", data, reference=float_model,
                       expected_input=inspect_model(running_model).inputs,
                       dataset=ds)
    report.table()            # or display(report) in a notebook
    report.require()          # GateFailed unless every gate passed (or force=True)
    record(report.to_dict())  # the registry keeps it with the deployment

Running the gates measures the model when no measurement is given (a TFLite Micro probe
in a child process, and the test windows through the interpreter); it writes nothing
except what :func:`workbench.data.verify_snapshot` caches in the dataset's metadata.
"""

from __future__ import annotations

import hashlib
import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import WorkbenchError
from .sources import model_bytes

__all__ = ["run_gates", "GateResult", "GateReport", "GateFailed", "DEFAULT_MIN_ACCURACY",
           "DEFAULT_MIN_AGREEMENT", "GATES"]

#: The accuracy gate's threshold when none is given (fraction of test windows right).
DEFAULT_MIN_ACCURACY = 0.8
#: The agreement gate's threshold when none is given (fraction of windows with the float
#: model's class): quantization may change a few borderline windows, not more.
DEFAULT_MIN_AGREEMENT = 0.95
#: Every gate, in the order of the report.
GATES = ("fits the board", "accuracy", "agreement", "input/output contract", "latency",
         "energy", "data")
#: Relative tolerance when comparing quantization scales (float32 round trips).
SCALE_RTOL = 1e-6


class GateFailed(WorkbenchError, ValueError):
    """One or more deployment gates failed; ``report`` is the :class:`GateReport`."""

    def __init__(self, report: GateReport):
        self.report = report
        lines = [f"  {r.name}: {r.explanation}" for r in report.failed]
        n = len(report.failed)
        super().__init__(
            f"{n} deployment gate{'s' if n != 1 else ''} failed for {report.model!r} on "
            f"{report.board}:\n" + "\n".join(lines)
            + "\nFix the model (or the thresholds), or pass force=True to deploy anyway; "
              "the deployment is then recorded as forced.")


@dataclass
class GateResult:
    """One gate's outcome.

    ``passed`` is True, False, or None when the gate was skipped (``explanation`` says why
    and what to pass). ``measured`` and ``threshold`` are in ``unit`` (``"fraction"``,
    ``"bytes"``, ``"ms"``, ``"mJ"``, ``"differences"``); ``details`` holds the rest of the
    numbers (JSON-ready).
    """

    name: str
    passed: bool | None
    explanation: str
    measured: float | int | None = None
    threshold: float | int | None = None
    unit: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        """``"pass"``, ``"FAIL"`` or ``"skipped"``."""
        return {True: "pass", False: "FAIL", None: "skipped"}[self.passed]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "status": self.status,
                "measured": _plain(self.measured), "threshold": _plain(self.threshold),
                "unit": self.unit, "explanation": self.explanation,
                "details": _plain(self.details)}


@dataclass
class GateReport:
    """Every gate's result for one model on one board.

    ``forced`` becomes True when :meth:`require` let a failing report through with
    ``force=True``; the deployment record then says so.
    """

    model: str
    sha256: str
    board: str
    results: list[GateResult]
    forced: bool = False
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(
        timespec="seconds"))

    @property
    def passed(self) -> bool:
        """True when no gate failed (skipped gates do not fail)."""
        return not self.failed

    @property
    def failed(self) -> list[GateResult]:
        return [r for r in self.results if r.passed is False]

    @property
    def skipped(self) -> list[GateResult]:
        return [r for r in self.results if r.passed is None]

    def __getitem__(self, name: str) -> GateResult:
        """The result of the gate called ``name`` (one of :data:`GATES`)."""
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(f"no gate {name!r}; the gates are: {', '.join(GATES)}")

    def require(self, force: bool = False) -> GateReport:
        """Stop a deployment that failed a gate.

        Returns the report when every gate passed (or was skipped). Otherwise raises
        :class:`GateFailed` naming each failed gate with its numbers, unless ``force`` is
        True: then ``forced`` is set on this report (a side effect, so the deployment is
        recorded as forced) and the report is returned.
        """
        if self.failed:
            if not force:
                raise GateFailed(self)
            self.forced = True
        return self

    def _verdict(self) -> str:
        if not self.failed:
            return "all gates passed" + (f" ({len(self.skipped)} skipped)" if self.skipped else "")
        s = f"{len(self.failed)} gate{'s' if len(self.failed) != 1 else ''} failed"
        return s + (": deployment FORCED" if self.forced else ": not deployable")

    def table(self) -> str:
        """The report as plain text, one line per gate."""
        width = max(len(r.name) for r in self.results)
        lines = [f"Deployment gates: {self.model} ({self.sha256[:12]}) on {self.board}"]
        for r in self.results:
            lines.append(f"  {r.status:7s} {r.name:{width}s}  {r.explanation}")
        lines.append(self._verdict())
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def _repr_html_(self) -> str:
        colours = {"pass": "#1a7f37", "FAIL": "#cf222e", "skipped": "#6e7781"}
        rows = "".join(
            f"<tr><td style='color:{colours[r.status]};font-weight:bold'>{r.status}</td>"
            f"<td>{html.escape(r.name)}</td><td>{html.escape(r.explanation)}</td></tr>"
            for r in self.results)
        return (f"<div><b>Deployment gates</b>: {html.escape(self.model)} "
                f"(<code>{self.sha256[:12]}</code>) on {html.escape(self.board)}"
                "<table><tr><th></th><th>gate</th><th>numbers</th></tr>"
                f"{rows}</table><i>{html.escape(self._verdict())}</i></div>")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy (for the registry's deployment records)."""
        return {"model": self.model, "sha256": self.sha256, "board": self.board,
                "passed": self.passed, "forced": self.forced, "created": self.created,
                "gates": [r.to_dict() for r in self.results]}


# --------------------------------------------------------------------------- helpers
def _plain(x: Any) -> Any:
    """NumPy scalars and tuples to JSON-ready Python values."""
    if isinstance(x, Mapping):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    return x


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _test_split(data: Any) -> tuple[np.ndarray, np.ndarray] | None:
    if data is None:
        return None
    if isinstance(data, (tuple, list)):
        X, y = data[0], data[1]
    else:
        X, y = data.X_test, data.y_test
    return np.asarray(X), np.asarray(y)


def _classes(pred: Any) -> np.ndarray:
    """Class indices from indices (1-D) or per-class outputs (2-D and more)."""
    pred = np.asarray(pred)
    return pred.reshape(len(pred), -1).argmax(axis=1) if pred.ndim > 1 else pred.astype(int)


# --------------------------------------------------------------------------- gates
def _fit_gate(m: Any, board: Any, verdict: Any) -> GateResult:
    from ..optimize.boardfit import fmt_bytes

    slots = board.model_slots
    details = {"model_bytes": m.model_bytes, "slot_bytes": slots.slot_bytes,
               "arena_bytes": m.arena_bytes, "arena_budget_bytes": slots.arena_bytes,
               "unsupported_ops": list(m.unsupported_ops), "reasons": list(verdict.reasons)}
    if verdict.fits:
        arena = (f", arena {fmt_bytes(m.arena_bytes)} of {fmt_bytes(slots.arena_bytes)}"
                 if m.arena_bytes is not None and board.runtime == "tflite-micro" else "")
        text = (f"model {fmt_bytes(m.model_bytes)} in a {fmt_bytes(slots.slot_bytes)} slot"
                f"{arena}; {board.runtime} has a kernel for every op")
    else:
        text = "; ".join(verdict.reasons)
    return GateResult("fits the board", verdict.fits, text, m.model_bytes, slots.slot_bytes,
                      "bytes", details)


def _accuracy_gate(m: Any, min_accuracy: float, board: Any, asked: bool) -> GateResult:
    if m.accuracy is None:
        why = "; ".join(m.warnings) or "the interpreter gave no predictions"
        if not asked:
            return GateResult("accuracy", None, "no test data; pass data= (a "
                              "TrainingData) to measure accuracy on its held-out split",
                              None, min_accuracy, "fraction")
        return GateResult("accuracy", False, f"accuracy could not be measured: {why}",
                          None, min_accuracy, "fraction")
    where = "TFLite Micro" if m.runtime == "tflite-micro" else "LiteRT"
    ok = m.accuracy >= min_accuracy
    text = (f"{_pct(m.accuracy)} of {m.n_test} held-out windows right in {where} "
            f"{'≥' if ok else '<'} {_pct(min_accuracy)} required")
    if m.runtime != board.runtime:
        text += f" (measured in {m.runtime}, the board runs {board.runtime})"
    return GateResult("accuracy", ok, text, m.accuracy, min_accuracy, "fraction",
                      {"n_test": m.n_test, "errors": m.errors, "runtime": m.runtime})


def _reference_predictions(reference: Any, X: np.ndarray | None) -> np.ndarray:
    """The float reference's class per test window."""
    if isinstance(reference, np.ndarray) or (isinstance(reference, (list, tuple))
                                             and not hasattr(reference, "tflite")):
        return _classes(reference)
    if X is None:
        raise ValueError("a reference model needs the test windows: pass data= as well "
                         "(or pass the reference's predictions instead)")
    if hasattr(reference, "predict") and not hasattr(reference, "tflite"):  # Keras model
        return _classes(reference.predict(X, verbose=0, batch_size=256))
    from ..train.export import predict_tflite

    blob, _ = model_bytes(reference, verb="compare with")
    # the float reference's arithmetic is the same in any interpreter; LiteRT needs no probe
    return _classes(predict_tflite(blob, X, runtime="litert"))


def _agreement_gate(m: Any, reference: Any, X: np.ndarray | None,
                    min_agreement: float) -> GateResult:
    name = "agreement"
    if reference is None:
        if m.agreement is not None:
            ok = m.agreement >= min_agreement
            return GateResult(name, ok, f"same class as the float model on "
                              f"{_pct(m.agreement)} of test windows (from the measurement) "
                              f"{'≥' if ok else '<'} {_pct(min_agreement)} required",
                              m.agreement, min_agreement, "fraction")
        return GateResult(name, None, "no float reference; pass reference= (the "
                          "float Keras model, its .tflite, or its predictions)",
                          None, min_agreement, "fraction")
    if m.predictions is None:
        return GateResult(name, False, "cannot compare with the float model: the measurement "
                          "holds no per-window predictions (measure the model with data=, or "
                          "let run_gates measure it)", None, min_agreement, "fraction")
    ref = _reference_predictions(reference, X)
    pred = _classes(m.predictions)
    if len(ref) != len(pred):
        raise ValueError(f"the reference has {len(ref)} predictions but the test split "
                         f"{len(pred)} windows: give predictions on the same test split")
    agree = float(np.mean(ref == pred))
    ok = agree >= min_agreement
    differ = int(np.sum(ref != pred))
    text = (f"same class as the float model on {_pct(agree)} of {len(pred)} test windows "
            f"({differ} differ) {'≥' if ok else '<'} {_pct(min_agreement)} required")
    return GateResult(name, ok, text, agree, min_agreement, "fraction",
                      {"n": len(pred), "differ": differ})


def _specs(expected: Any) -> list[Any] | None:
    if expected is None:
        return None
    if isinstance(expected, Mapping) or hasattr(expected, "shape"):
        return [expected]
    if isinstance(expected, (list, tuple)):
        return list(expected)
    raise TypeError(f"expected_input/expected_output must be a TensorInfo-like object (shape, "
                    f"dtype, scale, zero_point), a dict of those keys, or a list of them; "
                    f"got {type(expected).__name__}")


def _spec_get(spec: Any, key: str) -> tuple[bool, Any]:
    """(given?, value): a dict checks only the keys it has; an object checks all four."""
    if isinstance(spec, Mapping):
        return (key in spec, spec.get(key))
    return (hasattr(spec, key), getattr(spec, key, None))


def _differences(kind: str, actual: Sequence[Any], expected: list[Any]) -> list[str]:
    if len(actual) != len(expected):
        return [f"the board uses {len(expected)} {kind}s, the model has {len(actual)}"]
    out = []
    for i, (t, spec) in enumerate(zip(actual, expected)):
        for key in ("shape", "dtype", "scale", "zero_point"):
            given, want = _spec_get(spec, key)
            if not given:
                continue
            have = getattr(t, key)
            if key == "shape":
                same = tuple(int(d) for d in want) == tuple(have)
            elif key == "scale":
                same = (want is None and have is None) or (
                    want is not None and have is not None
                    and math.isclose(float(want), float(have), rel_tol=SCALE_RTOL))
            elif key == "zero_point":
                same = want == have if want is None or have is None else int(want) == int(have)
            else:
                same = str(want) == str(have)
            if not same:
                w = tuple(want) if key == "shape" and want is not None else want
                out.append(f"{kind} {i} {key} {have} ≠ {w} the board uses")
    return out


def _contract_gate(info: Any, expected_input: Any, expected_output: Any) -> GateResult:
    name = "input/output contract"
    ins, outs = _specs(expected_input), _specs(expected_output)
    if ins is None and outs is None:
        return GateResult(name, None, "no expected tensors; pass expected_input= "
                          "(and expected_output=), e.g. inspect_model(running_model).inputs",
                          None, 0, "differences")
    diffs = []
    if ins is not None:
        diffs += _differences("input", info.inputs, ins)
    if outs is not None:
        diffs += _differences("output", info.outputs, outs)
    checked = " and ".join(k for k, v in (("inputs", ins), ("outputs", outs)) if v is not None)
    if not diffs:
        desc = ", ".join(f"{t.dtype}{list(t.shape)}"
                         + (f" scale {t.scale:.6g} zp {t.zero_point}" if t.scale else "")
                         for t in info.inputs)
        return GateResult(name, True, f"{checked} match what the board uses (input {desc})",
                          0, 0, "differences")
    text = "; ".join(diffs)
    if any("input" in d and ("scale" in d or "zero_point" in d) for d in diffs):
        text += ": the firmware's feature code would feed the model wrongly scaled numbers"
    return GateResult(name, False, text, len(diffs), 0, "differences", {"differences": diffs})


def _budget_gate(name: str, unit: str, value: float | None, budget: float | None,
                 verdict: Any) -> GateResult:
    if budget is None:
        return GateResult(name, None, f"no budget; pass {name}_budget_"
                          f"{unit.lower()}= to check it", value, None, unit)
    if value is None:
        return GateResult(name, False, f"no {name} figure for {verdict.board_id}: "
                          f"{verdict.basis}", None, budget, unit)
    ok = value <= budget
    source = "measured" if verdict.latency_source == "measured" else "estimated"
    text = (f"{value:.3g} {unit} per inference on {verdict.board_id} ({source}) "
            f"{'≤' if ok else '>'} {budget:g} {unit} budget")
    return GateResult(name, ok, text, value, budget, unit,
                      {"source": verdict.latency_source, "basis": verdict.basis})


def _data_gate(snapshot: Any, dataset: Any, data: Any) -> GateResult:
    from ..data import Dataset, DatasetError, verify_snapshot

    name = "data"
    sid = snapshot
    if sid is not None and not isinstance(sid, str):
        sid = getattr(sid, "id", None) or getattr(sid, "snapshot_id", None)
    if sid is None and data is not None:
        sid = getattr(data, "snapshot_id", None) or None
    if dataset is None:
        hint = f" snapshot {sid[:12]}" if sid else ""
        return GateResult(name, None, f"no dataset; pass dataset= to verify the "
                          f"training data{hint}", None, 0, "differences")
    if not sid:
        raise ValueError("the data gate needs the snapshot the model was trained on: pass "
                         "snapshot= (an id, a Snapshot or the TrainingRecord), or data= "
                         "with its snapshot_id")
    try:
        if not isinstance(dataset, Dataset):  # a folder: open it, never create one
            dataset = Dataset(Path(dataset), create=False)
        diffs = verify_snapshot(dataset, sid)
    except DatasetError as exc:
        return GateResult(name, False, f"snapshot {sid[:12]} cannot be verified: {exc}",
                          None, 0, "differences", {"snapshot": sid})
    if not diffs:
        return GateResult(name, True, f"snapshot {sid[:12]} still verifies: the same "
                          "recordings and labels", 0, 0, "differences", {"snapshot": sid})
    shown = "; ".join(diffs[:3]) + (f"; and {len(diffs) - 3} more" if len(diffs) > 3 else "")
    return GateResult(name, False, f"the training data changed since snapshot {sid[:12]}: "
                      f"{shown}", len(diffs), 0, "differences",
                      {"snapshot": sid, "differences": diffs})


# --------------------------------------------------------------------------- run_gates
def run_gates(model: Any, board: Any, data: Any = None, *, reference: Any = None,
              measurement: Any = None, min_accuracy: float = DEFAULT_MIN_ACCURACY,
              min_agreement: float = DEFAULT_MIN_AGREEMENT,
              latency_budget_ms: float | None = None, energy_budget_mj: float | None = None,
              snapshot: Any = None, dataset: Any = None, expected_input: Any = None,
              expected_output: Any = None) -> GateReport:
    """Run every deployment gate on ``model`` for ``board`` (see the module docstring).

    Call order: the model is parsed (its tensors, for the contract); unless ``measurement``
    is given it is measured once with :func:`workbench.optimize.measure` in the board's
    runtime (a TFLite Micro probe in a child process, then the test windows); the board's
    verdict (:func:`workbench.optimize.board_verdict`) gives the fit, latency and energy;
    a reference model, when given, runs the test windows; the dataset snapshot is verified.

    Args:
        model: a :class:`workbench.optimize.Variant` (or anything with ``.tflite`` bytes and
            a ``.name``), .tflite bytes, or the path of a .tflite file.
        board: a catalog board id (``"nano33ble"``) or a :class:`workbench.boards.Board`.
        data: a :class:`workbench.train.fit.TrainingData` (its test split) or a tuple
            ``(X_test, y_test, classes)``; without it (and without a measurement holding an
            accuracy) the accuracy gate is skipped.
        reference: the float model as a Keras model, a float .tflite (bytes, Variant or
            path), or its predictions on the test split (class indices, or per-class
            outputs). Without it the agreement gate uses the measurement's own
            ``agreement`` (against the float variant in :func:`measure_all`) if any.
        measurement: this model's :class:`~workbench.optimize.Measurement`, reused as it
            is (nothing is measured again); it must be of the same bytes.
        min_accuracy, min_agreement: thresholds, fractions in [0, 1].
        latency_budget_ms, energy_budget_mj: per-inference budgets (None: not checked).
        snapshot: the dataset snapshot the model was trained on (an id, a
            :class:`workbench.data.Snapshot`, or a TrainingRecord/TrainingData); default
            ``data.snapshot_id``.
        dataset: the :class:`workbench.data.Dataset` (or its folder) to verify it in.
        expected_input, expected_output: what the board feeds and reads: a
            :class:`workbench.tflite.TensorInfo`-like object, a dict with any of
            ``shape``/``dtype``/``scale``/``zero_point`` (only the keys given are
            checked), or a list of them, one per tensor.

    Returns:
        A :class:`GateReport`; call :meth:`GateReport.require` to stop on a failure.

    Raises:
        workbench.tflite.ModelError: the bytes are not a valid .tflite model.
        workbench.boards.UnknownBoardError: no such board in the catalog.
        ValueError: thresholds outside [0, 1], a measurement of other bytes or of another
            test split, a reference whose predictions do not match the test split.
        TypeError: a model or tensor specification of a type it cannot use.
    """
    from ..boards import Board, get_board
    from ..optimize import board_verdict, measure
    from ..tflite import inspect_model

    for label, value in (("min_accuracy", min_accuracy), ("min_agreement", min_agreement)):
        if not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"{label} is a fraction between 0 and 1, got {value}")
    for label, value in (("latency_budget_ms", latency_budget_ms),
                         ("energy_budget_mj", energy_budget_mj)):
        if value is not None and not float(value) > 0:
            raise ValueError(f"{label} must be a positive number, got {value}")
    blob, name = model_bytes(model, verb="gate")
    info = inspect_model(blob)
    board = board if isinstance(board, Board) else get_board(board)
    test = _test_split(data)
    if measurement is None:
        measurement = measure(blob, data, runtime=board.runtime, name=name)
    else:
        sha = hashlib.sha256(blob).hexdigest()
        if measurement.sha256 != sha:
            raise ValueError(f"the measurement {measurement.name!r} is of another model "
                             f"({measurement.sha256[:12]}, this one is {sha[:12]}): pass the "
                             "measurement of these bytes, or none")
        if (test is not None and measurement.n_test is not None
                and measurement.n_test != len(test[0])):
            raise ValueError(f"the measurement was made on {measurement.n_test} test windows, "
                             f"data has {len(test[0])}: pass the data it was measured on")
        name = measurement.name if name == "model" else name
    verdict = board_verdict(measurement, board)
    results = [
        _fit_gate(measurement, board, verdict),
        _accuracy_gate(measurement, float(min_accuracy), board, test is not None),
        _agreement_gate(measurement, reference, None if test is None else test[0],
                        float(min_agreement)),
        _contract_gate(info, expected_input, expected_output),
        _budget_gate("latency", "ms", verdict.latency_ms, latency_budget_ms, verdict),
        _budget_gate("energy", "mJ", verdict.energy_mj, energy_budget_mj, verdict),
        _data_gate(snapshot, dataset, data),
    ]
    return GateReport(model=name, sha256=info.sha256, board=board.id, results=results)
