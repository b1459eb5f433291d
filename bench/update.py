"""Model updates: how close a full update comes to the line rate, and how small a delta is.

1. Throughput: ``workbench.deploy.deploy_model`` (gates, host image check, upload with chunks
   in flight, verify, commit) sends an int8 model to a virtual Nano 33 BLE Sense at 115200 and
   921600 baud. Two figures, each as a fraction of the line rate (baud / 10 bytes/s, the pace
   the virtual board keeps in the same run): the whole update (image bytes / seconds from the
   host check to the commit) and the transfer alone (bytes acknowledged between the first and
   the last acknowledgement). The
   time from "deploy" to a running, committed model (gates included) is printed too.
2. Delta size: an ``imu_cnn`` "s" model is trained on BasicMotions and exported as int8 (v1);
   then (a) only its classifier head is retrained, (b) every layer is fine-tuned, each on the
   same data with another seed, and exported with the same calibration windows. The patch from
   v1 to each is made with two PyPI binary-delta libraries: ``detools`` (sequential bsdiff
   patch, heatshrink-compressed: what a small C patcher applies while streaming into a slot)
   and ``bsdiff4``. Sizes are fractions of the new full image. Patches are applied back and
   compared byte for byte.

The device side of delta updates (rebuilding the new image from the active slot) is not built
yet; this measures what a delta would cost on the wire.

Run: ``python bench/update.py`` (about 2 minutes on 2 cores). Headline figures last.
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
        for layer in model.layers:
            layer.trainable = (not head_only) or layer is model.layers[-1]
        res = train(model, data, TrainConfig(epochs=15, patience=15, seed=seed,
                                             learning_rate=1e-3))
        return to_tflite(res.model, quantize="int8", representative=calib)

    head = retrained(head_only=True, seed=1)
    full = retrained(head_only=False, seed=2)
    deltas = {"head": _patch_sizes(old, head), "full": _patch_sizes(old, full)}
    same = {name: sum(a == b for a, b in zip(old, new)) / len(new)
            for name, new in (("head", head), ("full", full))}

    rates, wire, click = {}, {}, {}
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
    print(f"update_fraction_of_line_rate_115200: {rates[115200]:.3f}")
    print(f"update_fraction_of_line_rate_921600: {rates[921600]:.3f}")
    print(f"transfer_fraction_of_line_rate_115200: {wire[115200]:.3f}")
    print(f"transfer_fraction_of_line_rate_921600: {wire[921600]:.3f}")
    print(f"seconds_deploy_to_committed_115200: {click[115200]:.2f}")
    print(f"seconds_deploy_to_committed_921600: {click[921600]:.2f}")
    print(f"delta_fraction_head_only_detools_heatshrink: "
          f"{deltas['head']['detools_heatshrink'] / len(head):.3f}")
    print(f"delta_fraction_head_only_bsdiff4: {deltas['head']['bsdiff4'] / len(head):.3f}")
    print(f"delta_fraction_full_retrain_detools_heatshrink: "
          f"{deltas['full']['detools_heatshrink'] / len(full):.3f}")
    print(f"delta_fraction_full_retrain_bsdiff4: {deltas['full']['bsdiff4'] / len(full):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
