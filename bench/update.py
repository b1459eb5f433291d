"""Model updates: how close a full update comes to the line rate, and how small a delta is.

1. Throughput: ``workbench.deploy.deploy_model`` (gates, host image check, upload with chunks
   in flight, verify, commit) sends an int8 model to a virtual Nano 33 BLE Sense at 115200 and
   921600 baud. Two figures, each as a fraction of the line rate (baud / 10 bytes/s, the pace
   the virtual board keeps in the same run): the whole update (image bytes / seconds from the
   host check to the commit) and the transfer alone (bytes acknowledged between the first and
   the last acknowledgement). The time from "deploy" to a running, committed model (gates
   included) is printed too, and the time of a *test* switch that the board confirms after its
   self-test (the head-only retrain sent as an update image with its manifest, full route).
2. Delta size: an ``imu_cnn`` "s" model is trained on BasicMotions and exported as int8 (v1);
   then (a) only its classifier head is retrained, (b) every layer is fine-tuned, each on the
   same data with another seed, and exported with the same calibration windows. The patch from
   v1 to each is made with two PyPI binary-delta libraries: ``detools`` (sequential bsdiff
   patch, heatshrink-compressed: what a small C patcher applies while streaming into a slot)
   and ``bsdiff4``. Sizes are fractions of the new full image. Patches are applied back and
   compared byte for byte.
3. Delta updates end to end (docs/protocol.md 7.5): a virtual Nano 33 BLE Sense at 115200 baud
   runs v1; ``Device.upload_model(new, delta="auto", base=v1)`` sends the patch, the board
   rebuilds the image from its active slot, verifies and commits it. Measured: every byte the
   host wrote to the port during the update (framing, SLOT_STATUS, MODEL_BEGIN/END/COMMIT
   included) as a fraction of the new image, and the seconds from the call to the committed
   model; beside them the same figures for a full upload of the same image to a board running
   v1. The slot's bytes are compared with the new image.

Run: ``python bench/update.py`` (about 3 minutes on 2 cores). Headline figures last.
"""

from __future__ import annotations

import io
import sys
import tempfile
import time
from pathlib import Path


def _patch_sizes(old: bytes, new: bytes) -> dict[str, int]:
    import bsdiff4
    import detools

    sizes = {}
    for compression in ("heatshrink", "lzma"):
        fpatch = io.BytesIO()
        detools.create_patch(io.BytesIO(old), io.BytesIO(new), fpatch, compression=compression,
                             patch_type="sequential")
        patch = fpatch.getvalue()
        out = io.BytesIO()
        detools.apply_patch(io.BytesIO(old), io.BytesIO(patch), out)
        assert out.getvalue() == new, f"detools {compression} patch does not rebuild the image"
        sizes[f"detools_{compression}"] = len(patch)
    patch = bsdiff4.diff(old, new)
    assert bsdiff4.patch(old, patch) == new, "bsdiff4 patch does not rebuild the image"
    sizes["bsdiff4"] = len(patch)
    return sizes


def _update(old: bytes, new: bytes, baud: int, delta: bool) -> tuple[int, float, str]:
    """(bytes written to the port, seconds, route) of updating a board running ``old`` to
    ``new``, with a delta (``"auto"``) or the full image; the slot is checked byte for byte."""
    from workbench.link import open_device
    from workbench.sim.flash import trailer_bytes

    with tempfile.TemporaryDirectory() as tmp, \
            open_device(f"sim://nano33ble?baud={baud}&flash={tmp}/b.flash") as dev:
        dev.upload_model(old, name="v1")
        plans: list = []
        before = dev.session.stats.bytes_tx
        t0 = time.perf_counter()
        slot = dev.upload_model(new, name="v2", delta="auto" if delta else False,
                                base=old, on_plan=plans.append)
        seconds = time.perf_counter() - t0
        sent = dev.session.stats.bytes_tx - before
        with open(Path(tmp) / "b.flash", "rb") as f:
            # slot i's area starts at i * (slot_bytes + its trailer): docs/protocol.md 7.4
            f.seek(slot.index * (dev.info.slot_bytes + trailer_bytes(dev.info.slot_bytes)))
            assert f.read(len(new)) == new, "the slot does not hold the new image"
    return sent, seconds, plans[-1].kind


def main() -> int:
    from workbench.data.formats import example_dataset
    from workbench.deploy import deploy_model
    from workbench.link import open_device
    from workbench.train.export import to_tflite
    from workbench.train.fit import TrainConfig, TrainingData, train
    from workbench.train.tf_runtime import keras
    from workbench.train.zoo import imu_cnn

    with tempfile.TemporaryDirectory() as tmp:
        ds = example_dataset("basicmotions", Path(tmp) / "bm")
        data = TrainingData.from_dataset(ds, length=100, predefined="split", val=0.2, seed=0)
    shape, k = data.input_shape, data.n_classes
    calib = data.X_train

    v1 = train(lambda: imu_cnn(shape, k, "s"), data, TrainConfig(epochs=60, patience=12, seed=0))
    old = to_tflite(v1.model, quantize="int8", representative=calib)

    def retrained(head_only: bool, seed: int) -> bytes:
        model = keras().models.clone_model(v1.model)
        model.set_weights(v1.model.get_weights())
        # the classifier head is the last layer with weights (the zoo's Dense "head"; the
        # layer after it, Softmax, has none: training only it would change nothing)
        head_layer = [layer for layer in model.layers if layer.weights][-1]
        for layer in model.layers:
            layer.trainable = (not head_only) or layer is head_layer
        res = train(model, data, TrainConfig(epochs=15, patience=15, seed=seed,
                                             learning_rate=1e-3))
        return to_tflite(res.model, quantize="int8", representative=calib)

    head = retrained(head_only=True, seed=1)
    full = retrained(head_only=False, seed=2)
    deltas = {"head": _patch_sizes(old, head), "full": _patch_sizes(old, full)}
    same = {name: sum(a == b for a, b in zip(old, new)) / len(new)
            for name, new in (("head", head), ("full", full))}

    rates, wire, click, confirmed = {}, {}, {}, {}
    for baud in (115200, 921600):
        with tempfile.TemporaryDirectory() as tmp, \
                open_device(f"sim://nano33ble?baud={baud}&flash={tmp}/b.flash") as dev:
            acks: list[tuple[float, int]] = []
            t0 = time.perf_counter()
            res = deploy_model(old, dev, name="bench",
                               progress=lambda sent, _total, acks=acks: acks.append(
                                   (time.perf_counter(), sent)))
            click[baud] = time.perf_counter() - t0
            rates[baud] = len(old) / res.upload_seconds / (baud / 10)
            # the transfer alone: bytes acknowledged between the first and the last ack
            (t_a, b_a), (t_b, b_b) = acks[0], acks[-1]
            wire[baud] = (b_b - b_a) / (t_b - t_a) / (baud / 10)
            # a test switch: the image carries its manifest; the board self-tests and confirms
            t0 = time.perf_counter()
            res = deploy_model(head, dev, name="bench", test=True, delta=False)
            confirmed[baud] = time.perf_counter() - t0
            assert res.slot.state.name == "ACTIVE", "the board did not confirm the test switch"

    e2e = {(name, how): _update(old, new, 115200, how == "delta")
           for name, new in (("head", head), ("full", full)) for how in ("delta", "full")}

    print(f"image: {len(old):,} B int8 (v1); head-only retrain {len(head):,} B, "
          f"{same['head']:.1%} of bytes unchanged in place; full fine-tune {len(full):,} B, "
          f"{same['full']:.1%} unchanged")
    for name, sizes in deltas.items():
        new = head if name == "head" else full
        print(f"{name:4s}: " + ", ".join(f"{k} {v:,} B ({v / len(new):.3f})"
                                        for k, v in sizes.items()))
    for baud in rates:
        print(f"{baud} baud: whole update (host check, transfer, verify, commit) at "
              f"{rates[baud]:.3f} of the line rate, the transfer alone at {wire[baud]:.3f}; "
              f"{click[baud]:.2f} s from deploy to a committed model (gates included)")
    for (name, how), (sent, seconds, route) in e2e.items():
        new = head if name == "head" else full
        print(f"{name:4s} retrain, {how:5s} update at 115200 baud: {sent:,} B on the wire "
              f"({sent / len(new):.3f} of the image), {seconds:.2f} s to a committed model, "
              f"route {route}")
    print(f"update_fraction_of_line_rate_115200: {rates[115200]:.3f}")
    print(f"update_fraction_of_line_rate_921600: {rates[921600]:.3f}")
    print(f"transfer_fraction_of_line_rate_115200: {wire[115200]:.3f}")
    print(f"transfer_fraction_of_line_rate_921600: {wire[921600]:.3f}")
    print(f"seconds_deploy_to_committed_115200: {click[115200]:.2f}")
    print(f"seconds_deploy_to_committed_921600: {click[921600]:.2f}")
    print(f"seconds_deploy_to_self_tested_and_confirmed_115200: {confirmed[115200]:.2f}")
    print(f"seconds_deploy_to_self_tested_and_confirmed_921600: {confirmed[921600]:.2f}")
    print(f"delta_fraction_head_only_detools_heatshrink: "
          f"{deltas['head']['detools_heatshrink'] / len(head):.3f}")
    print(f"delta_fraction_head_only_bsdiff4: {deltas['head']['bsdiff4'] / len(head):.3f}")
    print(f"delta_fraction_full_retrain_detools_heatshrink: "
          f"{deltas['full']['detools_heatshrink'] / len(full):.3f}")
    print(f"delta_fraction_full_retrain_bsdiff4: {deltas['full']['bsdiff4'] / len(full):.3f}")
    for name, new in (("head_only", head), ("full_retrain", full)):
        key = "head" if name == "head_only" else "full"
        print(f"delta_update_wire_fraction_{name}_115200: "
              f"{e2e[key, 'delta'][0] / len(new):.3f}")
        print(f"delta_update_seconds_{name}_115200: {e2e[key, 'delta'][1]:.2f}")
    print(f"full_update_wire_fraction_115200: {e2e['head', 'full'][0] / len(head):.3f}")
    print(f"full_update_seconds_115200: {e2e['head', 'full'][1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
