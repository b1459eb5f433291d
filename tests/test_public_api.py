"""One public API: each subpackage states its surface, and a name means one thing.

A module named like a public name of its package shadows that name once anything imports
the module (the import sets the package attribute to the module): after
``workbench.optimize.measure_all`` had been touched, ``from workbench.optimize import
measure`` returned the module ``measure.py`` instead of the function.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import subprocess
import sys

import pytest

import workbench

#: every subpackage with a public surface (protocol declares none: its modules are the API)
PACKAGES = ["workbench.boards", "workbench.link", "workbench.tflite", "workbench.sim",
            "workbench.data", "workbench.data.formats", "workbench.capture", "workbench.train",
            "workbench.optimize", "workbench.ui", "workbench.refdata"]


def run_python(code: str, timeout: float = 300, env: dict | None = None) -> str:
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=timeout, env=env)
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_measure_and_report_are_the_functions_whatever_was_touched_first():
    # a fresh interpreter: touch other names (which import the modules that define
    # measure and report) and the modules themselves, then import the two names
    out = run_python(
        "import inspect, json\n"
        "import workbench.optimize as o\n"
        "o.measure_all; o.Report; o.measure_on_device\n"
        "import workbench.optimize.measuring, workbench.optimize.reporting\n"
        "from workbench.optimize import measure, report\n"
        "print(json.dumps([inspect.isfunction(measure), measure.__name__,\n"
        "                  inspect.isfunction(report), report.__name__,\n"
        "                  o.measure is measure, o.report is report]))\n")
    assert json.loads(out) == [True, "measure", True, "report", True, True]


@pytest.mark.parametrize("package", PACKAGES)
def test_no_submodule_is_named_like_a_public_name(package):
    pkg = importlib.import_module(package)
    submodules = {m.name for m in pkgutil.iter_modules(pkg.__path__)}
    assert not submodules & set(pkg.__all__), (
        f"{package}: rename the submodule(s) {sorted(submodules & set(pkg.__all__))}; importing "
        "one would replace the public name of the same name with the module")


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_states_its_surface(package):
    pkg = importlib.import_module(package)
    assert pkg.__doc__ and len(pkg.__doc__.split()) > 20, f"{package} needs a docstring"
    assert pkg.__all__ and len(set(pkg.__all__)) == len(pkg.__all__)
    assert set(pkg.__all__) <= set(dir(pkg))


def test_every_public_name_resolves_in_a_fresh_interpreter():
    # lazy names load their module on first use: each must exist where its table says,
    # and after the loads every package attribute is still the named object, not a module
    out = run_python(
        "import importlib, json, types\n"
        f"packages = {PACKAGES!r}\n"
        "bad = []\n"
        "for name in packages:\n"
        "    pkg = importlib.import_module(name)\n"
        "    for attr in pkg.__all__:\n"
        "        try:\n"
        "            value = getattr(pkg, attr)\n"
        "        except Exception as e:\n"
        "            bad.append(f'{name}.{attr}: {type(e).__name__}: {e}')\n"
        "for name in packages:\n"
        "    pkg = importlib.import_module(name)\n"
        "    bad += [f'{name}.{a} is a module' for a in pkg.__all__\n"
        "            if isinstance(getattr(pkg, a), types.ModuleType)]\n"
        "print(json.dumps(bad))\n", timeout=600)
    assert json.loads(out) == []


def test_clashing_names_say_what_they_are():
    # one evaluate per meaning: a model's classification metrics, a board's verdict
    from workbench.optimize import board_verdict
    from workbench.train import classification_metrics

    assert board_verdict.__module__ == "workbench.optimize.boardfit"
    assert classification_metrics.__module__ == "workbench.train.fit"
    import workbench.optimize as o
    import workbench.train.fit as fit

    assert not hasattr(o, "evaluate") and not hasattr(fit, "evaluate")


def test_the_tensorflow_helper_is_public_and_light():
    # optimize and ui get TensorFlow through workbench.train's helpers, which select legacy
    # Keras before TensorFlow loads; importing them loads nothing heavy
    out = run_python(
        "import sys, json\n"
        "from workbench.train import keras, tf, tfmot\n"
        "from workbench.train.tf_runtime import keras as k2\n"
        "import os\n"
        "print(json.dumps([keras is k2, callable(tf), callable(tfmot),\n"
        "                  os.environ.get('TF_USE_LEGACY_KERAS'),\n"
        "                  [m for m in ('tensorflow', 'tf_keras') if m in sys.modules]]))\n",
        env={k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"})
    assert json.loads(out) == [True, True, True, "1", []]
    assert workbench.__all__  # the top package states its surface too


def _mutable(value) -> bool:
    import dataclasses

    if isinstance(value, (list, dict, set, bytearray)):
        return True
    return (dataclasses.is_dataclass(value) and not isinstance(value, type)
            and not value.__dataclass_params__.frozen)


def test_no_function_shares_a_mutable_default():
    # a default is evaluated once, so a mutable one is shared by every call
    # (train(config=TrainConfig()) was); frozen dataclasses and tuples are fine
    import inspect

    found = []
    for info in pkgutil.walk_packages(workbench.__path__, "workbench."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for owner in [module, *[v for v in vars(module).values()
                                if isinstance(v, type) and v.__module__ == module.__name__]]:
            for fn in vars(owner).values():
                fn = getattr(fn, "__func__", fn)
                if not inspect.isfunction(fn) or fn.__module__ != module.__name__:
                    continue
                for p in inspect.signature(fn).parameters.values():
                    if p.default is not p.empty and _mutable(p.default):
                        found.append(f"{module.__name__}.{fn.__qualname__}({p.name}=...)")
    assert found == []


def test_train_takes_a_fresh_config_per_call():
    import inspect

    from workbench.train import train

    assert inspect.signature(train).parameters["config"].default is None
