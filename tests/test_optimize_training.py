"""QAT, distillation, pruning and clustering, trained for real on BasicMotions.

BasicMotions (aeon, 4 activities, 40 train + 40 test windows of 100 samples x 6
channels) is small enough to train tiny Conv2D (k, 1) models in seconds. Models are
trained once per module; every accuracy is measured on the held-out test split.
The int8 models run in the real TFLite Micro interpreter.
"""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from workbench.sim.replay import load_basicmotions
from workbench.train import clustering as cluster_mod
from workbench.train import distill, qat
from workbench.train import pruning as prune_mod
from workbench.train.tf_runtime import keras, tf

# Every test here converts or trains models with TensorFlow (module fixtures of
# several seconds each).
pytestmark = pytest.mark.slow

CHANCE = 0.25
SEED = 7
TIMINGS: dict[str, float] = {}


def _seed(seed: int = SEED) -> None:
    keras().utils.set_random_seed(seed)


# --------------------------------------------------------------------------------------
# data and models
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data():
    """(Xtr, ytr, Xte, yte, classes): (n, 100, 6) float32, per-channel normalised."""
    Xtr, ltr = load_basicmotions("train")
    Xte, lte = load_basicmotions("test")
    classes = sorted(set(ltr))
    Xtr = np.transpose(Xtr, (0, 2, 1)).astype(np.float32)
    Xte = np.transpose(Xte, (0, 2, 1)).astype(np.float32)
    mean = Xtr.mean(axis=(0, 1), keepdims=True)
    std = Xtr.std(axis=(0, 1), keepdims=True) + 1e-6
    ytr = np.array([classes.index(c) for c in ltr])
    yte = np.array([classes.index(c) for c in lte])
    return (Xtr - mean) / std, ytr, (Xte - mean) / std, yte, classes


def imu_model(width: int = 8, dense: int = 0, softmax: bool = True, name: str = "imu"):
    """Conv2D (k, 1) on (T, 1, C): the shape tfmot can quantize."""
    L = keras().layers
    layers = [L.Input((100, 6)), L.Reshape((100, 1, 6)),
              L.Conv2D(width, (5, 1), strides=(2, 1), activation="relu", name="conv1"),
              L.MaxPooling2D((2, 1), name="pool1"),
              L.Conv2D(width * 2, (3, 1), activation="relu", name="conv2"),
              L.GlobalAveragePooling2D(name="gap")]
    if dense:
        layers.append(L.Dense(dense, activation="relu", name="hidden"))
    layers.append(L.Dense(4, name="head"))
    if softmax:
        layers.append(L.Softmax(name="probs"))
    return keras().Sequential(layers, name=name)


def accuracy(model, X, y) -> float:
    return float(np.mean(np.argmax(model.predict(X, verbose=0), axis=1) == y))


def _compile(model, lr=3e-3):
    model.compile(optimizer=keras().optimizers.Adam(lr),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@pytest.fixture(scope="module")
def teacher(data):
    """A trained float model (the teacher, and the input for pruning/clustering)."""
    Xtr, ytr, Xte, yte, _ = data
    _seed()
    t0 = time.perf_counter()
    model = _compile(imu_model(width=16, dense=32, name="teacher"))
    model.fit(Xtr, ytr, epochs=40, batch_size=8, verbose=0)
    TIMINGS["teacher_fit_s"] = time.perf_counter() - t0
    acc = accuracy(model, Xte, yte)
    TIMINGS["teacher_acc"] = acc
    assert acc > 0.5, f"the float teacher did not learn BasicMotions (test accuracy {acc})"
    return model


@pytest.fixture(scope="module")
def qat_model(data):
    """A quantization-aware model trained from scratch."""
    Xtr, ytr, _, _, _ = data
    _seed()
    model = _compile(qat.qat_from_scratch(imu_model, width=8, name="qat"))
    model.fit(Xtr, ytr, epochs=40, batch_size=8, verbose=0)
    return model


def int8_tflite(model, X) -> bytes:
    """Full-integer conversion with int8 input and output."""
    t = tf()
    conv = t.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [t.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([x[None]] for x in X)
    conv.target_spec.supported_ops = [t.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = t.int8
    conv.inference_output_type = t.int8
    return conv.convert()


def tflm_predict(model_bytes: bytes, X) -> np.ndarray:
    """Class scores from the real TFLite Micro interpreter, one window at a time."""
    from workbench.tflite import TflmRunner

    runner = TflmRunner(model_bytes, 64 * 1024)
    inp, out = runner.input_details[0], runner.output_details[0]
    assert inp.dtype == "int8" and out.dtype == "int8"
    q = np.clip(np.round(X / inp.scale) + inp.zero_point, -128, 127).astype(np.int8)
    raw = np.stack([runner.invoke(q[i:i + 1])[0].reshape(-1) for i in range(len(X))])
    return (raw.astype(np.float32) - out.zero_point) * out.scale


# --------------------------------------------------------------------------------------
# imports
# --------------------------------------------------------------------------------------


def test_importing_the_modules_does_not_import_tensorflow():
    code = ("import sys\n"
            "import workbench.train.qat, workbench.train.distill, workbench.train.pruning, "
            "workbench.train.clustering\n"
            "bad = [m for m in ('tensorflow', 'tf_keras', 'tensorflow_model_optimization') "
            "if m in sys.modules]\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# --------------------------------------------------------------------------------------
# QAT
# --------------------------------------------------------------------------------------


def test_qat_model_beats_chance_and_runs_int8_in_tflm(data, qat_model):
    Xtr, _, Xte, yte, _ = data
    assert qat.is_quantize_aware(qat_model)
    acc = accuracy(qat_model, Xte, yte)
    TIMINGS["qat_acc"] = acc
    assert acc > 0.5, f"QAT model test accuracy {acc:.2f}"

    model_bytes = int8_tflite(qat_model, Xtr)
    scores = tflm_predict(model_bytes, Xte)
    tflm_acc = float(np.mean(np.argmax(scores, axis=1) == yte))
    TIMINGS["qat_int8_tflm_acc"] = tflm_acc
    assert tflm_acc > 0.5, f"int8 model in TFLM: test accuracy {tflm_acc:.2f}"
    # the int8 model agrees with the QAT model it came from
    agree = np.mean(np.argmax(scores, 1) == np.argmax(qat_model.predict(Xte, verbose=0), 1))
    TIMINGS["qat_int8_agreement"] = float(agree)
    assert agree >= 0.9, f"int8 TFLM and QAT Keras predictions agree on only {agree:.0%}"


def test_quantize_aware_returns_a_new_model_with_the_trained_weights(data, teacher):
    Xtr, ytr, Xte, yte, _ = data
    before = [w.copy() for w in teacher.get_weights()]
    q = qat.quantize_aware(teacher)
    assert q is not teacher and qat.is_quantize_aware(q)
    assert not qat.is_quantize_aware(teacher)
    q_kernel = [w for w in q.get_layer("quant_conv1").weights if w.name == "conv1/kernel:0"]
    np.testing.assert_array_equal(q_kernel[0].numpy(), teacher.get_layer("conv1").kernel.numpy())
    # fine-tuning keeps most of what it learned (tfmot's activation ranges start at
    # [-6, 6] and follow a 0.999 moving average, so 15 steps barely move them)
    _seed()
    _compile(q, lr=1e-4).fit(Xtr, ytr, epochs=3, batch_size=8, verbose=0)
    for a, b in zip(before, teacher.get_weights()):
        np.testing.assert_array_equal(a, b)
    agree = np.mean(np.argmax(q.predict(Xte, verbose=0), 1)
                    == np.argmax(teacher.predict(Xte, verbose=0), 1))
    TIMINGS["finetuned_qat_agreement"] = float(agree)
    TIMINGS["finetuned_qat_acc"] = acc = accuracy(q, Xte, yte)
    assert acc > 0.5 and agree >= 0.6, (acc, agree)


def test_quantize_aware_names_conv1d_and_suggests_conv2d():
    L = keras().layers
    model = keras().Sequential([L.Input((100, 6)), L.Conv1D(4, 5, name="my_conv1d"),
                                L.MaxPooling1D(2, name="my_pool"), L.Flatten(),
                                L.Dense(4)])
    with pytest.raises(qat.UnsupportedLayerError) as err:
        qat.quantize_aware(model)
    msg = str(err.value)
    assert "my_conv1d" in msg and "Conv1D" in msg and "my_pool" in msg
    assert "Conv2D" in msg and "(k, 1)" in msg
    assert [n for n, _ in err.value.layers] == ["my_conv1d", "my_pool"]
    assert isinstance(err.value, ValueError)


def test_quantize_aware_rejects_non_models_and_double_quantization(qat_model):
    with pytest.raises(TypeError, match="tf_keras Model"):
        qat.quantize_aware("not a model")
    with pytest.raises(ValueError, match="already quantization-aware"):
        qat.quantize_aware(qat_model)


# --------------------------------------------------------------------------------------
# distillation
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def distilled(data, teacher):
    Xtr, ytr, _, _, _ = data
    _seed()
    student = qat.quantize_aware(imu_model(width=4, name="student"))
    d = distill.Distiller(teacher, student, optimizer=keras().optimizers.Adam(5e-3),
                          temperature=3, alpha=0.1)
    t0 = time.perf_counter()
    history = d.fit(Xtr, ytr, epochs=40, batch_size=8, verbose=0)
    TIMINGS["distill_fit_s"] = time.perf_counter() - t0
    return d, history


def test_distiller_trains_a_small_qat_student_that_beats_chance(data, teacher, distilled):
    Xtr, _, Xte, yte, _ = data
    d, history = distilled
    student = d.student
    n_teacher, n_student = teacher.count_params(), student.count_params()
    TIMINGS["params"] = (n_teacher, n_student)
    assert n_student <= n_teacher / 4, (n_student, n_teacher)
    assert {"loss", "student_loss", "distillation_loss", "accuracy"} <= set(history.history)
    assert history.history["loss"][-1] < history.history["loss"][0]
    acc = accuracy(student, Xte, yte)
    TIMINGS["student_acc"] = acc
    assert acc > 0.5, f"distilled student test accuracy {acc:.2f}"
    # evaluate() goes through test_step and reports the same metrics
    results = d.evaluate(Xte, yte, verbose=0, return_dict=True)
    assert abs(results["accuracy"] - acc) < 1e-6
    # the QAT student converts to int8 and still beats chance in TFLM
    scores = tflm_predict(int8_tflite(student, Xtr), Xte)
    int8_acc = float(np.mean(np.argmax(scores, 1) == yte))
    TIMINGS["student_int8_tflm_acc"] = int8_acc
    assert int8_acc > 0.5


def test_distiller_does_not_change_the_teacher(data, teacher, distilled):
    _, _, Xte, yte, _ = data
    assert accuracy(teacher, Xte, yte) == TIMINGS["teacher_acc"]


def test_softened_targets_are_the_same_for_logits_and_softmax_teachers(data, teacher):
    _, _, Xte, _, _ = data
    logits_teacher = keras().Model(teacher.inputs, teacher.get_layer("head").output)
    student = imu_model(width=4, softmax=False, name="s")
    a = distill.Distiller(teacher, student, temperature=4)
    b = distill.Distiller(logits_teacher, student, temperature=4)
    assert (a.teacher_outputs, b.teacher_outputs, a.student_outputs) == (
        "probabilities", "logits", "logits")
    x = Xte[:8]
    expected = tf().nn.softmax(logits_teacher(x) / 4.0).numpy()
    np.testing.assert_allclose(a.soft_targets(x).numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(b.soft_targets(x).numpy(), expected, atol=1e-6)
    # and the QAT wrappers do not hide a final softmax
    assert distill.outputs_kind(qat.quantize_aware(teacher)) == "probabilities"


def test_distiller_keras_example_api_with_logits_student(data, teacher):
    Xtr, ytr, Xte, yte, _ = data
    k = keras()
    _seed()
    student = imu_model(width=4, softmax=False, name="logit_student")
    d = distill.Distiller(teacher, student)
    with pytest.raises(RuntimeError, match="compile"):
        d.fit(Xtr, ytr, epochs=1, verbose=0)
    d.compile(optimizer=k.optimizers.Adam(5e-3), metrics=["accuracy"],
              student_loss_fn=k.losses.SparseCategoricalCrossentropy(from_logits=True),
              distillation_loss_fn=k.losses.KLDivergence(), alpha=0.1, temperature=3)
    d.fit(Xtr, ytr, epochs=5, batch_size=8, verbose=0, validation_data=(Xte, yte),
          class_weight={0: 1.0, 1: 2.0, 2: 1.0, 3: 1.0})  # as fit.train passes them
    assert d.predict(Xte[:3], verbose=0).shape == (3, 4)


def test_distiller_bad_arguments(teacher):
    small = imu_model(width=4)
    with pytest.raises(ValueError, match="temperature"):
        distill.Distiller(teacher, small, temperature=0)
    with pytest.raises(ValueError, match="alpha"):
        distill.Distiller(teacher, small, optimizer="adam", alpha=1.5)
    with pytest.raises(ValueError, match="same model"):
        distill.Distiller(teacher, teacher)
    L = keras().layers
    three = keras().Sequential([L.Input((100, 6)), L.Flatten(), L.Dense(3)])
    with pytest.raises(ValueError, match="output"):
        distill.Distiller(teacher, three)
    with pytest.raises(TypeError, match="tf_keras"):
        distill.Distiller(teacher, object())
    with pytest.raises(ValueError, match="teacher_outputs"):
        distill.Distiller(teacher, small, teacher_outputs="probs")


# --------------------------------------------------------------------------------------
# pruning
# --------------------------------------------------------------------------------------


def test_prune_reaches_the_target_sparsity_and_leaves_the_input_alone(data, teacher):
    Xtr, ytr, Xte, yte, _ = data
    _seed()
    t0 = time.perf_counter()
    pruned = prune_mod.prune(teacher, Xtr, ytr, target_sparsity=0.6, epochs=4, batch_size=8,
                             optimizer=keras().optimizers.Adam(1e-3))
    TIMINGS["prune_s"] = time.perf_counter() - t0
    s = prune_mod.sparsity(pruned)
    TIMINGS["sparsity"] = s
    TIMINGS["layer_sparsity"] = prune_mod.layer_sparsity(pruned)
    assert abs(s - 0.6) <= 0.02, s
    assert set(TIMINGS["layer_sparsity"]) == {"conv1", "conv2", "hidden", "head"}
    for name, ls in TIMINGS["layer_sparsity"].items():
        assert abs(ls - 0.6) <= 0.02, (name, ls)
    # stripped: plain Keras layers again, and the input model was not pruned
    assert [type(layer).__name__ for layer in pruned.layers] == [
        type(layer).__name__ for layer in teacher.layers]
    assert prune_mod.sparsity(teacher) < 0.01
    acc = accuracy(pruned, Xte, yte)
    TIMINGS["pruned_acc"] = acc
    assert acc > 0.5


@pytest.mark.parametrize("kwargs, match", [
    ({"target_sparsity": 1.0}, "target_sparsity"),
    ({"target_sparsity": -0.1}, "target_sparsity"),
    ({"epochs": 0}, "epochs"),
    ({"begin_step": 10_000}, "begin_step"),
    ({"frequency": 0}, "frequency"),
])
def test_prune_bad_arguments(data, teacher, kwargs, match):
    Xtr, ytr, _, _, _ = data
    with pytest.raises(ValueError, match=match):
        prune_mod.prune(teacher, Xtr, ytr, **kwargs)


def test_prune_refuses_a_qat_model(data, qat_model):
    Xtr, ytr, _, _, _ = data
    with pytest.raises(ValueError, match="quantization-aware"):
        prune_mod.prune(qat_model, Xtr, ytr)


# --------------------------------------------------------------------------------------
# clustering
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("init", ["kmeans++", "linear"])
def test_cluster_keeps_at_most_n_clusters_values_per_kernel(data, teacher, init):
    Xtr, ytr, Xte, yte, _ = data
    _seed()
    t0 = time.perf_counter()
    clustered = cluster_mod.cluster(teacher, Xtr, ytr, n_clusters=8, init=init, epochs=2,
                                    batch_size=8)
    TIMINGS[f"cluster_{init}_s"] = time.perf_counter() - t0
    counts = cluster_mod.unique_weights(clustered)
    TIMINGS[f"unique_{init}"] = counts
    assert set(counts) == {"conv1", "conv2", "hidden", "head"}
    assert all(1 <= n <= 8 for n in counts.values()), counts
    assert max(cluster_mod.unique_weights(teacher).values()) > 8  # the input is untouched
    acc = accuracy(clustered, Xte, yte)
    TIMINGS[f"clustered_{init}_acc"] = acc
    assert acc > 0.5


@pytest.mark.parametrize("kwargs, match", [
    ({"n_clusters": 1}, "n_clusters"),
    ({"n_clusters": 2.5}, "n_clusters"),
    ({"init": "bogus"}, "init"),
    ({"epochs": -1}, "epochs"),
])
def test_cluster_bad_arguments(data, teacher, kwargs, match):
    Xtr, ytr, _, _, _ = data
    with pytest.raises(ValueError, match=match):
        cluster_mod.cluster(teacher, Xtr, ytr, **kwargs)


def test_measurements_are_recorded_well_formed(teacher, distilled):
    """What this module measured is recorded well formed (the teacher's and the student's
    training times, every accuracy and agreement a fraction), and printed for the record
    (run with -s to see it). The fixtures make sure there is something to check when this
    test runs alone; the other tests add their figures when they run first."""
    assert {"teacher_fit_s", "teacher_acc", "distill_fit_s"} <= set(TIMINGS)
    for key, value in TIMINGS.items():
        if key.endswith("_s"):
            assert np.isfinite(value) and value > 0, (key, value)
        elif key.endswith(("_acc", "_agreement")):
            assert 0.0 <= value <= 1.0, (key, value)
    assert TIMINGS["teacher_acc"] > CHANCE
    print("\nmeasured:", {k: v for k, v in TIMINGS.items()})
