"""The comparison table, headless and as a widget built without a kernel."""

from __future__ import annotations

import csv
import importlib.util
import io
import sys

import pytest

from workbench.boards import UnknownBoardError, get_board
from workbench.optimize.records import Measurement
from workbench.optimize.table import CSV_FIELDS, SORT_KEYS, ComparisonTable, pareto_front

KIB = 1024
PICO_ARENA = get_board("pico").model_slots.arena_bytes          # 192 KiB
NANO_ARENA = get_board("nano33ble").model_slots.arena_bytes     # 152 KiB
ESP_EYE_ARENA = get_board("esp-eye").model_slots.arena_bytes    # 4 MiB


def m(name: str, accuracy: float | None, model_kib: float, arena_kib: float | None = 20,
      kind: str = "int8", **kw) -> Measurement:
    """A hand-made Measurement (no graph, so no latency estimate)."""
    return Measurement(name=name, kind=kind, model_bytes=int(model_kib * KIB), sha256="0" * 64,
                       runtime="tflite-micro", params=1000, macs=50_000, input_dtype="int8",
                       accuracy=accuracy,
                       arena_bytes=None if arena_kib is None else int(arena_kib * KIB), **kw)


def variants() -> list[Measurement]:
    return [
        m("float", 0.95, 40, 30, kind="float", errors=2, n_test=40),
        m("int8 PTQ", 0.925, 12, 10, errors=3, n_test=40),
        m("QAT int8", 0.95, 12, 10, kind="qat", errors=2, n_test=40),
        m("pruned", 0.90, 8, 10, kind="pruned", errors=4, n_test=40),
        m("big", 0.975, 60, 250, kind="float"),        # arena over the Pico's 192 KiB
        m("dynamic", 0.95, 11, None, kind="dynamic", unsupported_ops=["FULLY_CONNECTED (hybrid)"]),
    ]


def test_catalog_numbers_the_tests_rely_on():
    assert NANO_ARENA < PICO_ARENA < 250 * KIB < ESP_EYE_ARENA


# ---------------------------------------------------------------- pareto
def test_pareto_front_function_definition_of_ties():
    pts = [("a", 10, 0.9), ("b", 10, 0.9), ("c", 10, 0.8), ("d", 5, 0.7), ("e", 20, 0.9),
           ("f", 30, 0.95)]
    # a and b are the same point: both kept; c (same x, lower y) and e (same y, larger x) are not
    assert pareto_front(pts) == ["d", "a", "b", "f"]
    assert pareto_front([]) == []


def test_pareto_on_flash_only_among_variants_that_fit():
    table = ComparisonTable(variants(), "pico")
    # QAT int8 dominates int8 PTQ (same size, more accurate); float is dominated by QAT int8;
    # big is the most accurate but does not fit; dynamic does not fit (no TFLM kernel)
    assert table.pareto("flash_bytes") == ["pruned", "QAT int8"]
    assert table.pareto() == table.pareto("flash_bytes")   # the default axis
    rows = {r["name"]: r for r in table.rows()}
    assert [n for n, r in rows.items() if r["pareto"]] == ["QAT int8", "pruned"]
    assert not rows["big"]["fits"] and not rows["big"]["pareto"]
    # on a board where big fits, it joins the front (most accurate, larger)
    table.board = "esp-eye"
    assert table.pareto("flash_bytes") == ["pruned", "QAT int8", "big"]


def test_a_classifier_at_chance_is_never_on_the_front():
    # four classes: 25 % is what guessing scores; the tiny student is smallest but not a trade-off
    four = [[1, 1, 1, 1]] * 4
    rows = variants()[:4] + [m("student", 0.25, 2, 4, kind="distilled", confusion=four),
                             m("weak", 0.30, 3, 4, kind="distilled", confusion=four)]
    table = ComparisonTable(rows, "pico")
    assert "student" not in table.pareto("flash_bytes")
    assert table.pareto("flash_bytes")[0] == "weak"          # better than chance: a trade-off
    flags = {r["name"]: r["pareto"] for r in table.rows()}
    assert flags["student"] is False and flags["weak"] is True
    assert "student" not in table.pareto("arena_bytes")


def test_pareto_ties_and_unknown_values():
    table = ComparisonTable([m("a", 0.9, 10, 10), m("b", 0.9, 10, 10), m("c", None, 1, 1),
                             m("d", 0.9, 10, 5)], "pico")
    # a and b tie on flash: both on the front; c has no accuracy: never on it
    assert table.pareto("flash_bytes") == ["a", "b", "d"]
    # on arena d (5 KiB) dominates both a and b (10 KiB, same accuracy)
    assert table.pareto("arena_bytes") == ["d"]
    # no latency without an op analysis: an empty front, not an error
    assert table.pareto("latency_ms") == []


def test_pareto_rejects_unknown_axes():
    table = ComparisonTable(variants(), "pico")
    with pytest.raises(ValueError, match="flash_bytes, arena_bytes, latency_ms"):
        table.pareto("accuracy")
    with pytest.raises(ValueError, match="accuracy, agreement"):
        table.pareto("flash_bytes", y="model_bytes")
    with pytest.raises(ValueError, match="x must be one of"):
        table.axis = "speed"


# ---------------------------------------------------------------- boards
def test_board_change_flips_fits_and_reasons():
    table = ComparisonTable([m("tight", 0.9, 20, 170)], "pico")   # arena 170 KiB
    seen = []
    table.observe(seen.append)
    assert table.verdicts["tight"].fits
    table.board = "nano33ble"                                      # 152 KiB for the arena
    (verdict,) = table.verdicts.values()
    assert not verdict.fits and verdict.board_id == "nano33ble"
    assert "arena 170.0 KiB > 152.0 KiB" in verdict.reasons[0]
    assert table.rows()[0]["reasons"] == verdict.reasons
    table.board = get_board("pico")                                # a Board works too
    assert table.rows()[0]["fits"] and table.rows()[0]["board"] == "pico"
    assert seen == ["board", "board"]
    table.board = "pico"                                           # no change, no event
    assert seen == ["board", "board"]


def test_too_big_for_the_pico_fits_the_esp_eye():
    table = ComparisonTable(variants(), "pico")
    assert not table.row("big")["fits"]
    assert "192.0 KiB of RAM left for the arena" in table.row("big")["reasons"][0]
    table.board = "esp-eye"
    assert table.row("big")["fits"] and table.row("big")["reasons"] == []


def test_unknown_board_lists_the_valid_ids():
    with pytest.raises(UnknownBoardError, match="valid ids: .*pico"):
        ComparisonTable(variants(), "pico2")
    table = ComparisonTable(variants(), "pico")
    with pytest.raises(UnknownBoardError, match="did you mean 'pico'"):
        table.board = "picoo"
    assert table.board.id == "pico"


def test_names_must_be_unique_and_add_evaluates():
    table = ComparisonTable([], "pico")
    table.add(m("a", 0.9, 10))
    assert table.verdicts["a"].fits and len(table) == 1
    with pytest.raises(ValueError, match="already in the table"):
        table.add(m("a", 0.8, 5))
    with pytest.raises(TypeError, match="Measurement"):
        table.add({"name": "b"})
    with pytest.raises(KeyError, match="variants: 'a'"):
        table.row("zz")


def test_reference_gives_deltas():
    table = ComparisonTable(variants(), "pico", reference="float")
    r = table.row("int8 PTQ")
    assert r["accuracy_delta"] == pytest.approx(-0.025) and r["size_ratio"] == pytest.approx(0.3)
    assert table.row("float")["reference"] and not r["reference"]
    assert "Δ vs ref" in table.to_html()
    assert "Δ vs ref" not in ComparisonTable(variants(), "pico").to_html()
    with pytest.raises(KeyError, match="no variant named"):
        ComparisonTable(variants(), "pico", reference="fp32")


# ---------------------------------------------------------------- sorting
def test_sort_is_stable_and_puts_unknown_last():
    table = ComparisonTable(variants(), "pico")
    assert [r["name"] for r in table.rows()] == [v.name for v in variants()]  # order added
    table.sort("accuracy", descending=True)
    assert [r["name"] for r in table.rows()] == ["big", "float", "QAT int8", "dynamic",
                                                 "int8 PTQ", "pruned"]
    table.sort("accuracy")
    assert [r["name"] for r in table.rows()] == ["pruned", "int8 PTQ", "float", "QAT int8",
                                                 "dynamic", "big"]
    table.sort("arena_bytes")           # dynamic has no arena: last both ways
    assert table.rows()[-1]["name"] == "dynamic"
    assert table.sort("arena_bytes", descending=True).rows()[-1]["name"] == "dynamic"
    assert table.sort("name").rows()[0]["name"] == "big"      # case-insensitive
    assert [r["fits"] for r in table.sort("fits").rows()][:2] == [False, False]
    table.sort(None)
    assert [r["name"] for r in table.rows()] == [v.name for v in variants()]


def test_unknown_sort_key_lists_the_valid_ones():
    table = ComparisonTable(variants(), "pico")
    with pytest.raises(ValueError, match="valid keys: name, kind, accuracy"):
        table.sort("size")
    assert "latency_ms" in SORT_KEYS and table.sort_key is None


# ---------------------------------------------------------------- exports
def test_csv_round_trips_through_the_csv_module(tmp_path):
    table = ComparisonTable(variants(), "pico", reference="float").sort("model_bytes")
    text = table.to_csv(tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text(encoding="utf-8") == text
    with open(tmp_path / "t.csv", newline="", encoding="utf-8") as fh:
        back = list(csv.DictReader(fh))
    assert tuple(back[0]) == CSV_FIELDS
    rows = table.rows()
    assert [b["name"] for b in back] == [r["name"] for r in rows]
    for b, r in zip(back, rows):
        assert int(b["model_bytes"]) == r["model_bytes"]
        assert int(b["flash_bytes"]) == r["flash_bytes"]
        assert b["fits"] == ("true" if r["fits"] else "false")
        assert b["pareto"] == ("true" if r["pareto"] else "false")
        assert b["reasons"] == "; ".join(r["reasons"])
        assert (float(b["accuracy"]) if b["accuracy"] else None) == r["accuracy"]
        assert (int(b["arena_bytes"]) if b["arena_bytes"] else None) == r["arena_bytes"]
        assert b["latency_ms"] == "" and b["board"] == "pico"
    big = next(b for b in back if b["name"] == "big")
    assert big["fits"] == "false" and "arena" in big["reasons"]


def test_html_marks_pareto_and_greys_non_fitting_rows_with_the_reason(tmp_path):
    table = ComparisonTable(variants() + [m("<script>", 0.5, 1)], "pico")
    page = table.to_html(tmp_path / "t.html")
    assert (tmp_path / "t.html").read_text(encoding="utf-8") == page
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert "<script" not in page.replace("&lt;script&gt;", "")  # self-contained, escaped
    assert '<tr class="wb-nofit" data-name="big"' in page
    assert "arena 250.0 KiB &gt; 192.0 KiB of RAM left for the arena" in page
    assert '<tr class="wb-pareto" data-name="QAT int8"' in page
    assert "TFLite Micro has no kernel for FULLY_CONNECTED (hybrid)" in page
    assert ".wb-compare tr.wb-nofit td, .wb-compare td.wb-nofit { color: #8a8a8a" in page


def test_dataframe():
    pytest.importorskip("pandas")
    df = ComparisonTable(variants(), "pico").to_dataframe()
    assert list(df.index)[:2] == ["float", "int8 PTQ"] and not df.loc["big", "fits"]


def test_importing_the_table_is_light():
    code = ("import sys, workbench.optimize.table as t; "
            "print(sorted(m for m in ('plotly', 'tensorflow', 'pandas', 'ipywidgets') "
            "if m in sys.modules))")
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------- chart
@pytest.mark.skipif(importlib.util.find_spec("plotly") is None, reason="needs plotly")
def test_figure_greys_non_fitting_points_and_draws_the_front():
    table = ComparisonTable(variants(), "pico", reference="float")
    fig = table.figure(x="arena_bytes")
    traces = {tr.name: tr for tr in fig.data}
    assert set(traces) == {"Pareto front", "Pareto-optimal", "fits", "does not fit"}
    # dynamic has no arena: left out and counted in the title
    assert "1 not shown" in fig.layout.title.text
    nofit = traces["does not fit"]
    assert list(nofit.text) == ["big"] and nofit.marker.color == "#9e9e9e"
    assert "does not fit pico" in nofit.hovertext[0] and "arena 250.0 KiB" in nofit.hovertext[0]
    assert list(traces["Pareto-optimal"].text) == ["QAT int8"]   # 10 KiB arena, 95 %
    assert fig.layout.xaxis.title.text == "arena (KiB)"
    assert list(traces["Pareto-optimal"].x) == [10.0] and list(traces["Pareto-optimal"].y) == [95.0]
    assert table.figure().layout.xaxis.title.text == "flash (KiB)"
    assert "latency" in table.figure(x="latency_ms").layout.title.text


# ---------------------------------------------------------------- the widget
@pytest.fixture
def widget(tmp_path):
    pytest.importorskip("anywidget")
    pytest.importorskip("plotly")
    from workbench.ui import CompareTable

    table = ComparisonTable(variants(), "pico")
    view = CompareTable(table, folder=tmp_path / "out")
    yield view
    view.close()


def test_widget_board_dropdown_reevaluates_rows(widget):
    assert "pico" in [v for _, v in widget.board.options]
    assert len(widget.board.options) >= 10                     # every catalog board
    assert '<tr class="wb-nofit" data-name="big"' in widget.view.html
    widget.board.value = "esp-eye"                             # what choosing it does
    assert widget.table.board.id == "esp-eye"
    assert widget.table.row("big")["fits"]
    assert 'data-name="big"' in widget.view.html
    assert '<tr class="wb-nofit" data-name="big"' not in widget.view.html
    assert "Pareto front" in [tr.name for tr in widget.figure.data]
    plot = widget.chart.outputs[0]["data"]["application/vnd.plotly.v1+json"]
    assert plot["layout"]["title"]["text"].endswith("on ESP-EYE")
    assert widget.summary.value.startswith("ESP-EYE: 5 of 6 variants fit")
    # driven from Python, the widget follows
    widget.table.board = "nano33ble"
    assert widget.board.value == "nano33ble"


def test_widget_header_click_sorts(widget):
    # what compare.js does on a click on the "accuracy" header
    widget.view.set_state({"sort_key": "accuracy", "descending": True})
    assert widget.table.sort_key == "accuracy" and widget.table.descending
    names = [r["name"] for r in widget.table.rows()]
    html = widget.view.html
    assert html.index('data-name="big"') < html.index('data-name="pruned"')
    assert names[0] == "big" and 'aria-sort="descending"' in html
    widget.table.sort("name")                                  # from Python
    assert widget.view.sort_key == "name" and not widget.view.descending
    widget.view.set_state({"sort_key": "nonsense"})
    assert "valid keys" in widget.status.value and widget.view.sort_key == "name"


def test_widget_axis_dropdown_redraws_the_chart(widget):
    widget.axis.value = "arena_bytes"
    assert widget.table.axis == "arena_bytes"
    assert widget.figure.layout.xaxis.title.text == "arena (KiB)"
    assert "accuracy against arena" in widget.summary.value


def test_widget_export_buttons_write_files(widget, tmp_path):
    widget.csv_button.click()
    widget.html_button.click()
    out = tmp_path / "out"
    rows = list(csv.DictReader(io.StringIO((out / "comparison.csv").read_text())))
    assert len(rows) == len(widget.table)
    assert "wb-nofit" in (out / "comparison.html").read_text()
    assert "comparison.html" in widget.status.value
    widget.folder = tmp_path / "file"
    (tmp_path / "file").write_text("not a folder")
    assert widget.export_csv() is None and "could not write" in widget.status.value


def test_widget_from_bare_measurements():
    pytest.importorskip("anywidget")
    pytest.importorskip("plotly")
    from workbench.ui.compare import CompareTable

    view = CompareTable(variants(), "esp-eye")
    try:
        assert view.table.board.id == "esp-eye" and view.board.value == "esp-eye"
    finally:
        view.close()


# ---------------------------------------------------------------- a real measured model
@pytest.fixture(scope="module")
def measured():
    """A tiny tf_keras model converted to float and int8 and measured for real."""
    pytest.importorskip("tf_keras")
    pytest.importorskip("workbench.optimize.latency")
    import numpy as np

    from workbench.optimize.measuring import measure
    from workbench.train.export import to_tflite
    from workbench.train.tf_runtime import keras

    k = keras()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(240, 32, 3)).astype(np.float32)
    y = (X[:, :, 0].mean(axis=1) > 0).astype(np.int64)
    model = k.Sequential([k.layers.Input((32, 3)), k.layers.Conv1D(8, 3, activation="relu"),
                          k.layers.Flatten(), k.layers.Dense(32, activation="relu"),
                          k.layers.Dense(2, activation="softmax")])   # ~8k weights
    # trained, so that it beats chance (a model at chance is never on a Pareto front)
    k.utils.set_random_seed(0)
    model.compile(optimizer=k.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    model.fit(X[:200], y[:200], epochs=30, verbose=0)
    data = (X[200:], y[200:], ["low", "high"])
    out = []
    for name, quantize in (("float", "float"), ("int8", "int8")):
        blob = to_tflite(model, quantize=quantize,
                         representative=X[:32] if quantize == "int8" else None)
        mm = measure(blob, data, name=name)
        mm.kind = quantize
        out.append(mm)
    return out


@pytest.mark.slow
def test_a_measured_model_gets_estimates_and_follows_the_board(measured):
    import dataclasses

    from workbench.boards import load_catalog

    float_m, int8_m = measured
    assert float_m.graph is not None and int8_m.model_bytes < float_m.model_bytes
    table = ComparisonTable(measured, "nano33ble", reference="float")
    rows = {r["name"]: r for r in table.rows()}
    for r in rows.values():
        assert r["fits"], r["reasons"]
        assert r["latency_ms"] > 0 and r["latency_source"] == "estimate" and r["latency_basis"]
        assert r["arena_bytes"] > 0 and r["accuracy"] is not None
    nano_latency = rows["int8"]["latency_ms"]
    fastest = min(r["latency_ms"] for r in rows.values())
    assert table.pareto("latency_ms")
    assert table.sort("latency_ms").rows()[0]["latency_ms"] == fastest
    fig = table.figure(x="latency_ms")
    assert sum(len(tr.x) for tr in fig.data if tr.mode == "markers") == 2
    table.board = "esp32-devkitc"
    assert table.row("int8")["latency_ms"] != nano_latency   # another core, another estimate
    # a board with less RAM for the arena than the int8 model needs: it does not fit
    catalog = load_catalog()
    small = catalog["nano33ble"]
    slots = dataclasses.replace(small.model_slots, arena_bytes=int8_m.arena_bytes - 16)
    small = dataclasses.replace(small, id="tiny", name="tiny board", model_slots=slots)
    catalog["tiny"] = small
    table = ComparisonTable(measured, "tiny", catalog=catalog)
    assert not table.row("int8")["fits"]
    assert "of RAM left for the arena" in table.row("int8")["reasons"][-1]
    assert "wb-nofit" in table.to_html()
