"""The model registry: versions, idempotence, lineage, deployments, diffs, bad files, two
processes at once. Real files and the real sine model."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap

import pytest

from workbench import WorkbenchError
from workbench.deploy import ModelRegistry, RegistryError, RegistryWarning, UnknownModelError
from workbench.deploy.registry import FORMAT
from workbench.optimize import Measurement, variant_from_tflite
from workbench.tflite.schema import schema


def _weights_changed(model: bytes) -> bytes:
    """The model with one byte of its largest constant buffer changed (a retrained weight)."""
    m = schema().Model.GetRootAs(model, 0)
    raws = [m.Buffers(j).DataAsNumpy().tobytes() for j in range(m.BuffersLength())
            if m.Buffers(j).DataLength()]
    raw = max(raws, key=len)
    at = model.find(raw)
    assert at > 0
    out = bytearray(model)
    out[at] ^= 0x01
    return bytes(out)


def _measurement(data: bytes, accuracy: float) -> Measurement:
    return Measurement(name="sine", kind="float", model_bytes=len(data),
                       sha256=hashlib.sha256(data).hexdigest(), runtime="tflite-micro",
                       params=321, macs=320, input_dtype="float32", accuracy=accuracy,
                       arena_bytes=2048)


def test_versions_are_monotonic_and_same_bytes_are_idempotent(tmp_path, sine_model):
    reg = ModelRegistry(tmp_path / "reg")
    assert reg.models() == []
    v1 = reg.register(sine_model, name="sine")
    assert (v1.version, v1.sha256, v1.size) == (1, hashlib.sha256(sine_model).hexdigest(),
                                                len(sine_model))
    again = reg.register(bytearray(sine_model), name="sine")
    assert again.version == 1 and again.created == v1.created
    other = _weights_changed(sine_model)
    v2 = reg.register(other, name="sine")
    assert v2.version == 2
    assert [v.version for v in reg.versions("sine")] == [1, 2]
    assert reg.latest("sine").sha256 == hashlib.sha256(other).hexdigest()
    assert reg.get("sine", "v1").read_model() == sine_model
    assert reg.get("sine", "2").read_model() == other
    assert reg.get("sine", "latest").version == 2
    # the same bytes under another name is another model
    assert reg.register(sine_model, name="sine-copy").version == 1
    assert reg.models() == ["sine", "sine-copy"]
    assert reg.find(v2.sha256).label == "sine v2"


def test_files_are_readable_without_the_package(tmp_path, sine_model):
    reg = ModelRegistry(tmp_path)
    variant = variant_from_tflite("sine-f32", sine_model, kind="float", notes=["the TFLM sine"])
    v = reg.register(variant, measurement=_measurement(sine_model, 0.9))
    folder = tmp_path / "sine-f32" / "v1"
    assert v.path == folder
    assert (folder / "model.tflite").read_bytes() == sine_model
    doc = json.loads((folder / "version.json").read_text())
    assert doc["format"] == FORMAT and doc["format_version"] == 1
    assert doc["name"] == "sine-f32" and doc["version"] == 1
    assert doc["sha256"] == hashlib.sha256(sine_model).hexdigest()
    assert doc["lineage"]["variant"] == {"name": "sine-f32", "kind": "float",
                                         "notes": ["the TFLM sine"]}
    assert doc["lineage"]["measurement"]["accuracy"] == 0.9
    assert doc["model_file"] == "model.tflite"
    # no temporary files are left behind
    assert sorted(p.name for p in (tmp_path / "sine-f32").iterdir()) == ["v1"]


def test_lineage_snapshot_and_training_record(tmp_path, sine_model):
    record = tmp_path / "model.json"
    record.write_text(json.dumps({"model_name": "sine", "snapshot_id": "ab" * 32}))
    reg = ModelRegistry(tmp_path / "reg")
    v = reg.register(sine_model, name="sine", training_record=record)
    assert v.snapshot == "ab" * 32  # taken from the record
    assert v.training_record == {"path": str(record.resolve()),
                                 "sha256": hashlib.sha256(record.read_bytes()).hexdigest()}
    assert reg.get("sine", 1).training_record == v.training_record
    with pytest.raises(RegistryError, match="trained on snapshot abababab"):
        reg.register(_weights_changed(sine_model), name="sine", training_record=record,
                     snapshot="cd" * 32)
    with pytest.raises(RegistryError, match="not JSON"):
        bad = tmp_path / "bad.json"
        bad.write_text("{")
        reg.register(sine_model, name="other", training_record=bad)
    with pytest.raises(RegistryError, match="measurement is of other bytes"):
        reg.register(sine_model, name="other", measurement=_measurement(b"x", 0.5))
    assert reg.models() == ["sine"]


def test_deployments_are_appended_per_version(tmp_path, sine_model):
    reg = ModelRegistry(tmp_path)
    v1 = reg.register(sine_model, name="sine")
    v2 = reg.register(_weights_changed(sine_model), name="sine")

    class Report:  # anything with to_dict(), like a gate report
        def to_dict(self):
            return {"passed": False, "gates": [{"name": "accuracy", "passed": False,
                                                "value": 0.71, "threshold": 0.8}]}

    reg.record_deployment(v1, device="sim://nano33ble", gates=[{"name": "fits", "passed": True}],
                          result={"slot": 1}, time="2026-01-01T00:00:00+00:00")
    reg.record_deployment(v2, device="/dev/ttyACM0", gates=Report(), forced=True,
                          time="2026-01-02T00:00:00+00:00")
    deps = reg.deployments("sine")
    assert [(d.version, d.device, d.forced) for d in deps] == [
        (1, "sim://nano33ble", False), (2, "/dev/ttyACM0", True)]
    assert deps[1].gates["gates"][0]["value"] == 0.71
    assert [d.device for d in reg.deployments("sine", 2)] == ["/dev/ttyACM0"]
    lines = (v2.path / "deployments.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["forced"] is True

    # a torn last line (a crash mid-write) is skipped and reported, the rest is kept
    with open(v2.path / "deployments.jsonl", "a") as f:
        f.write('{"format": "workbench-depl')
    with pytest.warns(RegistryWarning, match="line 2"):
        assert len(reg.deployments("sine")) == 2

    with pytest.raises(RegistryError, match="needs device"):
        reg.record_deployment(v1, device="")
    with pytest.raises(RegistryError, match="cannot record object"):
        reg.record_deployment(v1, device="x", result=object())


def test_unknown_names_and_versions(tmp_path, sine_model):
    reg = ModelRegistry(tmp_path)
    reg.register(sine_model, name="sine")
    with pytest.raises(UnknownModelError, match="no model 'kws'.*registered: sine") as e:
        reg.versions("kws")
    assert isinstance(e.value, KeyError) and isinstance(e.value, WorkbenchError)
    with pytest.raises(KeyError, match="no version 7 .versions: v1"):
        reg.get("sine", 7)
    with pytest.raises(RegistryError, match="not a version"):
        reg.get("sine", "seven")
    with pytest.raises(RegistryError, match="needs name="):
        reg.register(sine_model)
    with pytest.raises(RegistryError, match="not a usable .tflite"):
        reg.register(b"not a model at all", name="junk")
    assert reg.models() == ["sine"]


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", "", ".hidden", "/abs"])
def test_names_that_would_escape_the_root_are_refused(tmp_path, sine_model, name):
    root = tmp_path / "reg"
    with pytest.raises(RegistryError, match="not a valid model name"):
        ModelRegistry(root).register(sine_model, name=name)
    assert sorted(p.name for p in tmp_path.iterdir()) == (["reg"] if root.exists() else [])
    assert not root.exists() or list(root.iterdir()) == []


def test_a_symlinked_model_folder_leading_outside_is_refused(tmp_path, sine_model):
    root = tmp_path / "reg"
    root.mkdir()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", root / "sine")
    with pytest.raises(RegistryError, match="leads outside"):
        ModelRegistry(root).register(sine_model, name="sine")
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_corrupt_version_json_is_skipped_reported_and_kept(tmp_path, sine_model):
    reg = ModelRegistry(tmp_path)
    v1 = reg.register(sine_model, name="sine")
    (v1.path / "version.json").write_text('{"format": "workbench-model-vers')
    with pytest.warns(RegistryWarning, match="unreadable"):
        assert reg.versions("sine") == []
    problems = reg.problems("sine")
    assert list(problems) == [v1.path]
    with pytest.raises(RegistryError, match="cannot be read"):
        reg.get("sine", 1)
    # its number is not reused; the same bytes get a new, readable version
    v2 = reg.register(sine_model, name="sine")  # (warned once already, by this registry)
    assert v2.version == 2
    assert (v1.path / "version.json").read_text() == '{"format": "workbench-model-vers'
    # a newer schema is refused by name, not misread
    doc = json.loads((v2.path / "version.json").read_text())
    doc["format_version"] = 99
    (v2.path / "version.json").write_text(json.dumps(doc))
    with pytest.warns(RegistryWarning, match="format_version 99"):
        assert reg.versions("sine") == []


def test_changed_model_bytes_are_detected_on_read(tmp_path, sine_model):
    reg = ModelRegistry(tmp_path)
    v = reg.register(sine_model, name="sine")
    v.model_path.write_bytes(_weights_changed(sine_model))
    with pytest.raises(RegistryError, match="no longer matches"):
        reg.get("sine", 1).read_model()


def test_diff_names_fields_and_changed_tensors(tmp_path, sine_model):
    reg = ModelRegistry(tmp_path)
    other = _weights_changed(sine_model)
    a = reg.register(sine_model, name="sine", measurement=_measurement(sine_model, 0.9))
    b = reg.register(other, name="sine", measurement=_measurement(other, 0.8))
    d = reg.diff(a, b)
    assert (d["a"], d["b"]) == ("sine v1", "sine v2")
    assert d["changed"]["accuracy"] == [0.9, 0.8]
    assert d["changed"]["sha256"] == [a.sha256, b.sha256]
    assert "size" not in d["changed"] and "arena_bytes" not in d["changed"]
    assert d["ops"] == {"added": [], "removed": []}
    changed = d["tensors"]["changed"]
    assert len(changed) == 1
    (what,) = changed.values()
    assert set(what) == {"data_sha256"}
    assert reg.diff(a, a)["changed"] == {} and reg.diff(a, a)["tensors"]["changed"] == {}


_REGISTER = textwrap.dedent("""
    import sys
    from importlib import resources
    from workbench.deploy import ModelRegistry
    data = (resources.files("tflite_micro.python.tflite_micro") / "sine_float.tflite").read_bytes()
    reg = ModelRegistry(sys.argv[1])
    out = [reg.register(data, name="sine").version]  # the same bytes in both processes
    for i in range(int(sys.argv[2]), int(sys.argv[2]) + 6):
        # bytes after the flatbuffer: another model to the registry, still a valid one
        out.append(reg.register(data + bytes([i]) * 4, name="sine").version)
    print(" ".join(map(str, out)))
""")


def test_two_processes_registering_at_once_get_distinct_versions(tmp_path):
    root = tmp_path / "reg"
    procs = [subprocess.Popen([sys.executable, "-c", _REGISTER, str(root), str(start)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for start in (1, 101)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        outs.append([int(x) for x in out.split()])
    reg = ModelRegistry(root)
    versions = reg.versions("sine")
    # each distinct byte string got exactly one version, numbered 1..N without gaps
    assert [v.version for v in versions] == list(range(1, len(versions) + 1))
    assert len({v.sha256 for v in versions}) == len(versions)
    # both got the same version for the same bytes, and 12 more between them
    assert outs[0][0] == outs[1][0]
    assert len(versions) == 1 + 12
    assert sorted(outs[0][1:] + outs[1][1:]) == [v.version for v in versions
                                                  if v.version != outs[0][0]]
    assert sorted(p.name for p in (root / "sine").iterdir()
                  if p.name.startswith(".")) == []
