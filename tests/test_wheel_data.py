"""The example data sets ship inside the package: built into a wheel, installed, loaded.

The wheel is built here from this checkout with hatchling (the project's build backend, from the
``test`` extra) and installed with ``--no-deps`` into a fresh virtual environment. That
environment sees this interpreter's third-party packages (numpy...) through a ``.pth`` file of
plain directories, so ``workbench`` itself can only come from the wheel; the check runs from a
folder outside the checkout with PYTHONPATH cleared.
"""

from __future__ import annotations

import importlib.util
import os
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("hatchling") is None,
                       reason="hatchling (the build backend) is not installed: "
                              "pip install -e '.[test]'"),
]


def _run(cmd, **kw):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    assert out.returncode == 0, f"{cmd} failed:\n{out.stdout}\n{out.stderr}"
    return out


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
          "--quiet", "-w", str(out), str(ROOT)])
    wheels = list(out.glob("tinyml_workbench-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_the_wheel_holds_the_example_data(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    folder = "workbench/data/examples/arduino-fruit-color/"
    for f in ("apple.csv", "banana.csv", "orange.csv", "README.md"):
        assert folder + f in names
    shipped = (ROOT / folder / "apple.csv").read_bytes()
    assert zipfile.ZipFile(wheel).read(folder + "apple.csv") == shipped


def test_example_dataset_loads_from_an_installed_wheel(wheel, tmp_path):
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)])
    py = venv / "bin" / "python"
    purelib = _run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
                   ).stdout.strip()
    # Dependencies from this interpreter, as plain directories (no .pth of theirs is run, so an
    # editable install of workbench there stays invisible).
    deps = [p for p in site.getsitepackages() if Path(p).is_dir()]
    Path(purelib, "zz_test_dependencies.pth").write_text("\n".join(deps) + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps",
          "--no-index", "--quiet", str(wheel)])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = (
        "import workbench, pathlib, sys\n"
        "from workbench.data.formats import example_dataset\n"
        "home = pathlib.Path(workbench.__file__).resolve()\n"
        f"assert home.is_relative_to({str(venv.resolve())!r}), home\n"
        "ds = example_dataset('fruit-color', 'fruit')\n"
        "print(sorted((m.label, m.samples) for m in ds))\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    out = _run([str(py), "-c", code], cwd=elsewhere, env=env)
    rows = {f: sum(1 for line in (ROOT / "workbench/data/examples/arduino-fruit-color"
                                  / f"{f}.csv").read_text().splitlines()[1:] if line.strip())
            for f in ("apple", "banana", "orange")}
    assert out.stdout.strip() == str(sorted(rows.items()))
    assert (elsewhere / "fruit" / "dataset.json").is_file()


# The lessons (workbench/lessons/ in the wheel, from notebooks/ by hatch force-include)

def _lesson_names() -> list[str]:
    return sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_the_wheel_holds_every_lesson(wheel):
    zf = zipfile.ZipFile(wheel)
    shipped = sorted(n.split("/")[-1] for n in zf.namelist()
                     if n.startswith("workbench/lessons/") and n.count("/") == 2)
    assert shipped == _lesson_names(), "add the new lesson to force-include in pyproject.toml"
    for name in shipped:
        assert zf.read(f"workbench/lessons/{name}") == (ROOT / "notebooks" / name).read_bytes()
    # the workshop dashboard (`workbench dashboard`) ships beside them
    dashboard = "dashboards/workshop.ipynb"
    assert zf.read(f"workbench/lessons/{dashboard}") == (ROOT / "notebooks" / dashboard).read_bytes()
    # outputs the lessons write beside themselves stay out of the wheel
    assert not [n for n in zf.namelist() if n.startswith(("notebooks/", "workbench/lessons/out"))]


def test_lessons_are_found_and_copied_from_an_installed_wheel(wheel, tmp_path):
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)])
    py = venv / "bin" / "python"
    purelib = _run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
                   ).stdout.strip()
    deps = [p for p in site.getsitepackages() if Path(p).is_dir()]
    Path(purelib, "zz_test_dependencies.pth").write_text("\n".join(deps) + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps",
          "--no-index", "--quiet", str(wheel)])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = (
        "import pathlib, workbench\n"
        "from workbench.lab.lessons import lesson_dir, lessons\n"
        "home = pathlib.Path(workbench.__file__).resolve().parent\n"
        "assert lesson_dir() == home / 'lessons', lesson_dir()\n"
        "from workbench.lab.dashboards import workshop_notebook\n"
        "assert workshop_notebook() == home / 'lessons' / 'dashboards' / 'workshop.ipynb'\n"
        "print(' '.join(lesson.name for lesson in lessons()))\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    out = _run([str(py), "-c", code], cwd=elsewhere, env=env)
    assert out.stdout.split() == _lesson_names()
    # the installed command prepares a workspace from them
    _run([str(venv / "bin" / "workbench"), "lab", "--dir", str(elsewhere / "ws"), "--prepare-only"],
         cwd=elsewhere, env=env)
    assert sorted(p.name for p in (elsewhere / "ws").glob("*.ipynb")) == _lesson_names()
