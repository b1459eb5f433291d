"""Every variant of lesson 04's model, measured and compared; the latency cost model
checked against published MLPerf Tiny figures.

The pipeline is lesson 04's: BasicMotions (aeon) with its published 40/40 train/test
split, a validation set dealt from the training recordings, windows of 100 samples x 6
channels; float = ``imu_cnn`` size "s" (``TrainConfig(epochs=80, patience=12, seed=0)``);
then ``make_variants`` with every technique and its default fine-tuning, and
``measure_all`` (accuracy in TFLite Micro, or LiteRT for the hybrid model that TFLM
refuses; arena by bisection in child processes). The comparison table is printed for
the Nano 33 BLE Sense.

Latency estimates: the two MLPerf Tiny v0.5 reference models rebuilt layer for layer
(:mod:`workbench.optimize.anchors`) estimated on the NUCLEO-L4R5ZI next to their
published medians, and the int8 variant estimated on every microcontroller in the
catalog. The anchors set the cost model's one tuned constant (cycles per MAC; see
docs/latency-model.md), so agreement with them is a consistency check, not an
independent validation.

Run: ``python bench/optimize.py`` (about 2 minutes on 2 cores). Details go to stderr;
the headline figures are printed last, one ``metric: value`` per line.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _say(*args) -> None:
    print(*args, file=sys.stderr)


def main() -> int:
    from workbench.boards.catalog import get_board, load_catalog
    from workbench.data.formats import example_dataset
    from workbench.optimize import (
        ComparisonTable,
        analyze,
        anchors,
        board_verdict,
        estimate,
        make_variants,
        measure_all,
    )
    from workbench.optimize.boardfit import fmt_bytes
    from workbench.train.fit import TrainConfig, TrainingData, train
    from workbench.train.zoo import imu_cnn

    with tempfile.TemporaryDirectory() as tmp:
        ds = example_dataset("basicmotions", Path(tmp) / "bm")
        data = TrainingData.from_dataset(ds, length=100, predefined="split", val=0.2, seed=0)

    t0 = time.perf_counter()
    flt = train(lambda: imu_cnn(data.input_shape, data.n_classes, "s"), data,
                TrainConfig(epochs=80, patience=12, seed=0))
    t_train = time.perf_counter() - t0

    t0 = time.perf_counter()
    variants = make_variants(flt.model, data)
    t_variants = time.perf_counter() - t0

    spawned: list[list[str]] = []

    def counting_spawn(args, **kwargs):  # the real Popen, counted
        spawned.append(list(args))
        return subprocess.Popen(args, **kwargs)

    t0 = time.perf_counter()
    measured = measure_all(variants, data, spawn=counting_spawn)
    t_measure = time.perf_counter() - t0
    m = {x.kind: x for x in measured}

    # ---- the comparison table on the Nano 33 BLE Sense, as text
    table = ComparisonTable(measured, "nano33ble", reference="float32")
    _say(f"\nVariants on {table.board.name} (reference float32; * = Pareto front of "
         "accuracy against flash, among those that fit)")
    _say(f"  {'variant':16s} {'acc':>6s} {'err':>3s} {'agree':>6s} {'model':>9s} {'flash':>9s} "
         f"{'arena':>9s} {'params':>6s} {'MACs':>7s} {'latency':>9s} {'energy':>9s} runtime fits")
    for r in table.rows():
        meas = table.measurement(r["name"])
        acc = "–" if r["accuracy"] is None else f"{r['accuracy']:.3f}"
        agree = "–" if r["agreement"] is None else f"{r['agreement']:.3f}"
        lat = "–" if r["latency_ms"] is None else f"~{r['latency_ms']:.1f}ms"
        energy = "–" if r["energy_mj"] is None else f"~{r['energy_mj']:.3f}mJ"
        _say(f"{'*' if r['pareto'] else ' '} {r['name']:16s} {acc:>6s} {r['errors']!s:>3s} "
             f"{agree:>6s} {fmt_bytes(r['model_bytes']):>9s} {fmt_bytes(r['flash_bytes']):>9s} "
             f"{fmt_bytes(r['arena_bytes']) if r['arena_bytes'] else '–':>9s} "
             f"{r['params']:6d} {r['macs']:7d} {lat:>9s} {energy:>9s} {meas.runtime:7s} "
             + ("yes" if r["fits"] else "no: " + "; ".join(r["reasons"])))
    _say("  latency basis (int8):", table.verdicts["int8 PTQ"].basis)

    # ---- the cost model against the published MLPerf Tiny reference results
    _say("\nMLPerf Tiny v0.5 reference submission, estimated vs published")
    anchor_err = {}
    for a in anchors.ANCHORS:
        blob = getattr(anchors, a["model"])()
        graph = analyze(blob)
        board = get_board(a["board"])
        est = estimate(graph, board)
        err = 100.0 * (est.latency_ms - a["published_ms"]) / a["published_ms"]
        err_mj = 100.0 * (est.energy_mj - a["published_mj"]) / a["published_mj"]
        anchor_err[a["model"]] = err
        _say(f"  {a['name']:38s} on {board.id}: {graph.macs:,} MACs (published {a['macs']:,}); "
             f"estimated {est.latency_ms:.1f} ms vs published {a['published_ms']} ms "
             f"({err:+.1f}%), {est.energy_mj:.3f} mJ vs {a['published_mj']} mJ ({err_mj:+.1f}%)")

    # ---- the int8 variant on every catalog microcontroller
    _say(f"\nint8 PTQ variant ({m['int8'].model_bytes:,} B, arena {m['int8'].arena_bytes:,} B, "
         f"{m['int8'].macs:,} MACs) on every catalog microcontroller (estimates)")
    per_board = {}
    for b in load_catalog().values():
        if b.kind != "mcu":
            continue
        v = board_verdict(m["int8"], b)
        f = board_verdict(m["float"], b)
        per_board[b.id] = v.latency_ms
        _say(f"  {b.id:14s} {b.core:11s} {b.clock_hz / 1e6:5.0f} MHz  int8 ~{v.latency_ms:7.2f} ms "
             f"~{v.energy_mj:.3f} mJ   float ~{f.latency_ms:7.1f} ms   fits: "
             + ("yes" if v.fits else "no: " + "; ".join(v.reasons)))

    f32, i8 = m["float"], m["int8"]
    _say(f"\ntimes: train float {t_train:.1f} s, make_variants {t_variants:.1f} s, "
         f"measure_all {t_measure:.1f} s")
    print(f"variants_seconds: {t_variants:.1f}")
    print(f"measure_seconds: {t_measure:.1f}")
    print(f"probe_processes_per_variant: {len(spawned) / len(variants):.2f}")
    print(f"float_accuracy: {f32.accuracy:.3f}")
    print(f"int8_accuracy: {i8.accuracy:.3f}")
    print(f"int16x8_accuracy: {m['int16x8'].accuracy:.3f}")
    print(f"dynamic_accuracy_litert: {m['dynamic'].accuracy:.3f}")
    print(f"qat_int8_accuracy: {m['qat'].accuracy:.3f}")
    print(f"pruned_int8_accuracy: {m['pruned'].accuracy:.3f}")
    print(f"clustered_int8_accuracy: {m['clustered'].accuracy:.3f}")
    print(f"distilled_int8_accuracy: {m['distilled'].accuracy:.3f}")
    print(f"int8_size_ratio_vs_float: {i8.model_bytes / f32.model_bytes:.3f}")
    print(f"int8_weight_bytes_ratio_vs_float: "
          f"{i8.graph.weight_bytes / f32.graph.weight_bytes:.3f}")
    print(f"int8_arena_bytes: {i8.arena_bytes}")
    print(f"int8_latency_ms_est_nano33ble: {per_board['nano33ble']:.1f}")
    print(f"variants_fitting_nano33ble: {sum(v.fits for v in table.verdicts.values())}"
          f"/{len(table)}")
    print(f"kws_estimate_error_pct: {anchor_err['kws_dscnn_tflite']:+.1f}")
    print(f"ad_estimate_error_pct: {anchor_err['ad_autoencoder_tflite']:+.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
