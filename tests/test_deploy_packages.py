"""Deployment packages: the C-array package compiles with the system C++ compiler, holds the
model byte for byte, 16-byte aligned, and names an arena TFLite Micro really runs in."""

from __future__ import annotations

import hashlib
import re
import shutil
import struct
import subprocess

import pytest

from workbench.boards import UnknownBoardError
from workbench.deploy import ModelRegistry, PackageError, create_deployment_package
from workbench.deploy.packages import (
    arena_with_margin,
    resolver_method,
)
from workbench.optimize import Measurement
from workbench.tflite import TflmRunner, min_arena

_CHECK = r"""
#include <cstdint>
#include <cstdio>
#include "model_data.h"

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  if (reinterpret_cast<std::uintptr_t>(g_model) % 16 != 0) { std::puts("misaligned"); return 3; }
  if (kTensorArenaSize % 16 != 0) { std::puts("arena not a multiple of 16"); return 4; }
  alignas(16) static unsigned char tensor_arena[kTensorArenaSize];
  (void)tensor_arena;
  std::FILE* f = std::fopen(argv[1], "wb");
  if (!f) return 5;
  if (std::fwrite(g_model, 1, g_model_len, f) != g_model_len) return 6;
  std::fclose(f);
  std::printf("%u %u\n", g_model_len, kTensorArenaSize);
  return 0;
}
"""


def _compile_and_dump(pkg_dir, tmp_path) -> tuple[bytes, int, int]:
    """Compile the package with a check program (warnings are errors); run it; return the
    bytes it wrote from g_model, g_model_len and kTensorArenaSize."""
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("no g++ on this machine")
    (tmp_path / "check.cc").write_text(_CHECK)
    exe = tmp_path / "check"
    build = subprocess.run([gxx, "-std=c++11", "-Wall", "-Wextra", "-Werror", "-pedantic",
                            "-I", str(pkg_dir), str(tmp_path / "check.cc"),
                            str(pkg_dir / "model_data.cc"), "-o", str(exe)],
                           capture_output=True, text=True, timeout=120)
    assert build.returncode == 0, build.stderr
    dump = tmp_path / "dumped.tflite"
    run = subprocess.run([str(exe), str(dump)], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stdout + run.stderr
    length, arena = map(int, run.stdout.split())
    return dump.read_bytes(), length, arena


def test_c_array_package_compiles_and_holds_the_model(tmp_path, sine_model):
    pkg = create_deployment_package(sine_model, "c-array", tmp_path / "pkg")
    assert pkg.path == tmp_path / "pkg" and pkg.target == "c-array"
    assert sorted(f.name for f in pkg.files) == ["README.md", "model_data.cc", "model_data.h"]
    assert sorted(p.name for p in pkg.path.iterdir()) == ["README.md", "model_data.cc",
                                                          "model_data.h"]
    assert pkg.sha256 == hashlib.sha256(sine_model).hexdigest()
    # aligned by declaration, not by luck of the linker
    assert "alignas(16) const unsigned char g_model[] = {" in (pkg.path / "model_data.cc").read_text()
    dumped, length, arena = _compile_and_dump(pkg.path, tmp_path)
    assert dumped == sine_model and length == len(sine_model)
    assert arena == pkg.arena_bytes
    # the arena is the real need plus the documented margin, and TFLM runs in it
    needed = min_arena(sine_model, 1 << 20).needed_bytes
    assert arena == arena_with_margin(needed) > needed
    TflmRunner(sine_model, arena)  # raises if the model does not run in that arena
    # no temporary folder left beside it
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_readme_says_what_to_do(tmp_path, sine_model):
    pkg = create_deployment_package(sine_model, "nano33ble", tmp_path / "pkg")
    text = (pkg.path / "README.md").read_text()
    assert text == pkg.readme
    assert '#include "model_data.h"' in text
    assert "alignas(16) static uint8_t tensor_arena[kTensorArenaSize];" in text
    assert "MicroMutableOpResolver<1>" in text and "resolver.AddFullyConnected();" in text
    assert f"{pkg.arena_bytes:,} bytes" in text
    assert "Arduino Nano 33 BLE Sense" in text and "Both fit." in text
    assert pkg.ops == ["FULLY_CONNECTED"]
    assert "float32 [1, 1]" in text


def test_a_registered_version_uses_its_measured_arena(tmp_path, sine_model):
    reg = ModelRegistry(tmp_path / "reg")
    m = Measurement(name="sine", kind="float", model_bytes=len(sine_model),
                    sha256=hashlib.sha256(sine_model).hexdigest(), runtime="tflite-micro",
                    params=321, macs=320, input_dtype="float32", arena_bytes=4000)
    v = reg.register(sine_model, name="sine", measurement=m)
    pkg = create_deployment_package(v, "nucleo-l4r5zi", tmp_path / "pkg")
    assert pkg.arena_bytes == arena_with_margin(4000)
    assert re.search(rf"kTensorArenaSize = {pkg.arena_bytes};", (pkg.path / "model_data.h")
                     .read_text())
    assert "sine-v1" in pkg.readme and "NUCLEO" in pkg.readme
    dumped, _, arena = _compile_and_dump(pkg.path, tmp_path)
    assert dumped == sine_model and arena == pkg.arena_bytes


def test_resolver_method_names():
    assert resolver_method("CONV_2D") == "AddConv2D"
    assert resolver_method("DEPTHWISE_CONV_2D") == "AddDepthwiseConv2D"
    assert resolver_method("MAX_POOL_2D") == "AddMaxPool2D"
    assert resolver_method("FULLY_CONNECTED") == "AddFullyConnected"
    assert resolver_method("RELU6") == "AddRelu6"
    assert resolver_method("UNIDIRECTIONAL_SEQUENCE_LSTM") == "AddUnidirectionalSequenceLSTM"
    assert resolver_method("CUSTOM:TFLite_Detection_PostProcess") is None


def test_bad_targets_models_and_folders_are_refused(tmp_path, sine_model):
    with pytest.raises(UnknownBoardError):
        create_deployment_package(sine_model, "nano33", tmp_path / "a")
    with pytest.raises(PackageError, match="port= is for a Linux board"):
        create_deployment_package(sine_model, "c-array", tmp_path / "b", port=5555)
    with pytest.raises(PackageError, match="TCP port 1..65535"):
        create_deployment_package(sine_model, "rpi4", tmp_path / "b", port=70000)
    assert not (tmp_path / "b").exists()
    with pytest.raises(PackageError, match="cannot package"):
        create_deployment_package(b"TFL3 but not a model", "c-array", tmp_path / "c")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    with pytest.raises(PackageError, match="not empty"):
        create_deployment_package(sine_model, "c-array", busy, arena_bytes=2000)
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy"]


def _parse_uf2_per_spec(blob: bytes) -> tuple[int, int, bytes]:
    """An independent UF2 reader written from the specification (github.com/microsoft/uf2):
    checks every block and returns (family id, start address, the bytes, contiguous)."""
    assert len(blob) % 512 == 0 and blob
    n = len(blob) // 512
    start = family = None
    data = bytearray()
    for i in range(n):
        block = blob[i * 512:(i + 1) * 512]
        m0, m1, flags, addr, size, blockno, count, fam = struct.unpack_from("<8I", block)
        assert (m0, m1) == (0x0A324655, 0x9E5D5157)
        assert struct.unpack_from("<I", block, 508)[0] == 0x0AB16F30
        assert flags == 0x2000  # familyID present; not-main-flash, file container: no
        assert (blockno, count) == (i, n)
        assert size == 256 and addr % 256 == 0  # RP2040 boot ROM: whole 256-byte pages
        assert block[32 + size:508] == bytes(476 - size)
        if start is None:
            start, family = addr, fam
        assert fam == family and addr == start + 256 * i
        data += block[32:32 + size]
    return family, start, bytes(data)


def test_pico_package_is_a_uf2_of_the_model_slot(tmp_path, sine_model):
    from workbench.boards import get_board
    from workbench.deploy.packages import UF2_TARGETS, slot_address

    pico = get_board("pico")
    pkg = create_deployment_package(sine_model, "pico", tmp_path / "pkg", arena_bytes=2000)
    assert sorted(f.name for f in pkg.files) == ["README.md", "model-slot-A.uf2", "model.tflite"]
    blob = (pkg.path / "model-slot-A.uf2").read_bytes()
    slot_a = 0x10000000 + pico.model_slots.firmware_flash_bytes
    assert slot_address(pico, 0) == slot_a
    assert slot_address(pico, 1) == slot_a + pico.model_slots.slot_bytes

    family, start, data = _parse_uf2_per_spec(blob)
    assert (family, start) == (0xE48BFF56, slot_a) == (UF2_TARGETS["pico"]["family_id"], slot_a)
    padded = sine_model + bytes(-len(sine_model) % 256)
    assert data == padded
    assert (pkg.path / "model.tflite").read_bytes() == sine_model
    assert f"0x{slot_a:08x}" in pkg.readme and "RPI-RP2" in pkg.readme
    assert "picotool load -x model-slot-A.uf2" in pkg.readme

    b = create_deployment_package(sine_model, "pico", tmp_path / "b", arena_bytes=2000, slot=1)
    _, start_b, _ = _parse_uf2_per_spec((b.path / "model-slot-B.uf2").read_bytes())
    assert start_b == slot_a + pico.model_slots.slot_bytes
    with pytest.raises(PackageError, match="slots 0..1"):
        create_deployment_package(sine_model, "pico", tmp_path / "c", arena_bytes=2000, slot=2)


def test_pico_uf2_reads_back_with_adafruit_uf2(tmp_path, sine_model, monkeypatch):
    from workbench.boards import get_board
    from workbench.deploy.packages import slot_address

    uf2conv = pytest.importorskip("adafruit_uf2.uf2conv")
    slot_a = slot_address(get_board("pico"), 0)
    pkg = create_deployment_package(sine_model, "pico", tmp_path / "pkg", arena_bytes=2000)
    blob = (pkg.path / "model-slot-A.uf2").read_bytes()
    assert uf2conv.is_uf2(blob)
    # its reader and writer keep their settings in module globals
    monkeypatch.setattr(uf2conv, "familyid", 0)
    monkeypatch.setattr(uf2conv, "appstartaddr", 0)
    data = uf2conv.convert_from_uf2(blob)
    assert data[:len(sine_model)] == sine_model and not any(data[len(sine_model):])
    assert uf2conv.appstartaddr == slot_a
    # its writer, given the same address and family, produces the same bytes
    monkeypatch.setattr(uf2conv, "familyid", 0xE48BFF56)
    assert uf2conv.convert_to_uf2(sine_model) == blob


# ------------------------------------------------------------------ slot layout from the catalog
def test_the_pico_slot_address_is_the_catalogs_offset_over_the_flash_base(tmp_path, sine_model):
    import dataclasses

    from workbench.boards import Board, get_board
    from workbench.deploy.packages import slot_address

    pico = get_board("pico")
    slots = pico.model_slots
    assert slots.slot_offsets and slots.layout_assumed         # a design choice, said so
    assert [slot_address(pico, i) for i in range(slots.count)] == \
        [0x10000000 + o for o in slots.slot_offsets]
    # the address follows the catalog, not a formula: another layout moves the UF2
    moved = dataclasses.replace(pico, model_slots=dataclasses.replace(
        slots, slot_offsets=(0x80000, 0x140000)))
    assert slot_address(moved, 1) == 0x10140000
    bare = Board.from_dict({**pico.to_dict(), "model_slots": {
        k: v for k, v in slots.to_dict().items()
        if k not in ("slot_offsets", "layout_source")}})
    with pytest.raises(PackageError, match="slot_offsets"):
        slot_address(bare, 0)
    pkg = create_deployment_package(sine_model, "pico", tmp_path / "pkg", arena_bytes=2000)
    assert slots.layout_source in pkg.readme


@pytest.mark.parametrize("change, field, problem", [
    ({"slot_offsets": [0x40000]}, "model_slots.slot_offsets", "1 offsets for 2 slots"),
    ({"slot_offsets": [0x40001, 0x100000]}, "model_slots.slot_offsets[0]", "flash sector"),
    ({"slot_offsets": [0x40000, 0x50000]}, "model_slots.slot_offsets", "overlap"),
    ({"slot_offsets": [0x40000, 0x1F0000]}, "model_slots.slot_offsets[1]", "past flash_bytes"),
    ({"layout_source": None}, "model_slots.layout_source", "a slot layout needs"),
    ({"partition_names": ["model_a", "model_a"]}, "model_slots.partition_names", "distinct"),
    ({"partition_names": ["a-b", "c"]}, "model_slots.partition_names", "letters, digits"),
])
def test_the_catalog_checks_the_slot_layout(change, field, problem):
    from workbench.boards import Board, CatalogError, get_board

    data = get_board("pico").to_dict()
    for key, value in change.items():
        if value is None:
            del data["model_slots"][key]
        else:
            data["model_slots"][key] = value
    with pytest.raises(CatalogError, match=re.escape(f"'{field}'") + ".*" + problem):
        Board.from_dict(data)


# ------------------------------------------------------------------ ESP32
GEN_ESP32PART_COLUMNS = ("name", "type", "subtype", "offset", "size", "flags")


def _parse_partition_csv(text: str) -> list[dict]:
    """ESP-IDF's gen_esp32part.py CSV, as its documentation gives it: '#' comments, then
    Name, Type, SubType, Offset, Size, Flags per line (Flags may be empty); numbers in hex
    with 0x, or decimal with K/M."""
    def number(v: str) -> int:
        v = v.strip()
        if v.lower().startswith("0x"):
            return int(v, 16)
        mult = {"K": 1024, "M": 1024 * 1024}.get(v[-1:].upper(), 1)
        return int(v[:-1] if mult > 1 else v) * mult

    rows = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cells = [c.strip() for c in line.split(",")]
        assert len(cells) == len(GEN_ESP32PART_COLUMNS), line
        row = dict(zip(GEN_ESP32PART_COLUMNS, cells))
        row["offset"], row["size"] = number(row["offset"]), number(row["size"])
        rows.append(row)
    return rows


@pytest.mark.parametrize("target", ["esp32-devkitc", "esp-eye"])
def test_esp32_package_is_the_partition_image_its_table_lines_and_the_esptool_command(
        target, tmp_path, sine_model):
    from workbench.boards import get_board
    from workbench.deploy.packages import ESP32_DATA_ALIGN, esp32_partition_lines

    board = get_board(target)
    slots = board.model_slots
    pkg = create_deployment_package(sine_model, target, tmp_path / "a", arena_bytes=2000)
    assert sorted(f.name for f in pkg.files) == ["README.md", "model-slot-A.bin", "model.tflite",
                                                 "partitions.csv"]
    assert (pkg.path / "model-slot-A.bin").read_bytes() == sine_model   # not padded
    rows = _parse_partition_csv((pkg.path / "partitions.csv").read_text())
    assert [r["name"] for r in rows] == list(slots.partition_names)
    for row, offset in zip(rows, slots.slot_offsets):
        assert (row["type"], row["subtype"], row["flags"]) == ("data", "undefined", "")
        assert row["offset"] == offset and row["size"] == slots.slot_bytes
        assert row["offset"] % ESP32_DATA_ALIGN == 0 and len(row["name"]) <= 16
    assert rows[0]["offset"] + rows[0]["size"] <= rows[1]["offset"]
    assert rows[1]["offset"] + rows[1]["size"] <= board.flash_bytes
    assert (pkg.path / "partitions.csv").read_text().count("\n") == 2 + len(rows)
    assert esp32_partition_lines(board)[0] == \
        f"model_a, data, undefined, 0x{slots.slot_offsets[0]:x}, 0x{slots.slot_bytes:x},"
    command = (f"esptool --chip esp32 --port PORT write-flash 0x{slots.slot_offsets[0]:x} "
               "model-slot-A.bin")
    assert command in pkg.readme and slots.layout_source in pkg.readme
    b = create_deployment_package(sine_model, target, tmp_path / "b", arena_bytes=2000, slot=1)
    assert f"write-flash 0x{slots.slot_offsets[1]:x} model-slot-B.bin" in b.readme


def _readme_command(readme: str) -> list[str]:
    [line] = [ln for ln in readme.splitlines() if ln.startswith("esptool ")]
    return line.split()


def test_esptool_accepts_the_readme_command(tmp_path, sine_model):
    """esptool 5 parses the README's command line; without a board it stops at the port.
    Its merge-bin, given the same address and file, places the model where write-flash would."""
    import os
    import sys

    esptool = shutil.which("esptool", path=os.path.dirname(sys.executable))
    if esptool is None:
        pytest.skip("esptool is not installed beside this Python")
    pkg = create_deployment_package(sine_model, "esp32-devkitc", tmp_path / "p", arena_bytes=2000)
    cmd = _readme_command(pkg.readme)
    port = str(tmp_path / "no-such-port")
    cmd[cmd.index("PORT")] = port
    run = subprocess.run([esptool, *cmd[1:]], cwd=pkg.path, capture_output=True, text=True,
                         timeout=60)
    out = run.stdout + run.stderr
    assert run.returncode != 0 and "could not open port" in out, out   # arguments were fine
    assert "Usage" not in out and "Invalid" not in out
    # a typo in the command is refused as usage, so the check above can fail
    bad = subprocess.run([esptool, *cmd[1:-1], "missing.bin"], cwd=pkg.path,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "could not open port" not in bad.stdout + bad.stderr
    # merge-bin with the same address/file pair: a raw image starting at that address
    address, image = cmd[-2], cmd[-1]
    merged = tmp_path / "merged.bin"
    subprocess.run([esptool, "--chip", "esp32", "merge-bin", "-o", str(merged),
                    "--target-offset", address, address, image], cwd=pkg.path, check=True,
                   capture_output=True, timeout=60)
    assert merged.read_bytes() == sine_model
    assert int(address, 16) % 0x1000 == 0
