"""Measure each variant for real: accuracy in the device's interpreter, sizes, arena, ops.

:func:`measure` takes one :class:`~workbench.optimize.variants.Variant` (or .tflite bytes)
and returns a :class:`~workbench.optimize.records.Measurement`:

* **accuracy** on the test split, run through the interpreter the device will use:
  TFLite Micro (``runtime="tflite-micro"``, microcontrollers) or LiteRT with its reference kernels
  (``runtime="litert"``, Linux boards). A model TFLite Micro cannot run (a hybrid model,
  an op it has no kernel for) is measured in LiteRT instead, with a warning saying so;
* **agreement** with the float model: the fraction of test windows with the same class;
* **arena**: the smallest tensor arena that works (the arena a board needs), found by
  bisection in a child process (:func:`workbench.tflite.min_arena`), so a crash inside
  TFLM never reaches the caller;
* **sizes**: the model bytes, and the estimated kernel code for the ops it needs;
* **ops**: parameters, MACs, ops TFLM has no kernel for (named), float ops left in a
  quantized model, hybrid ops;
* **host latency**: the median invoke time on this machine (a proxy; the per-board
  estimates are :func:`workbench.optimize.boardfit.board_verdict`'s job).

:func:`measure_on_device` adds what a connected board reports (latency, arena used).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from ..tflite import Spawn
from .records import Measurement
from .variants import Variant

__all__ = ["measure", "measure_all", "measure_on_device", "ARENA_SEARCH_UPPER",
           "CODE_SIZE_REFERENCE_BOARD"]

#: The largest arena the search tries (bytes): more than any catalog microcontroller has.
ARENA_SEARCH_UPPER = 4 << 20
#: Kernel code sizes in a Measurement are for this board's core (they differ per
#: instruction set); :func:`workbench.optimize.boardfit.board_verdict` is per board.
CODE_SIZE_REFERENCE_BOARD = "nano33ble"
#: At most this many test windows are timed for the host latency.
LATENCY_SAMPLES = 50


def _test_split(data) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
    """(X_test, y_test, classes) from a TrainingData, a tuple, or None."""
    if data is None:
        return None
    if isinstance(data, (tuple, list)):
        if len(data) != 3:
            raise ValueError("data must be a TrainingData or a tuple (X_test, y_test, classes)")
        X, y, classes = data
    else:
        X, y, classes = data.X_test, data.y_test, data.classes
    X, y = np.asarray(X), np.asarray(y)
    if len(X) != len(y):
        raise ValueError(f"X_test has {len(X)} windows but y_test {len(y)} labels")
    return X, y, list(classes)


def _add_f1(per_class: dict[str, dict]) -> dict[str, dict]:
    out = {}
    for name, d in per_class.items():
        p, r = d.get("precision"), d.get("recall")
        f1 = (2 * p * r / (p + r)) if p is not None and r is not None and (p + r) > 0 else (
            0.0 if p is not None and r is not None else None)
        out[name] = {**d, "f1": f1}
    return out


def measure(variant: Variant | bytes, data=None, *, reference: np.ndarray | None = None,
            runtime: str = "tflite-micro", name: str | None = None,
            arena_upper: int = ARENA_SEARCH_UPPER, spawn: Spawn | None = None) -> Measurement:
    """Measure one variant (see the module docstring for what is measured).

    Call order: the model is parsed once and analysed op by op in this process (no
    interpreter); TFLM is then probed in a child process (the arena search, which
    starts at ``arena_upper``); finally the test windows run through the chosen
    interpreter in this process, only once TFLM has been proven to run the model (the
    search's own probe is handed on, so nothing probes the model again).

    Args:
        variant: a :class:`Variant` or .tflite bytes.
        data: a :class:`workbench.train.fit.TrainingData` (its test split is used), a
            tuple ``(X_test, y_test, classes)``, or None (no accuracy).
        reference: the float model's predicted classes on the same test windows, for
            ``agreement`` (:func:`measure_all` passes the float variant's).
        runtime: ``"tflite-micro"`` (microcontrollers) or ``"litert"`` (Linux boards): the
            catalog's names (:data:`workbench.boards.RUNTIMES`), so ``board.runtime`` fits.
        name: the row's name (default the variant's, or "model").
        arena_upper: the largest arena tried, bytes.
        spawn: starts the probe's child processes (default :class:`subprocess.Popen`);
            one measurement starts one, plus one more per arena size that crashed TFLM.

    Returns:
        A :class:`Measurement`; problems with the model (unsupported ops, an arena
        larger than ``arena_upper``) are in its ``unsupported_ops`` and ``warnings``.

    Raises:
        workbench.tflite.ModelError: the bytes are not a valid .tflite model.
        ValueError: bad ``runtime`` or ``data``.
    """
    from ..boards import get_board
    from ..tflite import ModelError, ProbeError, ProbeFailure, inspect_model, min_arena
    from ..train.export import check_runtime, predict_tflite
    from ..train.fit import metrics_from_predictions
    from .graph import analyze
    from .latency import kernel_code_bytes

    check_runtime(runtime)
    if isinstance(variant, Variant):
        blob, kind, name = variant.tflite, variant.kind, name or variant.name
    else:
        blob, kind, name = bytes(variant), "imported", name or "model"
    info = inspect_model(blob)
    graph = analyze(info)
    test = _test_split(data)
    warnings: list[str] = []

    # TFLite Micro: can it run the model at all, and in how small an arena?
    fit = None
    unsupported: list[str] = []
    try:
        fit = min_arena(blob, arena_upper, spawn=spawn)
    except ProbeError as exc:  # it does not run even in the largest arena
        unsupported = list(exc.result.unsupported_ops)
        if exc.result.failure is not ProbeFailure.UNSUPPORTED_OP:
            warnings.append(f"TFLite Micro cannot run it: {exc.result.error}")
    except ModelError as exc:
        warnings.append(f"arena search failed: {exc}")
    arena = fit.needed_bytes if fit is not None else None
    if graph.is_hybrid:
        warnings.append("hybrid (dynamic-range) model: float activations with int8 weights; "
                        "TFLite Micro refuses it, LiteRT runs it")
    quantized_io = any(t.dtype in ("int8", "int16") for t in graph.inputs)
    if quantized_io and graph.float_ops:
        ops = sorted({op.op for op in graph.float_ops})
        warnings.append(f"float ops left in a quantized model: {', '.join(ops)} "
                        "(they run slowly, in float, on the device)")
    if info.has_dynamic_batch:
        warnings.append("dynamic batch dimension: fix it to 1 before converting "
                        "(it adds shape ops)")

    m = Measurement(name=name, kind=kind, model_bytes=len(blob), sha256=info.sha256,
                    runtime=runtime, params=graph.params, macs=graph.macs,
                    input_dtype=info.inputs[0].dtype if info.inputs else "?",
                    arena_bytes=arena, unsupported_ops=unsupported, warnings=warnings,
                    graph=graph)
    try:
        m.code_bytes = kernel_code_bytes(graph.op_counts, get_board(CODE_SIZE_REFERENCE_BOARD))
    except Exception as exc:  # an op the code-size table does not know: say so, carry on
        warnings.append(f"kernel code size unknown: {exc}")

    if test is None or len(info.inputs) != 1 or len(info.outputs) != 1:
        if test is not None:
            warnings.append("accuracy needs a single-input, single-output model")
        return m
    X, y, classes = test
    use = runtime
    if use == "tflite-micro" and arena is None:
        use = "litert"
        warnings.append("accuracy measured in LiteRT, since TFLite Micro cannot run this model")
    times: list[float] = []
    probs = predict_tflite(blob, X, runtime=use,
                           arena_bytes=(arena + 1024) if use == "tflite-micro" else None,
                           probed=fit.probe if (use == "tflite-micro" and fit) else None,
                           latencies_ms=times)
    pred = probs.reshape(len(X), -1).argmax(axis=1)
    metrics = metrics_from_predictions(y, pred, classes)
    m.runtime = use
    m.accuracy, m.errors, m.n_test = metrics["accuracy"], metrics["errors"], metrics["n"]
    m.per_class = _add_f1(metrics["per_class"])
    m.confusion = metrics["confusion"]
    m.predictions = pred
    if reference is not None:
        reference = np.asarray(reference)
        if len(reference) != len(pred):
            raise ValueError(f"reference has {len(reference)} predictions, the test split "
                             f"{len(pred)}")
        m.agreement = float(np.mean(reference == pred))
    if times:
        m.host_latency_ms = float(statistics.median(times[:LATENCY_SAMPLES]))
    return m


def measure_all(variants: Sequence[Variant], data=None, *, runtime: str = "tflite-micro",
                progress: Callable[[str], None] | None = None,
                spawn: Spawn | None = None) -> list[Measurement]:
    """:func:`measure` every variant; agreement is against the float variant, if any.

    The float variant (``kind == "float"``) is measured first, so its predictions are
    the reference for the others; without one, ``agreement`` stays None. ``spawn`` starts
    the TFLite Micro probe processes, as in :func:`measure` (one per variant).
    """
    say = progress or (lambda _line: None)
    order = sorted(range(len(variants)), key=lambda i: variants[i].kind != "float")
    results: dict[int, Measurement] = {}
    reference = None
    for i in order:
        v = variants[i]
        say(f"measuring {v.name} ...")
        m = measure(v, data, reference=reference, runtime=runtime, spawn=spawn)
        if v.kind == "float" and reference is None and getattr(m, "predictions", None) is not None:
            reference = m.predictions
            m.agreement = 1.0
        results[i] = m
    return [results[i] for i in range(len(variants))]


def measure_on_device(measurements: Iterable[Measurement], variants: Iterable[Variant],
                      device, *, runs: int = 5,
                      progress: Callable[[str], None] | None = None) -> dict[str, str]:
    """Upload each variant to a connected board and record what the board reports.

    For each (measurement, variant) pair: ``device.upload_model`` (verified and
    committed), ``runs`` inferences on a zero input, then the median reported latency
    goes into ``measurement.device_latency[board_id]`` as ``{"latency_ms", "estimated",
    "device", "arena_bytes"}``; ``estimated`` is the board's LATENCY_ESTIMATED flag (set
    by the virtual board, whose latency is host time); ``arena_bytes`` is the arena the
    board reports for the model (the virtual board: the smallest that works, as the
    measurement's own ``arena_bytes``).

    Side effects: replaces the board's active model, each time; the board stays valid
    (every upload is verified before it is committed, and the previous model is its
    fallback). Deploy the variant you choose afterwards.

    Returns:
        variant name -> "ok" or the reason the board refused it (e.g. too large):
        a refusal does not stop the others.
    """
    from ..link.errors import LinkError

    measurements, variants = list(measurements), list(variants)
    if len(measurements) != len(variants):
        raise ValueError(f"{len(measurements)} measurements but {len(variants)} variants: pass "
                         "them in the same order, one measurement per variant")
    say = progress or (lambda _line: None)
    info = device.hello()
    board_id = info.board_id
    outcome: dict[str, str] = {}
    for m, v in zip(measurements, variants):
        say(f"{v.name}: uploading to {board_id} ...")
        try:
            device.upload_model(v.tflite, name=v.name[:24])
            spec = _input_spec(v.tflite)
            latencies, arena, estimated = [], 0, True
            for _ in range(runs):
                r = device.infer(np.zeros(spec.shape, dtype=np.dtype(spec.dtype)))
                latencies.append(r.latency_us / 1000.0)
                arena, estimated = r.arena_bytes, r.latency_estimated
        except LinkError as exc:
            outcome[v.name] = str(exc)
            continue
        m.device_latency[board_id] = {"latency_ms": float(statistics.median(latencies)),
                                      "estimated": bool(estimated),
                                      "device": getattr(device, "url", board_id),
                                      "arena_bytes": int(arena)}
        outcome[v.name] = "ok"
    return outcome


def _input_spec(blob: bytes) -> Any:
    from ..tflite import inspect_model

    return inspect_model(blob).inputs[0]
