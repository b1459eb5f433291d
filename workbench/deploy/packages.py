"""Deployment packages: a folder per target that a user can take away, README inside.

Call order: ``pkg = create_deployment_package(model, "c-array", "out/kws")`` → hand
``pkg.path`` to the user (``pkg.files`` lists what is in it, ``pkg.readme`` is the README's
text). Targets (docs/deploy.md, "Deployment packages"):

- ``"pico"`` (Raspberry Pi Pico): the model slot as a UF2 file (:func:`uf2_blocks`) at the
  slot's flash address (:func:`slot_address`), to copy onto the board's BOOTSEL drive, with
  the ``.tflite`` and a README.
- ``"esp32-devkitc"``, ``"esp-eye"`` (ESP32): the model as the image of the slot's ESP-IDF data
  partition, the partition table lines (:func:`esp32_partition_lines`) and the ``esptool``
  command that writes it (:func:`esptool_command`), with the ``.tflite`` and a README.
- ``"rpi4"``, ``"jetson-nano"`` (Linux boards, runtime LiteRT): the model, a launcher of
  the LiteRT runner that speaks the framed protocol on TCP, a systemd unit and a README
  (:mod:`.linux_package`); :func:`workbench.deploy.deploy_linux_package` installs it over SSH.
- ``"c-array"``, or the id of any other catalog microcontroller (``"nano33ble"``, ...):
  the classic TensorFlow Lite Micro flow. ``model_data.h`` / ``model_data.cc`` hold the model
  as a 16-byte-aligned ``const unsigned char g_model[]``, its length ``g_model_len`` and the
  arena to allocate ``kTensorArenaSize``; ``README.md`` says how to use them, with the op
  resolver lines the model needs.

Arena size: TFLite Micro's measured need (:func:`workbench.tflite.min_arena`'s
``needed_bytes``, or the measurement's ``arena_bytes`` when the model comes with one) plus
:data:`ARENA_MARGIN_FRACTION` of it plus :data:`ARENA_MARGIN_BYTES`, rounded up to 16. The
margin covers what the host measurement cannot see: optimized kernels (CMSIS-NN, ESP-NN) ask
for scratch buffers the reference kernels do not, and a different TFLM release or compiler
lays out its persistent structures differently.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import WorkbenchError
from .sources import model_bytes

__all__ = ["ARENA_MARGIN_BYTES", "ARENA_MARGIN_FRACTION", "UF2_TARGETS", "DeploymentPackage",
           "PackageError", "arena_with_margin", "create_deployment_package", "resolver_method",
           "slot_address", "uf2_blocks", "ESP32_TARGETS", "esp32_partition_lines",
           "esptool_command"]

#: The arena margin: needed * (1 + fraction) + bytes, rounded up to 16 bytes.
ARENA_MARGIN_FRACTION = 0.10
ARENA_MARGIN_BYTES = 1024
_ARENA_SEARCH_UPPER = 4 * 1024 * 1024
_BYTES_PER_LINE = 12

#: Boards whose package is a UF2 image of a model slot: the UF2 family id (the UF2
#: specification's list, github.com/microsoft/uf2 utils/uf2families.json: RP2040), where flash
#: is mapped (RP2040 Datasheet, address map: XIP at 0x10000000) and the flash page size, which
#: is the UF2 payload size the RP2040 boot ROM requires (256 bytes, page aligned).
UF2_TARGETS = {"pico": {"family_id": 0xE48BFF56, "flash_base": 0x10000000, "page_bytes": 256}}

#: Boards whose package is an ESP-IDF data partition image written with esptool: the chip
#: name esptool takes (``--chip``). The partition offsets, sizes and names are catalog facts
#: (``model_slots.slot_offsets``, ``slot_bytes``, ``partition_names``).
ESP32_TARGETS = {"esp32-devkitc": {"chip": "esp32"}, "esp-eye": {"chip": "esp32"}}
#: ESP-IDF's partition subtype for data without a predefined meaning (``undefined``, 0x06):
#: the firmware finds the slot by its name with ``esp_partition_find_first``.
ESP32_DATA_SUBTYPE = "undefined"
#: ESP-IDF requires data partitions to start on a 4 KiB (flash sector) boundary.
ESP32_DATA_ALIGN = 0x1000

_UF2_MAGIC_START0 = 0x0A324655  # "UF2\n"
_UF2_MAGIC_START1 = 0x9E5D5157
_UF2_MAGIC_END = 0x0AB16F30
_UF2_FLAG_FAMILY_ID = 0x00002000
_UF2_BLOCK = 512
_UF2_DATA_MAX = 476


class PackageError(WorkbenchError, ValueError):
    """A package cannot be made: an unknown or unsupported target, a model that cannot run
    in TFLite Micro, an output folder in the way. The message says what to do."""


@dataclass(frozen=True)
class DeploymentPackage:
    """A package on disk: its folder ``path``, the ``files`` in it (paths), the ``target``
    it was made for, the README's text ``readme``, the model's ``sha256`` and the
    ``arena_bytes`` it tells the firmware to allocate."""

    path: Path
    files: list[Path]
    target: str
    readme: str
    sha256: str = ""
    arena_bytes: int | None = None
    ops: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "files": [str(f) for f in self.files],
                "target": self.target, "sha256": self.sha256, "arena_bytes": self.arena_bytes,
                "ops": list(self.ops)}


def arena_with_margin(needed: int) -> int:
    """The arena to allocate for a model that needs ``needed`` bytes in TFLite Micro on the
    host: ``needed * (1 + ARENA_MARGIN_FRACTION) + ARENA_MARGIN_BYTES``, rounded up to 16."""
    n = int(needed * (1 + ARENA_MARGIN_FRACTION)) + ARENA_MARGIN_BYTES
    return -(-n // 16) * 16


_RESOLVER_NAMES = {"UNIDIRECTIONAL_SEQUENCE_LSTM": "UnidirectionalSequenceLSTM",
                   "SVDF": "Svdf", "PRELU": "Prelu", "BATCH_MATMUL": "BatchMatMul"}


def resolver_method(op: str) -> str | None:
    """The ``MicroMutableOpResolver`` method that registers a builtin op
    (``"CONV_2D"`` -> ``"AddConv2D"``), or None for a custom op (``"CUSTOM:..."``)."""
    if op.startswith("CUSTOM:") or op.startswith("BUILTIN_"):
        return None
    if op in _RESOLVER_NAMES:
        return "Add" + _RESOLVER_NAMES[op]
    return "Add" + "".join(p.upper() if p[:1].isdigit() else p.capitalize()
                           for p in op.split("_"))


def create_deployment_package(model: Any, target: str = "c-array",
                              out_dir: str | os.PathLike | None = None, *,
                              arena_bytes: int | None = None, slot: int = 0,
                              port: int | None = None) -> DeploymentPackage:
    """Write a deployment package for ``model`` to ``out_dir`` and describe it.

    ``model`` is a :class:`~workbench.deploy.ModelVersion` (its recorded measurement gives
    the arena), a :class:`workbench.optimize.Variant`, ``.tflite`` bytes or a path.
    ``target`` is ``"c-array"`` or a catalog microcontroller's id (``workbench boards``).
    ``out_dir`` (default ``./<model name>-<target>``) must not exist or be empty; the
    package is built in a temporary folder beside it and renamed into place, so it appears
    whole or not at all. ``arena_bytes`` overrides the measured need (the margin is still
    added). ``slot`` is the model slot a UF2 or ESP32 package writes (0: slot A, 1: slot B).
    A Linux board (``"rpi4"``, ``"jetson-nano"``) gets a LiteRT runner package
    (:mod:`.linux_package`): ``port`` is its TCP port (default 5555); its model is checked in
    LiteRT (a child process), not TFLite Micro, and has no arena.

    Side effects: without a measured arena, TFLite Micro is probed in child processes
    (:func:`workbench.tflite.min_arena`), typically for a few seconds.

    Raises:
        PackageError: unknown or unsupported target, a model TFLite Micro cannot run, an
            out_dir that exists and is not empty.
        workbench.boards.UnknownBoardError: (a KeyError) via the catalog, for a name that is
            neither "c-array" nor a board id; its message lists the close matches.
    """
    from ..tflite import ModelError, inspect_model

    data, name, measured = _model_of(model)
    board = _target_board(target)
    if board is not None and board.runtime == "litert":
        return _linux_package(data, name, board, target, out_dir, port)
    if port is not None:
        raise PackageError(f"port= is for a Linux board's runner (rpi4, jetson-nano); the "
                           f"{target} package has no TCP port")
    try:
        info = inspect_model(data)
    except ModelError as e:
        raise PackageError(f"cannot package {name}: {e}") from e
    if arena_bytes is None:
        arena_bytes = measured
    if arena_bytes is None:
        arena_bytes = _measure_arena(data, name)
    arena = arena_with_margin(int(arena_bytes))

    out = _empty_out(out_dir, name, target)

    def write(tmp: Path) -> list[str]:
        if board is not None and board.id in UF2_TARGETS:
            return _write_uf2_package(tmp, data, info, arena, name, board, slot)
        if board is not None and board.id in ESP32_TARGETS:
            return _write_esp32_package(tmp, data, info, arena, name, board, slot)
        return _write_c_array(tmp, data, info, arena, int(arena_bytes), name, board)

    files, readme = _staged(out, write)
    return DeploymentPackage(path=out, files=files, target=target, readme=readme,
                             sha256=info.sha256, arena_bytes=arena, ops=list(info.ops))


def _empty_out(out_dir: Any, name: str, target: str) -> Path:
    """The package folder: ``out_dir`` (default ``./<name>-<target>``), which must not exist
    or be empty (PackageError, nothing written)."""
    out = Path(out_dir) if out_dir is not None else Path.cwd() / f"{name}-{target}"
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise PackageError(f"{out} already exists and is not empty: choose another out_dir or "
                           "remove it first (nothing was written)")
    return out


def _staged(out: Path, write: Callable[[Path], list[str]]) -> tuple[list[Path], str]:
    """Build a package with ``write(folder) -> file names`` in a temporary folder beside
    ``out``, then rename it to ``out`` (an empty ``out`` is replaced), so the package
    appears whole or not at all. Returns its files and its README's text."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}-{secrets.token_hex(3)}.tmp")
    tmp.mkdir()
    try:
        names = write(tmp)
        readme = (tmp / "README.md").read_text()
        if out.exists():
            out.rmdir()  # empty (checked by _empty_out)
        os.rename(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return [out / f for f in names], readme


def _model_of(model: Any) -> tuple[bytes, str, int | None]:
    """(bytes, a name for files, the measured arena need or None)."""
    if hasattr(model, "read_model") and hasattr(model, "measurement"):  # a ModelVersion
        m = model.measurement or {}
        arena = m.get("arena_bytes") if m.get("runtime", "tflite-micro") == "tflite-micro" else None
        return model.read_model(), f"{model.name}-v{model.version}", arena
    blob, name = model_bytes(model, verb="package", error=PackageError)
    return blob, _safe(name), None


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name).strip(".-") or "model"


def _target_board(target: str):
    """The catalog board for a board target, None for "c-array"."""
    if not isinstance(target, str):
        raise PackageError(f"target must be a string such as 'c-array' or a board id, not {target!r}")
    if target == "c-array":
        return None
    from ..boards import get_board

    board = get_board(target)
    if board.runtime == "litert":
        return board  # a Linux board: the LiteRT runner package (linux_package.py)
    if board.kind != "mcu" or board.runtime != "tflite-micro":
        raise PackageError(f"{board.id} ({board.name}) runs {board.runtime} on {board.kind}, not "
                           "TensorFlow Lite Micro: its package is not available yet; use "
                           "target='c-array' only for microcontrollers")
    return board


def _measure_arena(data: bytes, name: str) -> int:
    from ..tflite import ProbeError, min_arena

    try:
        return min_arena(data, _ARENA_SEARCH_UPPER).needed_bytes
    except ProbeError as e:
        raise PackageError(f"{name} does not run in TensorFlow Lite Micro, so it cannot be "
                           f"packaged for it: {e}") from e


def _c_bytes(data: bytes) -> str:
    lines = []
    for i in range(0, len(data), _BYTES_PER_LINE):
        lines.append("    " + ", ".join(f"0x{b:02x}" for b in data[i:i + _BYTES_PER_LINE]) + ",")
    return "\n".join(lines)


def _tensor_line(t) -> str:
    q = "" if t.scale is None else f", scale {t.scale:.9g}, zero point {t.zero_point}"
    return f"- `{t.name}`: {t.dtype} {list(t.shape)}{q}"


def _write_c_array(folder: Path, data: bytes, info, arena: int, needed: int, name: str,
                   board) -> list[str]:
    """Write model_data.h, model_data.cc and README.md into ``folder``; their names."""
    header = f"""// model_data.h: {name}, generated by tinyml-workbench (see README.md).
// SHA-256 of the model: {info.sha256}
#ifndef WORKBENCH_MODEL_DATA_H_
#define WORKBENCH_MODEL_DATA_H_

// The .tflite model, 16-byte aligned as TensorFlow Lite Micro requires.
extern const unsigned char g_model[];
extern const unsigned int g_model_len;

// Bytes to allocate for the tensor arena: TFLite Micro needed {needed} bytes on the host,
// plus a margin of {ARENA_MARGIN_FRACTION:.0%} + {ARENA_MARGIN_BYTES} bytes (README.md).
// Use it as: alignas(16) static unsigned char tensor_arena[kTensorArenaSize];
constexpr unsigned int kTensorArenaSize = {arena};

#endif  // WORKBENCH_MODEL_DATA_H_
"""
    source = f"""// model_data.cc: {name}, generated by tinyml-workbench (see README.md).
#include "model_data.h"

alignas(16) const unsigned char g_model[] = {{
{_c_bytes(data)}
}};
const unsigned int g_model_len = {len(data)};
"""
    ops = list(info.ops)
    calls = [(op, resolver_method(op)) for op in ops]
    resolver = "\n".join(f"resolver.{m}();" for _, m in calls if m)
    custom = [op for op, m in calls if m is None]
    custom_note = ("" if not custom else "\nThe model also needs ops without a builtin kernel: "
                   + ", ".join(f"`{c}`" for c in custom)
                   + "; register your own implementation of each with `resolver.AddCustom(...)`.\n")
    quant = ("\nQuantized tensors: real value = scale * (stored value - zero point).\n"
             if any(t.scale is not None for t in [*info.inputs, *info.outputs]) else "")
    fit = ""
    if board is not None:
        slots = board.model_slots
        fit = (f"\n## {board.name}\n\nThe model is {len(data):,} bytes (the board's model slot:\n"
               f"{slots.slot_bytes:,}); the arena is {arena:,} bytes (the board's arena budget:\n"
               f"{slots.arena_bytes:,}). "
               + ("Both fit." if len(data) <= slots.slot_bytes and arena <= slots.arena_bytes
                  else "**It does not fit**: choose a smaller variant (workbench report).")
               + "\n")
    readme = f"""# {name}: TensorFlow Lite Micro model as a C array

Made by tinyml-workbench for target `{board.id if board else "c-array"}`.
Model: {len(data):,} bytes, SHA-256 `{info.sha256}`.

## Files

- `model_data.h`: declares `g_model` (the model), `g_model_len` (its length in bytes) and
  `kTensorArenaSize` (the tensor arena to allocate, {arena:,} bytes).
- `model_data.cc`: the model's bytes, `alignas(16)`.

## What to do

1. Copy `model_data.h` and `model_data.cc` into your sketch or project folder (Arduino: the
   sketch folder, next to the `.ino`; the IDE compiles `.cc` files there).
2. In your sketch, include the header and allocate the arena:

```cpp
#include "model_data.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"

alignas(16) static uint8_t tensor_arena[kTensorArenaSize];
```

3. Register exactly the ops this model uses ({len(ops)}: {", ".join(ops) or "none"}):

```cpp
static tflite::MicroMutableOpResolver<{max(1, len(ops))}> resolver;
{resolver}
```
{custom_note}
4. Build the interpreter and allocate:

```cpp
const tflite::Model* model = tflite::GetModel(g_model);
static tflite::MicroInterpreter interpreter(model, resolver, tensor_arena, kTensorArenaSize);
if (interpreter.AllocateTensors() != kTfLiteOk) {{ /* arena too small: see below */ }}
```

## Inputs and outputs

Inputs:
{chr(10).join(_tensor_line(t) for t in info.inputs)}

Outputs:
{chr(10).join(_tensor_line(t) for t in info.outputs)}
{quant}
## The arena

TensorFlow Lite Micro needed {needed:,} bytes on the host (the smallest arena in which it
allocated and ran). `kTensorArenaSize` adds {ARENA_MARGIN_FRACTION:.0%} of that plus
{ARENA_MARGIN_BYTES:,} bytes, rounded up to 16, because optimized kernels (CMSIS-NN, ESP-NN)
ask for scratch buffers the host's reference kernels do not. If `AllocateTensors()` still
fails, the error it logs says how many bytes were missing: raise `kTensorArenaSize` by that.
Once it runs, `interpreter.arena_used_bytes()` tells the real need on your board.
{fit}"""
    (folder / "model_data.h").write_text(header)
    (folder / "model_data.cc").write_text(source)
    (folder / "README.md").write_text(readme)
    return ["README.md", "model_data.cc", "model_data.h"]


def _slot_offset(board, slot: int) -> int:
    """Where model slot ``slot`` starts, in bytes from the start of ``board``'s flash: the
    catalog's ``model_slots.slot_offsets``. PackageError for a slot the board does not have,
    or a board whose catalog entry gives no layout."""
    slots = board.model_slots
    if not isinstance(slot, int) or isinstance(slot, bool) or not 0 <= slot < slots.count:
        raise PackageError(f"{board.id} has model slots 0..{slots.count - 1} (A, B), not {slot!r}")
    if not slots.slot_offsets:
        raise PackageError(f"{board.id}: the catalog gives no model_slots.slot_offsets, so the "
                           "slot's flash address is unknown; add them (docs/boards.md)")
    return slots.slot_offsets[slot]


def slot_address(board, slot: int) -> int:
    """The flash address where model slot ``slot`` starts on a UF2 ``board``: the flash base
    of :data:`UF2_TARGETS` (where flash is mapped) plus the slot's offset, a catalog fact
    (``model_slots.slot_offsets``, with its ``layout_source``). PackageError for a slot the
    board does not have, a board without a layout in the catalog, or a slot not on a page.
    """
    spec = UF2_TARGETS[board.id]
    offset = _slot_offset(board, slot)
    if offset % spec["page_bytes"]:
        raise PackageError(f"{board.id}: slot {slot} is not aligned to a flash page")
    return spec["flash_base"] + offset


def uf2_blocks(data: bytes, address: int, family_id: int, payload: int = 256) -> bytes:
    """``data`` as UF2 (the USB Flashing Format, github.com/microsoft/uf2): 512-byte blocks of
    32 header bytes (magic 0, magic 1, flags, target address, payload size, block number,
    number of blocks, family id; little-endian 32-bit words), ``payload`` data bytes padded
    with zeros to 476, and the end magic. ``address`` and ``payload`` must be multiples of 4;
    the last block's payload is padded with zeros to ``payload`` bytes (a whole flash page)."""
    import struct

    if address % 4 or payload % 4 or not 0 < payload <= _UF2_DATA_MAX:
        raise PackageError(f"UF2: address 0x{address:x} and payload {payload} must be multiples "
                           f"of 4, payload at most {_UF2_DATA_MAX}")
    if not data:
        raise PackageError("UF2: nothing to write")
    count = -(-len(data) // payload)
    out = bytearray()
    for i in range(count):
        chunk = data[i * payload:(i + 1) * payload].ljust(payload, b"\0")
        out += struct.pack("<8I", _UF2_MAGIC_START0, _UF2_MAGIC_START1, _UF2_FLAG_FAMILY_ID,
                           address + i * payload, payload, i, count, family_id)
        out += chunk.ljust(_UF2_DATA_MAX, b"\0")
        out += struct.pack("<I", _UF2_MAGIC_END)
    return bytes(out)


def _write_uf2_package(folder: Path, data: bytes, info, arena: int, name: str, board,
                       slot: int) -> list[str]:
    """Write ``<name>-slot-<A|B>.uf2``, ``model.tflite`` and README.md; their names."""
    spec = UF2_TARGETS[board.id]
    address = slot_address(board, slot)
    slots = board.model_slots
    if len(data) > slots.slot_bytes:
        raise PackageError(f"{name} is {len(data):,} bytes; {board.id}'s model slot holds "
                           f"{slots.slot_bytes:,}: choose a smaller variant")
    letter = "AB"[slot] if slot < 2 else str(slot)
    uf2_name = f"{name}-slot-{letter}.uf2"
    blocks = uf2_blocks(data, address, spec["family_id"], spec["page_bytes"])
    (folder / uf2_name).write_bytes(blocks)
    (folder / "model.tflite").write_bytes(data)
    fits = arena <= slots.arena_bytes
    readme = f"""# {name}: model slot {letter} for the {board.name}

Made by tinyml-workbench. Model: {len(data):,} bytes, SHA-256 `{info.sha256}`.

## Files

- `{uf2_name}`: the model as a UF2 file ({len(blocks) // _UF2_BLOCK} blocks of 256 bytes, family
  RP2040 `0x{spec["family_id"]:08x}`), written at 0x{address:08x}: the start of model slot
  {letter}, 0x{address - spec["flash_base"]:x} bytes after the start of flash
  (0x{spec["flash_base"]:08x}). The layout is the catalog's: {slots.layout_source}.
- `model.tflite`: the same model, for the workbench (`workbench upload`) or a C array
  (`create_deployment_package(model, "c-array")`).

## What to do

1. The board must already run the workbench firmware (or your own firmware that reads its
   model from slot {letter} at 0x{address:08x}); this file holds the model only.
2. Hold BOOTSEL while plugging the Pico in: it appears as a drive named `RPI-RP2`.
3. Copy `{uf2_name}` onto that drive. The Pico writes the {len(data):,} bytes at 0x{address:08x}
   and restarts; nothing outside the slot's pages is touched.
   Or, without the drive: `picotool load -x {uf2_name}`.

The firmware needs a tensor arena of {arena:,} bytes for this model (TensorFlow Lite Micro's
need on the host plus a margin, see docs/deploy.md); the board's budget is
{slots.arena_bytes:,} bytes: {"it fits" if fits else "**it does not fit**: choose a smaller variant"}.
"""
    (folder / "README.md").write_text(readme)
    return ["README.md", "model.tflite", uf2_name]


def _slot_letter(slot: int) -> str:
    return "AB"[slot] if slot < 2 else str(slot)


def esp32_partition_lines(board) -> list[str]:
    """The ESP-IDF partition table lines (gen_esp32part.py's CSV: Name, Type, SubType, Offset,
    Size, Flags) of ``board``'s model slots: ``model_a, data, undefined, 0x180000, 0x100000,``.
    PackageError if the catalog gives no offsets or partition names, or an offset is not on
    a 4 KiB boundary."""
    slots = board.model_slots
    if not slots.slot_offsets or not slots.partition_names:
        raise PackageError(f"{board.id}: the catalog gives no model_slots.slot_offsets and "
                           "partition_names; add them (docs/boards.md)")
    lines = []
    for name, offset in zip(slots.partition_names, slots.slot_offsets):
        if offset % ESP32_DATA_ALIGN:
            raise PackageError(f"{board.id}: partition {name} at 0x{offset:x} is not on a "
                               f"0x{ESP32_DATA_ALIGN:x} boundary, as ESP-IDF requires")
        lines.append(f"{name}, data, {ESP32_DATA_SUBTYPE}, 0x{offset:x}, "
                     f"0x{slots.slot_bytes:x},")
    return lines


def esptool_command(board, slot: int, image: str, port: str = "PORT") -> list[str]:
    """The esptool (v5) command that writes ``image`` into model slot ``slot`` of ``board``:
    ``esptool --chip esp32 --port PORT write-flash 0x180000 image``."""
    offset = _slot_offset(board, slot)
    return ["esptool", "--chip", ESP32_TARGETS[board.id]["chip"], "--port", port,
            "write-flash", f"0x{offset:x}", image]


def _write_esp32_package(folder: Path, data: bytes, info, arena: int, name: str, board,
                         slot: int) -> list[str]:
    """Write ``<name>-slot-<A|B>.bin``, ``partitions.csv``, ``model.tflite`` and README.md."""
    slots = board.model_slots
    lines = esp32_partition_lines(board)
    offset = _slot_offset(board, slot)
    if len(data) > slots.slot_bytes:
        raise PackageError(f"{name} is {len(data):,} bytes; {board.id}'s model partition holds "
                           f"{slots.slot_bytes:,}: choose a smaller variant")
    letter = _slot_letter(slot)
    part = slots.partition_names[slot]
    image = f"{name}-slot-{letter}.bin"
    command = " ".join(esptool_command(board, slot, image))
    (folder / image).write_bytes(data)
    (folder / "model.tflite").write_bytes(data)
    (folder / "partitions.csv").write_text(
        "# ESP-IDF Partition Table: the workbench's model slots (add them to your table)\n"
        "# Name, Type, SubType, Offset, Size, Flags\n" + "\n".join(lines) + "\n")
    fits = arena <= slots.arena_bytes
    readme = f"""# {name}: model slot {letter} for the {board.name}

Made by tinyml-workbench. Model: {len(data):,} bytes, SHA-256 `{info.sha256}`.

## Files

- `{image}`: the image of the data partition `{part}` (model slot {letter}): the model's
  {len(data):,} bytes, not padded (esptool erases the 4 KiB sectors it writes; the rest of the
  {slots.slot_bytes:,}-byte partition is not touched).
- `partitions.csv`: the partition table lines of the model slots, in ESP-IDF's CSV format
  (Name, Type, SubType, Offset, Size, Flags). The firmware's partition table must contain
  them (subtype `{ESP32_DATA_SUBTYPE}`: the firmware finds the slot with
  `esp_partition_find_first(ESP_PARTITION_TYPE_DATA, ESP_PARTITION_SUBTYPE_ANY, "{part}")`).
- `model.tflite`: the same model, for the workbench (`workbench upload`) or a C array
  (`create_deployment_package(model, "c-array")`).

## What to do

1. The board must already run the workbench firmware (or your own firmware whose partition
   table has the lines of `partitions.csv` and reads its model from `{part}`); this file holds
   the model only.
2. Connect the board over USB and find its serial port (`/dev/ttyUSB0`, `COM3`, ...).
3. Write the partition (esptool 5, `pip install esptool`; replace PORT):

```
{command}
```

   esptool resets the board into its ROM bootloader (hold BOOT if it does not), writes the
   {len(data):,} bytes at 0x{offset:x} and verifies them. Nothing outside the partition's
   sectors is written.

The layout (`{part}` at 0x{offset:x}, {slots.slot_bytes:,} bytes) is the catalog's:
{slots.layout_source}.

The firmware needs a tensor arena of {arena:,} bytes for this model (TensorFlow Lite Micro's
need on the host plus a margin, see docs/deploy.md); the board's budget is
{slots.arena_bytes:,} bytes: {"it fits" if fits else "**it does not fit**: choose a smaller variant"}.
"""
    (folder / "README.md").write_text(readme)
    return ["README.md", "model.tflite", "partitions.csv", image]


def _linux_package(data: bytes, name: str, board, target: str, out_dir, port) -> DeploymentPackage:
    """The package of a LiteRT board (:mod:`.linux_package`), built in a temporary folder
    beside ``out_dir`` and renamed into place."""
    from ..tflite import ModelError, inspect_model
    from .linux_package import DEFAULT_PORT, check_model, write_linux_package

    try:
        info = inspect_model(data)
    except ModelError as e:
        raise PackageError(f"cannot package {name}: {e}") from e
    out = _empty_out(out_dir, name, target)
    check_model(data, name, board)
    files, readme = _staged(out, lambda tmp: write_linux_package(
        tmp, data, info, name, board, port=DEFAULT_PORT if port is None else port,
        folder_name=out.name))
    return DeploymentPackage(path=out, files=files, target=target, readme=readme,
                             sha256=info.sha256, arena_bytes=None, ops=list(info.ops))
