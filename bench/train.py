"""Time to train each technique on BasicMotions, and the accuracy of float, QAT-int8 and
distilled-int8 models on its test split, run in the real TFLite Micro interpreter.

The pipeline is lesson 03's: BasicMotions (aeon) with its published 40/40 train/test
split, a validation set dealt from the training recordings, windows of 100 samples x 6
channels. Float = ``imu_cnn`` size "s"; QAT = the float model made quantization-aware
and fine-tuned; teacher = ``imu_cnn`` size "m"; student = ``imu_cnn`` size "xs",
distilled from the teacher. int8 models are full-integer (int8 in and out), batch 1.

Run: ``python bench/train.py`` (about 2 minutes on 2 cores). Headline figures last.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    from workbench.boards import get_board
    from workbench.data.formats import example_dataset
    from workbench.optimize import measure
    from workbench.train.distill import Distiller
    from workbench.train.export import to_tflite
    from workbench.train.fit import TrainConfig, TrainingData, train
    from workbench.train.qat import quantize_aware
    from workbench.train.tf_runtime import keras
    from workbench.train.zoo import imu_cnn

    board = get_board("nano33ble")
    with tempfile.TemporaryDirectory() as tmp:
        ds = example_dataset("basicmotions", Path(tmp) / "bm")
        data = TrainingData.from_dataset(ds, length=100, predefined="split", val=0.2, seed=0)
    shape, k = data.input_shape, data.n_classes
    rows = {}

    def timed(fn):
        t0 = time.perf_counter()
        out = fn()
        return out, time.perf_counter() - t0

    def int8_accuracy(model, quantized):
        tfl = to_tflite(model, quantize="int8",
                        representative=None if quantized else data.X_train)
        m = measure(tfl, data)    # test windows in TFLite Micro, smallest working arena
        return {"accuracy": m.accuracy, "errors": m.errors}, m.model_bytes, m.arena_bytes

    cfg = TrainConfig(epochs=80, patience=12, seed=0)
    flt, t = timed(lambda: train(lambda: imu_cnn(shape, k, "s"), data, cfg))
    f_acc = flt.record.metrics["test"]
    rows["float"] = (t, f_acc, flt.record.params)
    ptq = int8_accuracy(flt.model, quantized=False)

    qat_model = quantize_aware(flt.model)
    qat, t = timed(lambda: train(qat_model, data, TrainConfig(
        epochs=30, patience=8, learning_rate=3e-4, seed=0), technique="qat"))
    q_acc, q_bytes, q_arena = int8_accuracy(qat.model, quantized=True)
    rows["qat"] = (t, q_acc, q_bytes, q_arena)

    teacher, t_teacher = timed(lambda: train(lambda: imu_cnn(shape, k, "m"), data, cfg))

    def distill():
        keras().utils.set_random_seed(0)
        student = imu_cnn(shape, k, "xs")
        d = Distiller(teacher.model, student, optimizer=keras().optimizers.Adam(2e-3),
                      temperature=4.0, alpha=0.2)
        return train(d, data, TrainConfig(epochs=120, patience=20, seed=0, compile=False),
                     technique="distilled")

    stud, t = timed(distill)
    s_acc, s_bytes, s_arena = int8_accuracy(stud.model, quantized=False)
    rows["distilled"] = (t, s_acc, s_bytes, s_arena)

    ratio = stud.record.params / teacher.record.params
    print(f"float  s : {rows['float'][0]:5.1f} s, test {f_acc['accuracy']:.3f} "
          f"({f_acc['errors']} wrong), {flt.record.params} params; PTQ int8 "
          f"{ptq[0]['accuracy']:.3f} ({ptq[0]['errors']} wrong), {ptq[1]} B, arena {ptq[2]} B",
          file=sys.stderr)
    print(f"QAT      : {rows['qat'][0]:5.1f} s fine-tuning, int8 in TFLM {q_acc['accuracy']:.3f} "
          f"({q_acc['errors']} wrong), {q_bytes} B, arena {q_arena} B", file=sys.stderr)
    print(f"teacher m: {t_teacher:5.1f} s, test {teacher.record.metrics['test']['accuracy']:.3f}, "
          f"{teacher.record.params} params", file=sys.stderr)
    print(f"student  : {rows['distilled'][0]:5.1f} s distilling, int8 in TFLM "
          f"{s_acc['accuracy']:.3f} ({s_acc['errors']} wrong), {stud.record.params} params "
          f"({ratio:.3f} of the teacher), {s_bytes} B, arena {s_arena} B", file=sys.stderr)
    print(f"board {board.id}: slot {board.model_slots.slot_bytes} B, arena "
          f"{board.model_slots.arena_bytes} B", file=sys.stderr)
    print(f"train_seconds_float: {rows['float'][0]:.1f}")
    print(f"train_seconds_qat_finetune: {rows['qat'][0]:.1f}")
    print(f"train_seconds_teacher: {t_teacher:.1f}")
    print(f"train_seconds_distill: {rows['distilled'][0]:.1f}")
    print(f"test_accuracy_float: {f_acc['accuracy']:.3f}")
    print(f"test_accuracy_ptq_int8_tflm: {ptq[0]['accuracy']:.3f}")
    print(f"test_accuracy_qat_int8_tflm: {q_acc['accuracy']:.3f}")
    print(f"test_accuracy_distilled_int8_tflm: {s_acc['accuracy']:.3f}")
    print(f"test_errors_float: {f_acc['errors']}")
    print(f"test_errors_qat_int8_tflm: {q_acc['errors']}")
    print(f"student_teacher_param_ratio: {ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
