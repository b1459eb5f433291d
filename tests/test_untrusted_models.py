"""Model files that carry code: a Keras Lambda layer is refused unless the file is trusted.

The Lambda here writes a marker file whenever Keras runs it, so each test can tell
whether loading ran the file's code. Keras runs it when it rebuilds the model from a
legacy .h5 file (its safe mode covers .keras files only).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from workbench.optimize.importers import ModelImportError, UntrustedModelError, load_model
from workbench.train.tf_runtime import keras


def _save_with_lambda(path, marker):
    k = keras()
    code = eval(f"lambda x: (open({str(marker)!r}, 'w').write('ran'), x)[1]")  # noqa: S307
    inp = k.Input((4,))
    hidden = k.layers.Lambda(code, name="sneaky")(inp)
    k.Model(inp, k.layers.Dense(2)(hidden)).save(path)
    assert marker.exists()  # building the model ran the code: the marker works
    marker.unlink()


@pytest.fixture(scope="module")
def lambda_models(tmp_path_factory):
    d = tmp_path_factory.mktemp("untrusted")
    marker = d / "code-ran"
    for name in ("model.h5", "model.keras"):
        _save_with_lambda(d / name, marker)
    renamed = d / "model.bin"  # an .h5 under another name is recognised by its content
    renamed.write_bytes((d / "model.h5").read_bytes())
    return d, marker


@pytest.mark.parametrize("name", ["model.h5", "model.bin", "model.keras"])
def test_lambda_layers_are_refused_and_never_run(lambda_models, name):
    d, marker = lambda_models
    with pytest.raises(UntrustedModelError) as err:
        load_model(d / name)
    assert not marker.exists(), "loading ran the code in the file"
    message = str(err.value)
    assert "Lambda" in message and "trusted=True" in message and "--trust-model" in message
    if name != "model.keras":
        assert "'sneaky'" in message  # found in the file before Keras saw it
    assert isinstance(err.value, ModelImportError) and isinstance(err.value, ValueError)


@pytest.mark.parametrize("name", ["model.h5", "model.keras"])
def test_a_trusted_file_loads_and_runs_its_code(lambda_models, name):
    d, marker = lambda_models
    try:
        imported = load_model(d / name, trusted=True)
        assert marker.exists()  # the code did run, as the caller allowed
    finally:
        marker.unlink(missing_ok=True)
    assert imported.kind == "keras" and imported.tflite[4:8] == b"TFL3"


def test_report_command_refuses_it_without_running_it(lambda_models):
    d, marker = lambda_models
    res = subprocess.run([sys.executable, "-m", "workbench.cli", "report", str(d / "model.h5")],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and not marker.exists()
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert "Lambda" in res.stderr and "--trust-model" in res.stderr
