"""The latency/energy cost model: the two published MLPerf Tiny anchors, monotonicity,
every catalog board, core and number-format differences, kernel code size."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from workbench.boards.catalog import (
    KERNELS,
    ActivePower,
    CodeDensity,
    WeightMemory,
    get_board,
    load_catalog,
)
from workbench.optimize.anchors import ANCHORS, ad_autoencoder_tflite, kws_dscnn_tflite
from workbench.optimize.graph import analyze
from workbench.optimize.latency import (
    LatencyEstimate,
    estimate,
    kernel_code_bytes,
)

# Most tests here use models converted with TensorFlow (module fixtures of about ten
# seconds).
pytestmark = pytest.mark.slow

DOC = "docs/latency-model.md"
ANCHOR_TOLERANCE = 0.30


@pytest.fixture(scope="module")
def anchor_graphs():
    return {"kws_dscnn_tflite": analyze(kws_dscnn_tflite()),
            "ad_autoencoder_tflite": analyze(ad_autoencoder_tflite())}


def _dense(width: int, quantize: str = "int8") -> bytes:
    from workbench.train.export import to_tflite
    from workbench.train.tf_runtime import keras

    k = keras()
    inp = k.Input(shape=(32,))
    x = k.layers.Dense(width, activation="relu")(inp)
    out = k.layers.Dense(8)(x)
    model = k.Model(inp, out)
    rep = np.random.default_rng(0).normal(size=(16, 32)).astype(np.float32)
    if quantize == "int8":
        return to_tflite(model, quantize="int8", representative=rep)
    return to_tflite(model, quantize=quantize)


@pytest.fixture(scope="module")
def widths():
    return {w: analyze(_dense(w)) for w in (8, 64, 512)}


@pytest.fixture(scope="module")
def dense_float_int8():
    return analyze(_dense(256, "float")), analyze(_dense(256, "int8"))


# --------------------------------------------------------------------------------------
# The published anchors
# --------------------------------------------------------------------------------------


def test_anchor_board_is_in_the_catalog():
    for a in ANCHORS:
        board = get_board(a["board"])
        assert board.core == "Cortex-M4F" and board.clock_hz == 120_000_000
        assert a["published_ms"] > 0 and "MLPerf Tiny" in a["source"]


def test_kws_anchor_has_the_published_mac_count(anchor_graphs):
    g = anchor_graphs["kws_dscnn_tflite"]
    assert g.macs == 2_656_768  # "2.66 M MACs"
    assert g.op_counts == {"CONV_2D": 5, "DEPTHWISE_CONV_2D": 4, "AVERAGE_POOL_2D": 1,
                           "FULLY_CONNECTED": 1, "SOFTMAX": 1}
    assert anchor_graphs["ad_autoencoder_tflite"].macs == 264_192
    for a in ANCHORS:
        assert anchor_graphs[a["model"]].macs == a["macs"]


@pytest.mark.parametrize("anchor", ANCHORS, ids=[a["model"] for a in ANCHORS])
def test_anchor_latency_within_tolerance(anchor_graphs, anchor):
    est = estimate(anchor_graphs[anchor["model"]], get_board(anchor["board"]))
    err = est.latency_ms / anchor["published_ms"] - 1
    assert abs(err) < ANCHOR_TOLERANCE, (
        f"{anchor['name']}: estimated {est.latency_ms:.2f} ms, published "
        f"{anchor['published_ms']} ms ({err:+.0%})\n"
        + "\n".join(f"  {o.index:2d} {o.op:20s} {o.macs:9d} MACs {o.cycles:12.0f} cycles"
                    for o in est.per_op))
    # The energy follows the latency and the board's (measured) active power.
    e_err = est.energy_mj / anchor["published_mj"] - 1
    assert abs(e_err) < ANCHOR_TOLERANCE, f"energy {est.energy_mj:.3f} mJ ({e_err:+.0%})"
    assert est.kernels == "reference"


# --------------------------------------------------------------------------------------
# Shape of the model
# --------------------------------------------------------------------------------------


def test_every_catalog_board_gets_an_estimate(anchor_graphs):
    g = anchor_graphs["kws_dscnn_tflite"]
    for board in load_catalog().values():
        est = estimate(g, board)
        assert isinstance(est, LatencyEstimate)
        assert est.board_id == board.id and est.core == board.core
        assert est.clock_hz == board.clock_hz
        for v in (est.cycles, est.latency_ms, est.energy_mj, est.power_mw):
            assert math.isfinite(v) and v > 0, (board.id, est)
        assert len(est.per_op) == len(g.ops)
        assert est.cycles >= sum(o.cycles for o in est.per_op)
        assert est.latency_ms == pytest.approx(est.cycles / board.clock_hz * 1e3)
        assert est.energy_mj == pytest.approx(est.latency_ms * est.power_mw / 1e3)
        assert est.basis.endswith(f"see {DOC}") and est.basis.count(". ") == 0
        assert est.kernels == ("xnnpack" if board.kind == "linux" else "reference")
        if board.kind == "linux":
            assert "LiteRT" in est.basis
        d = est.to_dict()
        assert d["per_op"][0]["op"] == "CONV_2D"


def test_monotonic_in_macs(widths):
    order = sorted(widths)
    macs = [widths[w].macs for w in order]
    assert macs == sorted(macs) and len(set(macs)) == len(macs)
    for board in load_catalog().values():
        lat = [estimate(widths[w], board).latency_ms for w in order]
        assert lat == sorted(lat) and len(set(lat)) == len(lat), (board.id, lat)


def test_monotonic_in_clock(anchor_graphs):
    for board in load_catalog().values():
        for g in anchor_graphs.values():
            lat = [estimate(g, dataclasses.replace(board, clock_hz=int(board.clock_hz * s)))
                   .latency_ms for s in (0.25, 0.5, 1.0, 1.5)]
            assert all(a > b for a, b in zip(lat, lat[1:])), (board.id, lat)


def test_cortex_m0plus_slower_than_m4f_at_the_same_clock(anchor_graphs):
    nucleo = get_board("nucleo-l4r5zi")
    m0 = dataclasses.replace(nucleo, core="Cortex-M0+", fpu=False)
    pico, nano = get_board("pico"), get_board("nano33ble")
    nano_at_pico_clock = dataclasses.replace(nano, clock_hz=pico.clock_hz)
    for g in anchor_graphs.values():
        assert estimate(g, m0).latency_ms > 1.5 * estimate(g, nucleo).latency_ms
        assert estimate(g, pico).latency_ms > estimate(g, nano_at_pico_clock).latency_ms


def test_float_costs_more_and_much_more_without_fpu(dense_float_int8):
    g_float, g_int8 = dense_float_int8
    assert g_float.macs == g_int8.macs
    m4 = get_board("nucleo-l4r5zi")
    pico = get_board("pico")
    m4_ratio = estimate(g_float, m4).latency_ms / estimate(g_int8, m4).latency_ms
    m0_ratio = estimate(g_float, pico).latency_ms / estimate(g_int8, pico).latency_ms
    # An M4F's single-precision FPU keeps float close to int8 (fewer requantizations,
    # more weight bytes); the M0+ has only soft float.
    assert 0.7 < m4_ratio < 3.0, m4_ratio
    assert m0_ratio > 5.0, m0_ratio
    # The same board with its FPU removed pays the soft-float price.
    m4_soft = dataclasses.replace(m4, fpu=False)
    assert estimate(g_float, m4_soft).latency_ms > 5 * estimate(g_float, m4).latency_ms
    assert estimate(g_int8, m4_soft).latency_ms == pytest.approx(
        estimate(g_int8, m4).latency_ms)


def test_linux_boards_are_much_faster_per_inference(anchor_graphs):
    g = anchor_graphs["kws_dscnn_tflite"]
    rpi = estimate(g, get_board("rpi4"))
    m4 = estimate(g, get_board("nucleo-l4r5zi"))
    assert rpi.latency_ms < m4.latency_ms / 50
    assert "XNNPACK" in rpi.basis and "not calibrated" in rpi.basis


def test_estimates_name_their_kernels_as_the_catalog_does(anchor_graphs):
    g = anchor_graphs["ad_autoencoder_tflite"]
    for board in load_catalog().values():
        assert estimate(g, board).kernels in KERNELS


def test_board_figures_come_from_the_board(anchor_graphs):
    g = anchor_graphs["kws_dscnn_tflite"]
    nucleo = get_board("nucleo-l4r5zi")
    base = estimate(g, nucleo)
    # The catalog's active power, scaled only by the clock: twice the power, twice the energy.
    doubled = dataclasses.replace(nucleo, active_power=ActivePower(
        2 * nucleo.active_power.mw, nucleo.active_power.clock_hz, "assumed: test"))
    est = estimate(g, doubled)
    assert est.latency_ms == base.latency_ms
    assert est.energy_mj == pytest.approx(2 * base.energy_mj)
    assert "assumed: test" in est.basis
    # Weights in zero-wait SRAM instead of flash with 5 wait states: fewer cycles.
    sram = dataclasses.replace(nucleo, weight_memory=WeightMemory("sram", "assumed: test"))
    assert estimate(g, sram).cycles < base.cycles
    # Code density scales the kernel code size.
    ops = list(g.op_counts)
    dense = dataclasses.replace(nucleo, code_density=CodeDensity(2.0, "assumed: test"))
    assert kernel_code_bytes(ops, dense) == pytest.approx(2 * kernel_code_bytes(ops, nucleo),
                                                          abs=1024)


def test_board_without_figures_gets_core_defaults_marked_assumed(anchor_graphs):
    g = anchor_graphs["ad_autoencoder_tflite"]
    bare = dataclasses.replace(get_board("nano33ble"), id="my-board", weight_memory=None,
                               active_power=None, code_density=None)
    est = estimate(g, bare)
    assert math.isfinite(est.latency_ms) and est.latency_ms > 0 and est.energy_mj > 0
    assert "assumed" in est.basis
    assert kernel_code_bytes(["CONV_2D"], bare) == kernel_code_bytes(
        ["CONV_2D"], get_board("nano33ble"))   # Cortex-M4F: Thumb-2 either way


def test_zero_clock_is_rejected(anchor_graphs):
    board = dataclasses.replace(get_board("pico"), clock_hz=0)
    with pytest.raises(ValueError, match="clock_hz"):
        estimate(anchor_graphs["ad_autoencoder_tflite"], board)


def test_unknown_core_still_estimated_and_says_so(anchor_graphs):
    board = dataclasses.replace(get_board("nucleo-l4r5zi"), id="my-board", core="RISC-V E24")
    est = estimate(anchor_graphs["ad_autoencoder_tflite"], board)
    assert est.latency_ms > 0 and "unknown core" in est.basis


# --------------------------------------------------------------------------------------
# Kernel code size
# --------------------------------------------------------------------------------------


def test_kernel_code_bytes():
    m4 = get_board("nucleo-l4r5zi")
    fc_only = kernel_code_bytes(["FULLY_CONNECTED"], m4)
    kws_ops = ["CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "FULLY_CONNECTED", "SOFTMAX"]
    kws = kernel_code_bytes(kws_ops, m4)
    assert 20 * 1024 < fc_only < kws < 100 * 1024
    assert kernel_code_bytes(kws_ops * 3, m4) == kws  # each kernel is linked once
    assert kernel_code_bytes({op: 2 for op in kws_ops}, m4) == kws  # op_counts works
    assert fc_only % 1024 == 0
    # Thumb-1 (M0+, plus soft float) and Xtensa code is bigger than Thumb-2.
    assert kernel_code_bytes(kws_ops, get_board("pico")) > kws
    assert kernel_code_bytes(kws_ops, get_board("esp32-devkitc")) > kws
    assert kernel_code_bytes(["CUSTOM:my_op"], m4) > kernel_code_bytes([], m4)
    # Linux boards carry a whole LiteRT runtime whatever the ops.
    rpi = get_board("rpi4")
    assert kernel_code_bytes(kws_ops, rpi) == kernel_code_bytes(["ADD"], rpi) > 1 << 20
