"""The board catalog: packaged data is sane, the loader rejects bad data clearly."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from workbench.boards import (
    Board,
    CatalogError,
    UnknownBoardError,
    UsbId,
    get_board,
    load_catalog,
    match_usb,
)
from workbench.boards.catalog import KERNELS, RUNTIME_KERNELS, RUNTIMES

REQUIRED = {
    "nano33ble", "pico", "esp32-devkitc", "esp-eye", "sparkfun-edge", "himax-we1",
    "coral-micro", "nucleo-l4r5zi", "nrf5340dk", "rpi4", "jetson-nano",
}


@pytest.fixture(scope="module")
def catalog() -> dict[str, Board]:
    return load_catalog()


# ---------------------------------------------------------------- packaged data

def test_required_boards_present(catalog):
    assert REQUIRED <= set(catalog)
    for board_id, board in catalog.items():
        assert board.id == board_id


@pytest.mark.parametrize("board_id", sorted(REQUIRED))
def test_slot_layout_fits(catalog, board_id):
    b = catalog[board_id]
    ms = b.model_slots
    assert ms.count == 2  # slots A and B
    assert ms.firmware_flash_bytes + ms.count * ms.slot_bytes <= b.flash_bytes
    assert ms.firmware_ram_bytes + ms.arena_bytes <= b.ram_bytes
    assert ms.slot_bytes > 0 and ms.arena_bytes > 0


@pytest.mark.parametrize("board_id", sorted(REQUIRED))
def test_runtime_and_deploy_follow_kind(catalog, board_id):
    b = catalog[board_id]
    expected = {"mcu": ("tflite-micro", "serial"), "linux": ("litert", "ssh")}[b.kind]
    assert (b.runtime, b.deploy) == expected


@pytest.mark.parametrize("board_id", sorted(REQUIRED))
def test_kernels_are_named_from_one_vocabulary(catalog, board_id):
    b = catalog[board_id]
    assert b.runtime in RUNTIMES and b.kernels in KERNELS
    assert b.kernels in RUNTIME_KERNELS[b.runtime]


@pytest.mark.parametrize("board_id", sorted(REQUIRED))
def test_hardware_figures_present_with_a_source(catalog, board_id):
    b = catalog[board_id]
    figures = [b.active_power]
    if b.kind == "mcu":
        figures += [b.weight_memory, b.code_density]
    else:
        assert b.weight_memory is None and b.code_density is None
    for fig in figures:
        assert fig is not None, board_id
        assert fig.source.strip() and ". " not in fig.source  # one clause, quoted in `basis`
        assert fig.assumed == fig.source.lower().startswith("assumed")
    assert b.active_power.mw > 0 and b.active_power.clock_hz > 0
    if b.kind == "mcu":
        mem = b.weight_memory
        assert mem.kind in ("flash", "xip", "sram")
        if mem.kind == "flash":
            assert mem.zero_wait_hz > 0 and mem.line_bytes > 0 and mem.miss_ns == 0
        elif mem.kind == "xip":
            assert mem.miss_ns > 0 and mem.line_bytes > 0 and mem.zero_wait_hz == 0
        assert b.code_density.factor > 0


def test_unverified_figures_say_assumed(catalog):
    # Engineering guesses must not read like citations.
    assert catalog["himax-we1"].active_power.assumed
    assert catalog["coral-micro"].active_power.assumed
    assert catalog["himax-we1"].weight_memory.assumed
    assert not catalog["nucleo-l4r5zi"].active_power.assumed   # measured by MLPerf Tiny
    assert not catalog["nucleo-l4r5zi"].weight_memory.assumed  # reference-manual table


def test_nano33ble_matches_public_spec(catalog):
    b = catalog["nano33ble"]
    assert (b.mcu, b.core, b.clock_hz) == ("nRF52840", "Cortex-M4F", 64_000_000)
    assert (b.flash_bytes, b.ram_bytes, b.fpu) == (1 << 20, 256 << 10, True)
    assert b.flashing.tool == "bossac"
    assert b.sensor("accel").part == "LSM9DS1"
    assert b.sensor("accel").rate_hz == 119.0
    assert b.sensor("gyro").rate_hz == 119.0
    assert b.sensor("mic").rate_hz == 16000.0
    roles = {str(u): u.role for u in b.usb}
    assert roles["2341:805A"] == "application"
    assert roles["2341:005A"] == "bootloader"


def test_sensor_conventions(catalog):
    for b in catalog.values():
        ids = [s.id for s in b.sensors]
        if "gyro" in ids:
            assert "accel" in ids, b.id
        for s in b.sensors:
            assert s.rate_hz in s.rates_hz and s.scale > 0 and s.channels
        if "mic" in ids:
            assert b.sensor("mic").rate_hz == 16000.0, b.id
        if "accel" in ids:
            assert b.sensor("accel").channels == ("x", "y", "z")
    for bare in ("pico", "nucleo-l4r5zi"):
        assert not {"accel", "gyro", "mic"} & {s.id for s in catalog[bare].sensors}


def test_sensor_lookup_error_lists_sensors(catalog):
    with pytest.raises(KeyError) as info:
        catalog["sparkfun-edge"].sensor("gyro")
    message = str(info.value)
    assert "sparkfun-edge" in message and "accel" in message and "mic" in message


def test_summary_is_one_informative_line(catalog):
    text = catalog["nano33ble"].summary()
    assert "\n" not in text
    assert text.startswith("Arduino Nano 33 BLE Sense: nRF52840 Cortex-M4F @ 64 MHz")
    assert "1 MB flash" in text and "256 KB RAM" in text
    assert "accel gyro mag mic" in text
    assert "4x Cortex-A72 @ 1.5 GHz" in catalog["rpi4"].summary()


# ---------------------------------------------------------------- lookups

def test_usb_id_str():
    assert str(UsbId(0x2341, 0x805A, "application")) == "2341:805A"
    assert str(UsbId(0x2E8A, 0x3, "bootloader")) == "2E8A:0003"


def test_match_usb():
    assert [b.id for b in match_usb(0x2341, 0x805A)] == ["nano33ble"]
    assert [b.id for b in match_usb(0x2341, 0x005A)] == ["nano33ble"]  # bootloader role
    assert match_usb(0x2E8A, 0x0003)[0].id == "pico"
    assert match_usb(0xDEAD, 0xBEEF) == []
    assert match_usb(0x2341, 0xBEEF) == []


def test_get_board():
    assert get_board("pico").core == "Cortex-M0+"


def test_unknown_board_suggests_closest():
    with pytest.raises(UnknownBoardError) as info:
        get_board("nano33bl")
    assert isinstance(info.value, KeyError)
    message = str(info.value)
    assert "did you mean 'nano33ble'" in message
    for board_id in REQUIRED:
        assert board_id in message


def test_unknown_board_without_near_match_lists_ids():
    with pytest.raises(UnknownBoardError) as info:
        get_board("zzzzzz")
    assert "did you mean" not in str(info.value)
    assert "esp32-devkitc" in str(info.value)


def test_default_load_is_cached_but_returns_fresh_dicts():
    first, second = load_catalog(), load_catalog()
    assert first is not second
    assert first["pico"] is second["pico"]
    first.pop("pico")
    assert "pico" in load_catalog()


# ---------------------------------------------------------------- round trips

@pytest.mark.parametrize("board_id", sorted(REQUIRED))
def test_to_dict_round_trips_through_json(catalog, board_id):
    board = catalog[board_id]
    data = board.to_dict()
    text = json.dumps(data)
    assert json.loads(text) == data
    assert Board.from_dict(json.loads(text)) == board


def test_catalog_written_back_loads_identically(tmp_path, catalog):
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump({"boards": [b.to_dict() for b in catalog.values()]}))
    assert load_catalog(path) == catalog


# ---------------------------------------------------------------- validation

def _nano() -> dict:
    return load_catalog()["nano33ble"].to_dict()


def _set_slot(value):
    def mutate(d):
        d["model_slots"]["slot_bytes"] = value
    return mutate


CASES = {
    "missing field": (lambda d: d.pop("clock_hz"), "clock_hz", "missing"),
    "missing nested field": (lambda d: d["flashing"].pop("tool"), "flashing.tool", "missing"),
    "slots exceed flash": (_set_slot(600 * 1024), "model_slots.slot_bytes", "exceeds flash"),
    "arena exceeds ram": (lambda d: d["model_slots"].update(arena_bytes=1 << 20),
                          "model_slots.arena_bytes", "exceeds ram"),
    "bad vid": (lambda d: d["usb"][0].update(vid="23G1"), "usb[0].vid", "hex"),
    "unquoted vid": (lambda d: d["usb"][0].update(vid=2341), "usb[0].vid", "hex"),
    "long pid": (lambda d: d["usb"][1].update(pid="805A1"), "usb[1].pid", "hex"),
    "bad role": (lambda d: d["usb"][0].update(role="app"), "usb[0].role", "application"),
    "negative size": (lambda d: d.update(flash_bytes=-1), "flash_bytes", ">= 1"),
    "negative slot": (lambda d: d["model_slots"].update(firmware_ram_bytes=-5),
                      "model_slots.firmware_ram_bytes", ">= 0"),
    "wrong type": (lambda d: d.update(fpu="yes"), "fpu", "true or false"),
    "bool as int": (lambda d: d.update(core_count=True), "core_count", "integer"),
    "bad kind": (lambda d: d.update(kind="fpga"), "kind", "mcu"),
    "rate not offered": (lambda d: d["sensors"][0].update(rate_hz=100),
                         "sensors[0].rate_hz", "rates_hz"),
    "bad dtype": (lambda d: d["sensors"][0].update(dtype="int12"), "sensors[0].dtype", "int16"),
    "duplicate sensor": (lambda d: d["sensors"].append(dict(d["sensors"][0])),
                         "sensors[8].id", "duplicate"),
    "unknown field": (lambda d: d.update(flash_kb=1024), "flash_kb", "unknown"),
    "unknown kernels": (lambda d: d.update(kernels="cmsis"), "kernels", "cmsis-nn"),
    "kernels of another runtime": (lambda d: d.update(kernels="xnnpack"), "kernels",
                                   "tflite-micro is not built with 'xnnpack'"),
    "bad memory kind": (lambda d: d["weight_memory"].update(kind="rom"),
                        "weight_memory.kind", "flash, xip, sram"),
    "flash without wait states": (lambda d: d["weight_memory"].pop("zero_wait_hz"),
                                  "weight_memory.zero_wait_hz", "missing"),
    "field of another memory kind": (lambda d: d["weight_memory"].update(miss_ns=100.0),
                                     "weight_memory.miss_ns", "not used with kind 'flash'"),
    "memory without source": (lambda d: d["weight_memory"].pop("source"),
                              "weight_memory.source", "missing"),
    "empty power source": (lambda d: d["active_power"].update(source=" "),
                           "active_power.source", "non-empty"),
    "negative power": (lambda d: d["active_power"].update(mw=-1.0), "active_power.mw", "> 0"),
    "power clock as text": (lambda d: d["active_power"].update(clock_hz="64 MHz"),
                            "active_power.clock_hz", "integer"),
    "zero code density": (lambda d: d["code_density"].update(factor=0),
                          "code_density.factor", "> 0"),
    "unknown density field": (lambda d: d["code_density"].update(isa="thumb"),
                              "code_density.isa", "unknown"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_catalog_names_board_and_field(tmp_path, case):
    mutate, field, problem = CASES[case]
    data = _nano()
    mutate(data)
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump({"boards": [data]}))
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    message = str(info.value)
    assert "'nano33ble'" in message
    assert f"'{field}'" in message
    assert problem in message
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("field", ["weight_memory", "code_density"])
def test_mcu_only_figures_rejected_on_linux_boards(tmp_path, field):
    data = load_catalog()["rpi4"].to_dict()
    data[field] = _nano()[field]
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump({"boards": [data]}))
    with pytest.raises(CatalogError, match=rf"'rpi4'.*'{field}'.*only for kind mcu"):
        load_catalog(path)


def test_hardware_figures_and_kernels_are_optional(tmp_path):
    data = _nano()
    for name in ("kernels", "weight_memory", "active_power", "code_density"):
        del data[name]
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump({"boards": [data]}))
    board = load_catalog(path)["nano33ble"]
    assert board.kernels == "reference"   # the runtime's default
    assert board.weight_memory is board.active_power is board.code_density is None
    assert "weight_memory" not in board.to_dict()
    assert Board.from_dict(board.to_dict()) == board


def test_duplicate_board_ids_rejected(tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump({"boards": [_nano(), _nano()]}))
    with pytest.raises(CatalogError, match=r"'nano33ble'.*'id'.*duplicate"):
        load_catalog(path)


def test_board_without_id_is_named_by_position(tmp_path):
    second = _nano()
    del second["id"]
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump({"boards": [load_catalog()["pico"].to_dict(), second]}))
    with pytest.raises(CatalogError, match=r"board #1: field 'id': missing"):
        load_catalog(path)


@pytest.mark.parametrize("text", ["boards: {}", "- a\n- b", "boards: [\n"])
def test_malformed_top_level_rejected(tmp_path, text):
    path = tmp_path / "catalog.yaml"
    path.write_text(text)
    with pytest.raises(CatalogError):
        load_catalog(path)


def test_import_is_light():
    code = ("import sys, workbench.boards; "
            "print(sorted({'numpy', 'serial', 'tensorflow'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
