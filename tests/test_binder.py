"""binder/ follows repo2docker's conventions, and its start script gives the lessons a virtual board."""

from __future__ import annotations

import json
import os
import re
import site
import subprocess
import sys
from pathlib import Path

import yaml

BINDER = Path(__file__).resolve().parents[1] / "binder"


def test_environment_pins_python_and_brings_node():
    env = yaml.safe_load((BINDER / "environment.yml").read_text())
    deps = [d for d in env["dependencies"] if isinstance(d, str)]
    assert any(d.startswith("python=3.") for d in deps)
    assert any(d.startswith("nodejs") for d in deps)  # the extension's build hook may run npm
    assert "pip" in deps
    # repo2docker ignores runtime.txt beside an environment.yml: one place for the Python version
    assert not (BINDER / "runtime.txt").exists()


def test_post_build_installs_the_package_as_a_wheel_and_stops_on_errors():
    script = BINDER / "postBuild"
    assert os.access(script, os.X_OK)
    lines = [line.strip() for line in script.read_text().splitlines()]
    assert lines[0].startswith("#!") and "bash" in lines[0]
    assert any(line.startswith("set -e") for line in lines)
    installs = [line for line in lines if "pip install" in line and not line.startswith("#")]
    assert installs and all('".[lab]"' in line and " -e " not in line for line in installs)


def test_start_gives_the_lessons_the_virtual_board_unless_told_otherwise():
    script = BINDER / "start"
    assert os.access(script, os.X_OK)
    assert script.read_text().strip().splitlines()[-1] == 'exec "$@"'
    code = "import workbench; print(workbench.default_device_url())"
    env = {k: v for k, v in os.environ.items() if k != "WORKBENCH_DEVICE"}
    out = subprocess.run([str(script), sys.executable, "-c", code], capture_output=True,
                         text=True, env=env, check=True)
    assert out.stdout.strip() == "sim://nano33ble" and out.stderr == ""
    env["WORKBENCH_DEVICE"] = "sim://pico"
    out = subprocess.run([str(script), sys.executable, "-c", code], capture_output=True,
                         text=True, env=env, check=True)
    assert out.stdout.strip() == "sim://pico"


# ------------------------------------------------------------------ Node for the extension's build

EXTENSION = BINDER.parent / "extensions" / "tinyml-workbench"


def _version(text: str) -> tuple[int, int, int]:
    parts = [int(p) for p in re.findall(r"\d+", text)[:3]]
    return tuple(parts + [0] * (3 - len(parts)))


def _satisfies(version: tuple[int, int, int], npm_range: str) -> bool:
    """``version`` against an npm ``engines`` range: alternatives (``||``) of space-separated
    comparators ``^X.Y.Z``, ``>=``, ``>``, ``<=``, ``<``, ``=`` or a bare ``X``, ``X.Y``
    (any ``X.*``), the forms package-lock.json's engines use."""
    for alternative in npm_range.split("||"):
        tokens = re.findall(r"(\^|~|>=|<=|>|<|=)?\s*v?(\d+(?:\.[\dx*]+)*)", alternative)
        if tokens and all(_compare(version, op, text) for op, text in tokens):
            return True
    return False


def _compare(version, op, text) -> bool:
    given = [p for p in text.split(".") if p not in ("x", "*")]
    bound = _version(text)
    if op == "^":
        top = (bound[0] + 1, 0, 0) if bound[0] else (0, bound[1] + 1, 0)
        return bound <= version < top
    if op == "~":
        return bound <= version < (bound[0], bound[1] + 1, 0)
    if op in ("", "="):
        return tuple(version[: len(given)]) == tuple(int(p) for p in given)
    return {">=": version >= bound, ">": version > bound, "<=": version <= bound,
            "<": version < bound}[op]


def test_the_range_checker_reads_npm_ranges():
    assert _satisfies((20, 19, 0), "^20.19.0 || >=22.12.0")
    assert not _satisfies((20, 17, 0), "^20.19.0 || >=22.12.0")
    assert not _satisfies((21, 0, 0), "^20.19.0 || >=22.12.0")
    assert _satisfies((20, 19, 0), "18 || 20 || >=22") and not _satisfies((19, 1, 0), "18 || 20 || >=22")
    assert _satisfies((20, 19, 0), ">= 18.12.0") and not _satisfies((16, 0, 0), ">= 18.12.0")
    assert _satisfies((20, 19, 0), ">=16 || 14 >=14.17") and _satisfies((14, 18, 0), ">=16 || 14 >=14.17")
    assert not _satisfies((14, 1, 0), ">=16 || 14 >=14.17")


def test_binders_node_meets_every_engine_of_the_extensions_build():
    """environment.yml's ``nodejs`` range (its lowest and highest version) satisfies the
    ``engines.node`` of every package npm installs to build the extension."""
    env = yaml.safe_load((BINDER / "environment.yml").read_text())
    (spec,) = [d for d in env["dependencies"] if isinstance(d, str) and d.startswith("nodejs")]
    low = re.search(r">=\s*([\d.]+)", spec)
    high = re.search(r"<\s*(\d+)", spec)
    assert low and high, f"{spec}: give nodejs a range, >=X.Y,<Z (the build's engines need it)"
    lowest, highest = _version(low.group(1)), (int(high.group(1)) - 1, 999, 999)
    lock = json.loads((EXTENSION / "package-lock.json").read_text())
    engines = {name: meta["engines"]["node"] for name, meta in lock["packages"].items()
               if isinstance(meta.get("engines"), dict) and "node" in meta["engines"]}
    assert "node_modules/@rspack/core" in engines   # the bundler is among them
    refused = {name: rule for name, rule in engines.items()
               if not (_satisfies(lowest, rule) and _satisfies(highest, rule))}
    assert not refused, f"Node {spec} does not satisfy: {refused}"


# ------------------------------------------------------------------ postBuild's checks

def test_post_build_check_fails_the_build_without_the_lab_extension(tmp_path):
    """``postBuild --check`` in an environment with the lessons and the Voila template but no
    JupyterLab extension installed stops with a message saying so (the build fails, not the
    student's first lesson). Its passing run is in tests/test_wheel_data.py (the wheel)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    deps = [p for p in dict.fromkeys(site.getsitepackages() + [
        p for p in sys.path if Path(p).name in ("site-packages", "dist-packages")]) if Path(p).is_dir()]
    Path(purelib, "zz_test_dependencies.pth").write_text("\n".join(deps) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                     ("JUPYTER_RUNTIME_DIR", "runtime")):
        (tmp_path / sub).mkdir()
        env[var] = str(tmp_path / sub)
    root = BINDER.parent
    env["PYTHONPATH"] = str(root)                       # the checkout: its lessons
    env["JUPYTER_PATH"] = str(root / "workbench" / "lab" / "jupyter_data")   # the template
    env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", "")])
    out = subprocess.run(["bash", str(BINDER / "postBuild"), "--check"], capture_output=True,
                         text=True, env=env, cwd=tmp_path, timeout=300)
    assert out.returncode != 0, out.stdout
    assert "tinyml-workbench: lessons 00_hello_board.ipynb" in out.stdout
    assert "Voila template in" in out.stdout
    assert "the TinyML JupyterLab extension is not installed and enabled" in out.stderr, out.stderr
