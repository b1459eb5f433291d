"""The optimize step's records are plain data: reading them never changes them."""

from __future__ import annotations

import json

import pytest

from workbench.optimize import Measurement, analyze


class WatchedMeasurement(Measurement):
    """A Measurement that fails if anything sets one of its fields once it is watched."""

    watching = False

    def __setattr__(self, name, value):
        if self.watching:
            raise AssertionError(f"to_dict set {name}={value!r}")
        object.__setattr__(self, name, value)


def measurement(sine_model: bytes, cls=Measurement) -> Measurement:
    graph = analyze(sine_model)
    return cls(name="float", kind="float", model_bytes=len(sine_model), sha256="0" * 64,
               runtime="tflite-micro", params=graph.params, macs=graph.macs, input_dtype="float32",
               accuracy=0.5, per_class={"a": {"recall": 0.5}}, confusion=[[1, 1], [0, 2]],
               warnings=["w"], device_latency={"nano33ble": {"latency_ms": 1.0}},
               graph=graph, predictions=[0, 1, 1, 1])


def test_to_dict_reads_without_setting_anything(sine_model):
    m = measurement(sine_model, WatchedMeasurement)
    object.__setattr__(m, "watching", True)
    d = m.to_dict()
    assert d["graph"] == m.graph.to_dict() and d["flash_bytes"] == m.flash_bytes
    assert "predictions" not in d and m.predictions == [0, 1, 1, 1]
    json.dumps(d)  # JSON-ready


def test_to_dict_shares_nothing_with_the_measurement(sine_model):
    m = measurement(sine_model)
    d = m.to_dict()
    d["per_class"]["a"]["recall"] = 1.0
    d["confusion"][0][0] = 99
    d["warnings"].append("more")
    d["device_latency"]["nano33ble"]["latency_ms"] = 7.0
    assert m.per_class == {"a": {"recall": 0.5}} and m.confusion == [[1, 1], [0, 2]]
    assert m.warnings == ["w"] and m.device_latency["nano33ble"]["latency_ms"] == 1.0



def test_runtimes_have_the_catalogs_names():
    from workbench.boards import RUNTIMES, load_catalog
    from workbench.train.export import check_runtime

    # every board's runtime is accepted as it is by measure() and predict_tflite()
    assert {b.runtime for b in load_catalog().values()} <= set(RUNTIMES)
    assert [check_runtime(r) for r in RUNTIMES] == list(RUNTIMES)
    with pytest.raises(ValueError, match="'tflite-micro'"):
        check_runtime("tflm")
