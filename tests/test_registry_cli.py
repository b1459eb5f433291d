"""``workbench registry list|show|diff``, run as a real subprocess on a real registry."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from workbench.deploy import ModelRegistry


def _cli(*args: str, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench.cli", "registry", *args],
                          capture_output=True, text=True, timeout=120, cwd=cwd,
                          env={**os.environ, **(env or {})})


@pytest.fixture
def registry(tmp_path, sine_model):
    reg = ModelRegistry(tmp_path / "reg")
    v1 = reg.register(sine_model, name="sine")
    reg.register(sine_model + b"\0" * 4, name="sine")
    reg.register(sine_model, name="other")
    reg.record_deployment(v1, device="sim://nano33ble", gates={"passed": False}, forced=True)
    return reg


def test_list_models_and_versions(registry):
    root = str(registry.root)
    out = _cli("list", "--root", root)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert [ln.split()[0] for ln in lines] == ["other", "sine"]
    assert "2 version(s)" in lines[1] and "latest v2" in lines[1]

    out = _cli("--root", root, "list", "sine", "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [(r["version"], r["deployments"]) for r in rows] == [(1, 1), (2, 0)]
    assert rows[0]["sha256"] == registry.get("sine", 1).sha256


def test_root_from_the_environment_and_the_default(registry, tmp_path):
    out = _cli("list", env={"WORKBENCH_REGISTRY": str(registry.root)})
    assert out.returncode == 0 and "sine" in out.stdout
    (tmp_path / "cwd").mkdir()
    env = {k: v for k, v in os.environ.items() if k != "WORKBENCH_REGISTRY"}
    out = subprocess.run([sys.executable, "-m", "workbench.cli", "registry", "list"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path / "cwd",
                         env=env)
    assert out.returncode == 2
    assert out.stderr.startswith("workbench: no model registry at registry")
    os.rename(registry.root, tmp_path / "cwd" / "registry")  # ./registry is the default
    out = subprocess.run([sys.executable, "-m", "workbench.cli", "registry", "list"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path / "cwd",
                         env=env)
    assert out.returncode == 0 and "sine" in out.stdout


def test_show_lineage_and_deployments(registry):
    out = _cli("show", "sine", "v1", "--root", str(registry.root))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("sine v1")
    assert registry.get("sine", 1).sha256 in out.stdout
    assert "sim://nano33ble  gates failed FORCED" in out.stdout
    js = json.loads(_cli("show", "sine", "--json", "--root", str(registry.root)).stdout)
    assert js["version"] == 2 and js["deployments"] == []  # latest by default


def test_diff(registry):
    root = str(registry.root)
    out = _cli("diff", "sine", "1", "2", "--root", root)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == "sine v1 -> sine v2"
    assert "size" in out.stdout and "3164 -> 3168" in out.stdout
    js = json.loads(_cli("diff", "sine:1", "other:1", "--json", "--root", root).stdout)
    assert js["a"] == "sine v1" and js["b"] == "other v1"
    assert "sha256" not in js["changed"]  # same bytes under two names


@pytest.mark.parametrize("args, message", [
    (["list", "nope"], "no model 'nope' in the registry"),
    (["show", "sine", "9"], "'sine' has no version 9 (versions: v1, v2)"),
    (["show", "sine", "nine"], "'nine' is not a version"),
    (["show", "../etc", "1"], "not a valid model name"),
    (["diff", "sine", "1"], "diff takes NAME A B"),
])
def test_bad_input_is_one_line_and_exit_2(registry, args, message):
    out = _cli(*args, "--root", str(registry.root))
    assert out.returncode == 2
    assert out.stdout == ""
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("workbench: ")
    assert message in out.stderr


def test_a_corrupt_version_is_reported_and_the_rest_listed(registry):
    bad = registry.get("sine", 2).path / "version.json"
    bad.write_text("{not json")
    out = _cli("list", "sine", "--root", str(registry.root))
    assert out.returncode == 0
    assert [ln.split()[0] for ln in out.stdout.splitlines()[1:]] == ["v1"]
    assert out.stderr.startswith("workbench: warning: skipped ")
    assert "v2" in out.stderr and "Traceback" not in out.stderr
    assert bad.read_text() == "{not json"
