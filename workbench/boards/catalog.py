"""The board catalog: what each supported board is and what it can hold.

The data lives in ``catalog.yaml`` beside this module; this module only loads
and validates it. Everything here is plain Python plus PyYAML, so importing it
is cheap (no numpy, no serial port).

>>> board = get_board("nano33ble")
>>> board.sensor("accel").rate_hz
119.0
>>> [b.id for b in match_usb(0x2341, 0x805A)]
['nano33ble']
"""

from __future__ import annotations

import difflib
import functools
import importlib.resources
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from ..errors import WorkbenchError

__all__ = [
    "ActivePower",
    "Board",
    "CatalogError",
    "CodeDensity",
    "Flashing",
    "KERNELS",
    "ModelSlots",
    "RUNTIMES",
    "Sensor",
    "UnknownBoardError",
    "UnknownSensorError",
    "UsbId",
    "WeightMemory",
    "get_board",
    "load_catalog",
    "match_usb",
    "parse_catalog",
]

KINDS = ("mcu", "linux")
#: Inference runtimes, by the one name the catalog, the cost model and the docs use:
#: TensorFlow Lite Micro on microcontrollers, LiteRT (formerly TensorFlow Lite) on Linux.
RUNTIMES = ("tflite-micro", "litert")
#: Kernel libraries a runtime is built with, by one name each: the portable
#: ``reference`` kernels, Arm's ``cmsis-nn``, Espressif's ``esp-nn``, Synopsys'
#: ``embarc-mli`` (all for tflite-micro) and LiteRT's ``xnnpack`` delegate.
KERNELS = ("reference", "cmsis-nn", "esp-nn", "embarc-mli", "xnnpack")
#: Which kernel libraries each runtime can be built with; the first is the default.
RUNTIME_KERNELS = {
    "tflite-micro": ("reference", "cmsis-nn", "esp-nn", "embarc-mli"),
    "litert": ("xnnpack", "reference"),
}
#: Where a board's model weights are read from (see :class:`WeightMemory`).
WEIGHT_MEMORY_KINDS = ("flash", "xip", "sram")
DEPLOYS = ("serial", "ssh")
USB_ROLES = ("application", "bootloader", "debug-probe", "usb-uart")
DTYPES = ("int8", "uint8", "int16", "uint16", "int32", "uint32", "float32")

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_HEX4_RE = re.compile(r"^[0-9A-Fa-f]{4}$")


class CatalogError(WorkbenchError, ValueError):
    """The catalog file is malformed; the message names the board and field."""


class _KeyErrorWithMessage(WorkbenchError, KeyError):
    # KeyError.__str__ shows repr(arg) (quoted); show the message as written.
    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class UnknownBoardError(_KeyErrorWithMessage):
    """No board with that id; the message lists the valid ids."""


class UnknownSensorError(_KeyErrorWithMessage):
    """The board has no sensor with that id; the message lists its sensors."""


@dataclass(frozen=True)
class Sensor:
    """One sensor on a board, as the reference firmware streams it.

    A raw sample is ``len(channels)`` values of ``dtype``; the physical value
    in ``units`` is ``raw * scale``.
    """

    id: str
    kind: str
    part: str
    channels: tuple[str, ...]
    units: str
    rate_hz: float
    rates_hz: tuple[float, ...]
    dtype: str
    scale: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict in the catalog's own schema."""
        return {
            "id": self.id,
            "kind": self.kind,
            "part": self.part,
            "channels": list(self.channels),
            "units": self.units,
            "rate_hz": self.rate_hz,
            "rates_hz": list(self.rates_hz),
            "dtype": self.dtype,
            "scale": self.scale,
        }


@dataclass(frozen=True)
class UsbId:
    """A USB vendor:product id the board enumerates as, and in which role."""

    vid: int
    pid: int
    role: str

    def __str__(self) -> str:
        return f"{self.vid:04X}:{self.pid:04X}"

    def to_dict(self) -> dict[str, Any]:
        return {"vid": f"{self.vid:04X}", "pid": f"{self.pid:04X}", "role": self.role}


@dataclass(frozen=True)
class ModelSlots:
    """How flash and RAM are split between the firmware and the models.

    ``count`` slots (A and B) of ``slot_bytes`` flash each; ``arena_bytes`` of
    RAM for the TFLM tensor arena; the rest is the firmware's own overhead.

    Where the slots lie in flash, for boards whose deployment package writes a slot directly
    (optional, all or none): ``slot_offsets`` (slot ``i`` starts ``slot_offsets[i]`` bytes
    after the start of flash, 4 KiB aligned), ``partition_names`` (ESP-IDF data partitions
    holding the slots; may be empty) and ``layout_source``, which cites the layout or starts
    with ``"assumed"``.
    """

    count: int
    slot_bytes: int
    arena_bytes: int
    firmware_flash_bytes: int
    firmware_ram_bytes: int
    slot_offsets: tuple[int, ...] = ()
    partition_names: tuple[str, ...] = ()
    layout_source: str = ""

    @property
    def layout_assumed(self) -> bool:
        """True when ``layout_source`` says the slot layout is an assumption."""
        return _is_assumed(self.layout_source)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "count": self.count,
            "slot_bytes": self.slot_bytes,
            "arena_bytes": self.arena_bytes,
            "firmware_flash_bytes": self.firmware_flash_bytes,
            "firmware_ram_bytes": self.firmware_ram_bytes,
        }
        if self.slot_offsets:
            out["slot_offsets"] = list(self.slot_offsets)
            if self.partition_names:
                out["partition_names"] = list(self.partition_names)
            out["layout_source"] = self.layout_source
        return out


@dataclass(frozen=True)
class Flashing:
    """The tool that writes firmware to the board, and a one-line how-to."""

    tool: str
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {"tool": self.tool, "note": self.note}


def _is_assumed(source: str) -> bool:
    return source.strip().lower().startswith("assumed")


@dataclass(frozen=True)
class WeightMemory:
    """Where a model's weights are read from during inference, and what a read costs.

    The latency model (``docs/latency-model.md``) charges each weight byte fetched
    ``stall cycles per byte`` on top of the kernel's own cycles:

    * ``kind="flash"``: on-chip flash with wait states. ``zero_wait_hz`` (Hz) is the
      highest clock with no wait state; each further step of ``zero_wait_hz`` adds one,
      so at clock *f* a read of ``line_bytes`` bytes stalls ``ceil(f / zero_wait_hz) - 1``
      cycles.
    * ``kind="xip"``: external flash or SDRAM behind a cache; a miss costs ``miss_ns``
      (nanoseconds) per ``line_bytes`` line.
    * ``kind="sram"``: zero-wait memory (weights copied to SRAM); no stall.

    ``cache_bytes``: a data cache in front of the weights (0 if none); a filter that
    fits is fetched once per op, a larger one once per use. ``source`` cites where the
    figures come from, or starts with ``"assumed"``.
    """

    kind: str
    source: str
    line_bytes: int = 8
    zero_wait_hz: int = 0
    miss_ns: float = 0.0
    cache_bytes: int = 0

    @property
    def assumed(self) -> bool:
        """True when ``source`` says the figures are assumptions, not citations."""
        return _is_assumed(self.source)

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "sram":
            return {"kind": self.kind, "source": self.source}
        out: dict[str, Any] = {"kind": self.kind, "line_bytes": self.line_bytes}
        if self.kind == "flash":
            out["zero_wait_hz"] = self.zero_wait_hz
        else:
            out["miss_ns"] = self.miss_ns
        out["cache_bytes"] = self.cache_bytes
        out["source"] = self.source
        return out


@dataclass(frozen=True)
class ActivePower:
    """Typical power (mW) of the board's chip while computing, at ``clock_hz`` (Hz).

    The latency model turns latency into energy with it and scales it to other clocks.
    ``source`` cites where the figure comes from, or starts with ``"assumed"``.
    """

    mw: float
    clock_hz: int
    source: str

    @property
    def assumed(self) -> bool:
        """True when ``source`` says the figure is an assumption, not a citation."""
        return _is_assumed(self.source)

    def to_dict(self) -> dict[str, Any]:
        return {"mw": self.mw, "clock_hz": self.clock_hz, "source": self.source}


@dataclass(frozen=True)
class CodeDensity:
    """Size of the core's machine code relative to Thumb-2 (1.0) for the same C source.

    The kernel code-size estimate multiplies its Thumb-2 figures by ``factor``.
    ``source`` cites where the factor comes from, or starts with ``"assumed"``.
    """

    factor: float
    source: str

    @property
    def assumed(self) -> bool:
        """True when ``source`` says the factor is an assumption, not a citation."""
        return _is_assumed(self.source)

    def to_dict(self) -> dict[str, Any]:
        return {"factor": self.factor, "source": self.source}


@dataclass(frozen=True)
class Board:
    """One catalog entry. Sizes are bytes, clocks are Hz.

    ``kernels`` is the kernel library the board's build of ``runtime`` uses (one of
    :data:`KERNELS`; the runtime's default when the catalog does not say). The
    optional hardware figures the latency model reads (``weight_memory``,
    ``active_power``, ``code_density``) are None when the catalog does not give them;
    the model then falls back to per-core defaults and says so.
    """

    id: str
    name: str
    vendor: str
    kind: str
    mcu: str
    core: str
    core_count: int
    clock_hz: int
    flash_bytes: int
    ram_bytes: int
    fpu: bool
    sensors: tuple[Sensor, ...]
    usb: tuple[UsbId, ...]
    flashing: Flashing
    runtime: str
    deploy: str
    model_slots: ModelSlots
    notes: str = ""
    dsp: str = ""
    kernels: str = ""
    weight_memory: WeightMemory | None = None
    active_power: ActivePower | None = None
    code_density: CodeDensity | None = None

    def __post_init__(self) -> None:
        if not self.kernels:
            default = RUNTIME_KERNELS.get(self.runtime, ("reference",))[0]
            object.__setattr__(self, "kernels", default)

    def sensor(self, sensor_id: str) -> Sensor:
        """The sensor with this id; ``UnknownSensorError`` (a KeyError) if none."""
        for s in self.sensors:
            if s.id == sensor_id:
                return s
        have = ", ".join(s.id for s in self.sensors) or "none"
        raise UnknownSensorError(
            f"board {self.id!r} has no sensor {sensor_id!r}; its sensors: {have}"
        )

    def summary(self) -> str:
        """A one-line human description of the board."""
        cores = f"{self.core_count}x {self.core}" if self.core_count > 1 else self.core
        sensors = " ".join(s.id for s in self.sensors) or "none"
        storage = "flash" if self.kind == "mcu" else "storage"
        return (
            f"{self.name}: {self.mcu} {cores} @ {_fmt_hz(self.clock_hz)}, "
            f"{_fmt_bytes(self.flash_bytes)} {storage}, {_fmt_bytes(self.ram_bytes)} RAM, "
            f"sensors {sensors}"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict in the catalog's schema (see ``from_dict``).

        The optional hardware figures appear only when the board has them."""
        out = {
            "id": self.id,
            "name": self.name,
            "vendor": self.vendor,
            "kind": self.kind,
            "mcu": self.mcu,
            "core": self.core,
            "core_count": self.core_count,
            "clock_hz": self.clock_hz,
            "flash_bytes": self.flash_bytes,
            "ram_bytes": self.ram_bytes,
            "fpu": self.fpu,
            "dsp": self.dsp,
            "sensors": [s.to_dict() for s in self.sensors],
            "usb": [u.to_dict() for u in self.usb],
            "flashing": self.flashing.to_dict(),
            "runtime": self.runtime,
            "kernels": self.kernels,
            "deploy": self.deploy,
            "model_slots": self.model_slots.to_dict(),
            "notes": self.notes,
        }
        for name in ("weight_memory", "active_power", "code_density"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> Board:
        """Build and validate a board from a catalog-schema mapping."""
        return _parse_board(data, source, 0)


# --------------------------------------------------------------------------
# Formatting helpers for summary()


def _fmt_num(x: float) -> str:
    return f"{x:.3g}" if x < 1000 else f"{x:.0f}"


def _fmt_bytes(n: int) -> str:
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= size:
            return f"{_fmt_num(n / size)} {unit}"
    return f"{n} B"


def _fmt_hz(hz: int) -> str:
    for unit, size in (("GHz", 10**9), ("MHz", 10**6), ("kHz", 10**3)):
        if hz >= size:
            return f"{_fmt_num(hz / size)} {unit}"
    return f"{hz} Hz"


# --------------------------------------------------------------------------
# Parsing and validation


class _Fields:
    """Typed, error-reporting access to one mapping of the catalog."""

    def __init__(self, data: Any, where: str, field: str, allowed: tuple[str, ...]):
        self.where, self.prefix = where, f"{field}." if field else ""
        if not isinstance(data, Mapping):
            at = f" field {field!r}:" if field else ""
            raise CatalogError(f"{where}:{at} expected a mapping, got {data!r}")
        unknown = sorted(set(map(str, data)) - set(allowed))
        if unknown:
            raise self.fail(unknown[0], f"unknown field (known: {', '.join(allowed)})")
        self.data = data

    def fail(self, name: str, problem: str) -> CatalogError:
        return CatalogError(f"{self.where}: field '{self.prefix}{name}': {problem}")

    def get(self, name: str, check: Callable[[Any], bool], expected: str, default: Any = ...):
        if name not in self.data:
            if default is ...:
                raise self.fail(name, "missing")
            return default
        value = self.data[name]
        if not check(value):
            raise self.fail(name, f"expected {expected}, got {value!r}")
        return value

    def text(self, name: str, choices: tuple[str, ...] = (), default: Any = ...) -> str:
        value = self.get(name, lambda v: isinstance(v, str) and v.strip() != "",
                         "a non-empty string", default)
        if choices and value not in choices:
            raise self.fail(name, f"expected one of {', '.join(choices)}, got {value!r}")
        return value

    def integer(self, name: str, minimum: int = 0) -> int:
        return self.get(name, lambda v: _is_int(v) and v >= minimum,
                        f"an integer >= {minimum}")

    def number(self, name: str) -> float:
        return float(self.get(name, lambda v: _is_num(v) and v > 0, "a number > 0"))

    def flag(self, name: str) -> bool:
        return self.get(name, lambda v: isinstance(v, bool), "true or false")

    def items(self, name: str, item: Callable[[Any], bool] = lambda v: True,
              expected: str = "a list", nonempty: bool = False) -> list:
        return self.get(name, lambda v: isinstance(v, list) and all(map(item, v))
                        and (bool(v) or not nonempty), expected)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


_SENSOR_FIELDS = ("id", "kind", "part", "channels", "units", "rate_hz", "rates_hz",
                  "dtype", "scale")
_USB_FIELDS = ("vid", "pid", "role")
_SLOT_FIELDS = ("count", "slot_bytes", "arena_bytes", "firmware_flash_bytes",
                "firmware_ram_bytes", "slot_offsets", "partition_names", "layout_source")
FLASH_SECTOR_BYTES = 4096
"""Slot offsets are multiples of this (the erase sector of the catalog's SPI and QSPI flash;
ESP-IDF requires data partitions on 0x1000 boundaries)."""
_PARTITION_NAME_RE = re.compile(r"^[A-Za-z0-9_]{1,16}$")
_MEMORY_FIELDS = {
    "flash": ("kind", "line_bytes", "zero_wait_hz", "cache_bytes", "source"),
    "xip": ("kind", "line_bytes", "miss_ns", "cache_bytes", "source"),
    "sram": ("kind", "source"),
}
_POWER_FIELDS = ("mw", "clock_hz", "source")
_DENSITY_FIELDS = ("factor", "source")
_MCU_ONLY = ("weight_memory", "code_density")
_BOARD_FIELDS = ("id", "name", "vendor", "kind", "mcu", "core", "core_count", "clock_hz",
                 "flash_bytes", "ram_bytes", "fpu", "dsp", "sensors", "usb", "flashing",
                 "runtime", "kernels", "deploy", "model_slots", "weight_memory",
                 "active_power", "code_density", "notes")


def _parse_sensor(data: Any, where: str, field: str) -> Sensor:
    f = _Fields(data, where, field, _SENSOR_FIELDS)
    sid = f.text("id")
    if not _ID_RE.match(sid):
        raise f.fail("id", f"expected a lowercase id, got {sid!r}")
    rates = tuple(float(r) for r in f.items(
        "rates_hz", lambda v: _is_num(v) and v > 0, "a non-empty list of numbers > 0",
        nonempty=True))
    rate = f.number("rate_hz")
    if rate not in rates:
        raise f.fail("rate_hz", f"{rate:g} is not among rates_hz {list(rates)}")
    return Sensor(
        id=sid,
        kind=f.text("kind"),
        part=f.text("part"),
        channels=tuple(f.items("channels", lambda v: isinstance(v, str) and v != "",
                              "a non-empty list of names", nonempty=True)),
        units=f.text("units"),
        rate_hz=rate,
        rates_hz=rates,
        dtype=f.text("dtype", DTYPES),
        scale=f.number("scale"),
    )


def _parse_usb(data: Any, where: str, field: str) -> UsbId:
    f = _Fields(data, where, field, _USB_FIELDS)
    ids = []
    for name in ("vid", "pid"):
        value = f.get(name, lambda v: isinstance(v, str) and bool(_HEX4_RE.match(v)),
                      "4 hex digits as a quoted string, e.g. '2341'")
        ids.append(int(value, 16))
    return UsbId(vid=ids[0], pid=ids[1], role=f.text("role", USB_ROLES))


def _parse_weight_memory(data: Any, where: str) -> WeightMemory:
    every = tuple(dict.fromkeys(n for names in _MEMORY_FIELDS.values() for n in names))
    f = _Fields(data, where, "weight_memory", every)
    kind = f.text("kind", WEIGHT_MEMORY_KINDS)
    for name in every:
        if name in data and name not in _MEMORY_FIELDS[kind]:
            raise f.fail(name, f"not used with kind {kind!r} (it takes "
                         f"{', '.join(_MEMORY_FIELDS[kind][1:])}); remove it")
    source = f.text("source")
    if kind == "sram":
        return WeightMemory(kind=kind, source=source)
    line = f.integer("line_bytes", 1)
    cache = f.get("cache_bytes", lambda v: _is_int(v) and v >= 0, "an integer >= 0", 0)
    if kind == "flash":
        return WeightMemory(kind=kind, source=source, line_bytes=line,
                            zero_wait_hz=f.integer("zero_wait_hz", 1), cache_bytes=cache)
    return WeightMemory(kind=kind, source=source, line_bytes=line,
                        miss_ns=f.number("miss_ns"), cache_bytes=cache)


def _parse_active_power(data: Any, where: str) -> ActivePower:
    f = _Fields(data, where, "active_power", _POWER_FIELDS)
    return ActivePower(mw=f.number("mw"), clock_hz=f.integer("clock_hz", 1),
                       source=f.text("source"))


def _parse_code_density(data: Any, where: str) -> CodeDensity:
    f = _Fields(data, where, "code_density", _DENSITY_FIELDS)
    return CodeDensity(factor=f.number("factor"), source=f.text("source"))


def _parse_slot_layout(ms: _Fields) -> dict[str, Any]:
    """slot_offsets, partition_names and layout_source of model_slots (all or none but
    partition_names): one 4 KiB-aligned offset per slot, slots that do not overlap, ESP-IDF
    partition names (1-16 letters, digits or '_', distinct)."""
    present = [n for n in ("slot_offsets", "partition_names", "layout_source") if n in ms.data]
    if not present:
        return {}
    for name in ("slot_offsets", "layout_source"):
        if name not in ms.data:
            raise ms.fail(name, f"missing (given: {', '.join(present)}); a slot layout needs "
                          "slot_offsets and layout_source (a citation, or text starting with "
                          "'assumed')")
    count, size = ms.data.get("count"), ms.data.get("slot_bytes")
    offsets = tuple(ms.items("slot_offsets", lambda v: _is_int(v) and v >= 0,
                             "a list of integers >= 0", nonempty=True))
    if len(offsets) != count:
        raise ms.fail("slot_offsets", f"{len(offsets)} offsets for {count} slots")
    for i, offset in enumerate(offsets):
        if offset % FLASH_SECTOR_BYTES:
            raise ms.fail(f"slot_offsets[{i}]", f"0x{offset:x} is not a multiple of "
                          f"0x{FLASH_SECTOR_BYTES:x} (a flash sector)")
    ordered = sorted(offsets)
    for a, b in zip(ordered, ordered[1:]):
        if _is_int(size) and a + size > b:
            raise ms.fail("slot_offsets", f"slots at 0x{a:x} and 0x{b:x} overlap "
                          f"(slot_bytes {size})")
    names = tuple(ms.items("partition_names", lambda v: isinstance(v, str)
                           and bool(_PARTITION_NAME_RE.match(v)),
                           "a list of names of 1-16 letters, digits or '_'")) \
        if "partition_names" in ms.data else ()
    if names and (len(names) != count or len(set(names)) != len(names)):
        raise ms.fail("partition_names", f"expected {count} distinct names, got {list(names)}")
    return {"slot_offsets": offsets, "partition_names": names,
            "layout_source": ms.text("layout_source")}


def _parse_board(data: Any, source: str, index: int) -> Board:
    bid = data.get("id") if isinstance(data, Mapping) else None
    where = f"{source}: board {bid!r}" if isinstance(bid, str) else f"{source}: board #{index}"
    f = _Fields(data, where, "", _BOARD_FIELDS)
    bid = f.text("id")
    if not _ID_RE.match(bid):
        raise f.fail("id", f"expected lowercase letters, digits and '-', got {bid!r}")

    sensors = tuple(_parse_sensor(s, where, f"sensors[{i}]")
                    for i, s in enumerate(f.items("sensors")))
    seen: set[str] = set()
    for i, s in enumerate(sensors):
        if s.id in seen:
            raise f.fail(f"sensors[{i}].id", f"duplicate sensor id {s.id!r}")
        seen.add(s.id)
    usb = tuple(_parse_usb(u, where, f"usb[{i}]") for i, u in enumerate(f.items("usb")))

    fl = _Fields(f.get("flashing", lambda v: True, ""), where, "flashing", ("tool", "note"))
    flashing = Flashing(tool=fl.text("tool"), note=fl.text("note"))

    ms = _Fields(f.get("model_slots", lambda v: True, ""), where, "model_slots", _SLOT_FIELDS)
    slots = ModelSlots(
        count=ms.integer("count", 1),
        slot_bytes=ms.integer("slot_bytes", 1),
        arena_bytes=ms.integer("arena_bytes", 1),
        firmware_flash_bytes=ms.integer("firmware_flash_bytes"),
        firmware_ram_bytes=ms.integer("firmware_ram_bytes"),
        **_parse_slot_layout(ms),
    )
    kind = f.text("kind", KINDS)
    runtime = f.text("runtime", RUNTIMES)
    kernels = f.text("kernels", KERNELS, default=RUNTIME_KERNELS[runtime][0])
    if kernels not in RUNTIME_KERNELS[runtime]:
        raise f.fail("kernels", f"{runtime} is not built with {kernels!r}; expected one of "
                     f"{', '.join(RUNTIME_KERNELS[runtime])}")
    if kind != "mcu":
        for name in _MCU_ONLY:
            if name in data:
                raise f.fail(name, f"only for kind mcu (the latency model of {kind} "
                             "boards does not use it); remove it")
    figures: dict[str, Any] = {}
    for name, parse in (("weight_memory", _parse_weight_memory),
                        ("active_power", _parse_active_power),
                        ("code_density", _parse_code_density)):
        if name in data:
            figures[name] = parse(data[name], where)
    board = Board(
        id=bid,
        name=f.text("name"),
        vendor=f.text("vendor"),
        kind=kind,
        mcu=f.text("mcu"),
        core=f.text("core"),
        core_count=f.integer("core_count", 1),
        clock_hz=f.integer("clock_hz", 1),
        flash_bytes=f.integer("flash_bytes", 1),
        ram_bytes=f.integer("ram_bytes", 1),
        fpu=f.flag("fpu"),
        sensors=sensors,
        usb=usb,
        flashing=flashing,
        runtime=runtime,
        deploy=f.text("deploy", DEPLOYS),
        model_slots=slots,
        notes=f.text("notes", default=""),
        dsp=f.text("dsp", default=""),
        kernels=kernels,
        **figures,
    )
    flash_used = slots.firmware_flash_bytes + slots.count * slots.slot_bytes
    if flash_used > board.flash_bytes:
        raise ms.fail("slot_bytes", f"firmware_flash_bytes + count * slot_bytes = "
                      f"{flash_used} exceeds flash_bytes {board.flash_bytes}")
    for i, offset in enumerate(slots.slot_offsets):
        if offset + slots.slot_bytes > board.flash_bytes:
            raise ms.fail(f"slot_offsets[{i}]", f"slot {i} ends at {offset + slots.slot_bytes} "
                          f"(0x{offset + slots.slot_bytes:x}), past flash_bytes "
                          f"{board.flash_bytes}")
    ram_used = slots.firmware_ram_bytes + slots.arena_bytes
    if ram_used > board.ram_bytes:
        raise ms.fail("arena_bytes", f"firmware_ram_bytes + arena_bytes = "
                      f"{ram_used} exceeds ram_bytes {board.ram_bytes}")
    return board


def parse_catalog(text: str, source: str = "catalog.yaml") -> dict[str, Board]:
    """Parse and validate catalog YAML text; boards keyed by id, in file order."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CatalogError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(data, Mapping) or not isinstance(data.get("boards"), list):
        raise CatalogError(f"{source}: expected a mapping with a 'boards' list")
    boards: dict[str, Board] = {}
    for index, entry in enumerate(data["boards"]):
        board = _parse_board(entry, source, index)
        if board.id in boards:
            raise CatalogError(f"{source}: board {board.id!r}: field 'id': duplicate id")
        boards[board.id] = board
    return boards


@functools.lru_cache(maxsize=1)
def _default_catalog() -> dict[str, Board]:
    text = importlib.resources.files(__package__).joinpath("catalog.yaml").read_text("utf-8")
    return parse_catalog(text, "catalog.yaml")


def load_catalog(path: str | os.PathLike[str] | None = None) -> dict[str, Board]:
    """Load and validate a catalog; the packaged ``catalog.yaml`` by default.

    Raises ``CatalogError`` naming the board and field on any problem. The
    default catalog is parsed once per process; each call returns a fresh dict.
    """
    if path is None:
        return dict(_default_catalog())
    with open(path, encoding="utf-8") as fh:
        return parse_catalog(fh.read(), os.fspath(path))


def get_board(board_id: str, catalog: Mapping[str, Board] | None = None) -> Board:
    """The board with this id; ``UnknownBoardError`` (a KeyError) if none."""
    boards = load_catalog() if catalog is None else catalog
    try:
        return boards[board_id]
    except (KeyError, TypeError):
        pass
    ids = sorted(boards)
    message = f"unknown board {board_id!r}"
    close = difflib.get_close_matches(str(board_id).lower(), ids, n=1, cutoff=0.6)
    if close:
        message += f" (did you mean {close[0]!r}?)"
    raise UnknownBoardError(f"{message}; valid ids: {', '.join(ids)}")


def match_usb(vid: int, pid: int, catalog: Mapping[str, Board] | None = None) -> list[Board]:
    """Boards that list this USB VID:PID in any role (usually 0 or 1 of them)."""
    boards = load_catalog() if catalog is None else catalog
    return [b for b in boards.values() if any(u.vid == vid and u.pid == pid for u in b.usb)]
