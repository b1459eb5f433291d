"""TensorFlow's native notices (a CUDA probe without a GPU, oneDNN notices, the converter's
settings) are held back while TensorFlow loads and a model converts, instead of filling a
notebook with red text; they are kept in ``tf_runtime.native_log``."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("tf_keras")

SCRIPT = """
import numpy as np
from workbench.train.export import to_tflite
from workbench.train.tf_runtime import keras, native_log
k = keras()
m = k.Sequential([k.layers.Input((4,)), k.layers.Dense(2)])
to_tflite(m, quantize="int8",
          representative=np.random.default_rng(0).normal(size=(8, 4)).astype("float32"))
print("KEPT", "".join(native_log).count("fully_quantize"))
"""


def test_tensorflow_import_and_conversion_write_nothing_to_stderr():
    res = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    # the int8 converter always announces its settings on fd 2: held back, not shown
    assert "KEPT 1" in res.stdout
    for noise in ("fully_quantize", "cuInit", "oneDNN", "Assets written"):
        assert noise not in res.stderr, res.stderr
