"""The golden vectors (workbench/protocol/golden_vectors.json) against the codecs and the document.

Host and virtual board share one codec, so a codec change that breaks the
specification would pass every host/board test; these vectors, derived from
docs/protocol.md independently of the codec (tests/derive_golden_vectors.py),
catch it. The document's examples, limits table and field tables are checked
against the same declarations, so document, data and code cannot drift apart.

``python tests/test_protocol_vectors.py --write-doc`` regenerates the generated
sections of docs/protocol.md (review the diff).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import re
import sys
from pathlib import Path

import pytest

from workbench.protocol import framing, limits
from workbench.protocol import messages as m
from workbench.protocol.golden import load_vectors, vectors_markdown
from workbench.protocol.linemode import LineParser

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "protocol.md"
VECTORS = load_vectors()


def unhex(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


# ------------------------------------------------------------------ provenance

def test_the_shipped_file_is_what_the_independent_derivation_gives():
    spec = importlib.util.spec_from_file_location("derive", ROOT / "tests" /
                                                  "derive_golden_vectors.py")
    derive = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(derive)
    assert "workbench" not in derive.__dict__  # independent of the codecs it checks
    assert load_vectors() == derive.derive()


def test_the_file_describes_this_protocol_version():
    assert VECTORS["format"] == "workbench protocol golden vectors"
    assert VECTORS["protocol_version"] == m.PROTOCOL_VERSION


# ------------------------------------------------------------------ framing

@pytest.mark.parametrize("v", VECTORS["crc32"], ids=lambda v: v["name"])
def test_crc32(v):
    assert f"0x{framing.crc32(unhex(v['input_hex'])):08X}" == v["crc32"]


@pytest.mark.parametrize("v", VECTORS["cobs"], ids=lambda v: v["name"])
def test_cobs(v):
    assert framing.cobs_encode(unhex(v["decoded_hex"])) == unhex(v["encoded_hex"])
    assert framing.cobs_decode(unhex(v["encoded_hex"])) == unhex(v["decoded_hex"])


@pytest.mark.parametrize("v", VECTORS["frames"], ids=lambda v: v["name"])
def test_frames(v):
    frame = framing.Frame(v["type"], v["seq"], v["req_id"], unhex(v["payload_hex"]), v["flags"])
    assert frame.body() == unhex(v["body_hex"])
    assert framing.encode_frame(frame) == unhex(v["wire_hex"])
    parser = framing.FrameParser()
    wire = unhex(v["wire_hex"])
    got = [f for i in range(len(wire)) for f in parser.feed(wire[i:i + 1])]  # byte by byte
    assert got == [frame] and parser.stats.bad_frames == 0


# ------------------------------------------------------------------ payloads

NESTED = {(m.SensorList, "sensors"): m.SensorDesc, (m.SlotTable, "slots"): m.SlotInfo,
          (m.Result, "outputs"): m.Tensor}
ENUMS = {"dtype": m.DType, "state": m.SlotState, "mode": m.Mode, "capabilities": m.Capability}
HEX = {"sha256", "base_sha256", "data"}


def build(cls, fields: dict):
    """The payload object a vector's ``fields`` describe (section 11.1's conventions)."""
    kw = {}
    for name, value in fields.items():
        if (cls, name) in NESTED:
            value = tuple(build(NESTED[cls, name], x) for x in value)
        elif cls is m.Infer and name == "inputs":
            value = tuple((x["index"], unhex(x["data"])) for x in value)
        elif name in HEX:
            value = unhex(value)
        elif name in ENUMS:
            value = ENUMS[name](value)
        elif isinstance(value, list):
            value = tuple(value)
        kw[name] = value
    return cls(**kw)


def payload_class(v):
    code = m.Msg(v["type"] if v["role"] in ("request", "event", "error")
                 else v["type"] & ~m.RESPONSE_BIT)
    assert code.name == v["message"]
    return m.PAYLOADS[code, v["role"]]


@pytest.mark.parametrize("v", VECTORS["payloads"], ids=lambda v: v["name"])
def test_payload_encodes_to_the_vector_bytes(v):
    assert build(payload_class(v), v["fields"]).encode() == unhex(v["payload_hex"])


def as_f32(value):
    """``value`` with every float as binary32 (SENSORS' decoder gives the shortest decimal
    of the same binary32, 0.00012207031 for 2**-13; a firmware compares f32 values)."""
    if isinstance(value, float):
        return limits._f32(value)
    if isinstance(value, tuple):
        return tuple(as_f32(x) for x in value)
    if dataclasses.is_dataclass(value):
        return dataclasses.replace(value, **{f.name: as_f32(getattr(value, f.name))
                                             for f in dataclasses.fields(value)})
    return value


@pytest.mark.parametrize("v", VECTORS["payloads"], ids=lambda v: v["name"])
def test_payload_bytes_decode_to_the_vector_fields(v):
    cls = payload_class(v)
    assert as_f32(cls.decode(unhex(v["payload_hex"]))) == build(cls, v["fields"])


def test_every_payload_class_has_a_vector():
    covered = {payload_class(v) for v in VECTORS["payloads"]}
    assert covered == set(m.PAYLOADS.values())


def test_vector_floats_are_exact_in_binary32():
    def floats(x):
        if isinstance(x, float):
            yield x
        elif isinstance(x, dict):
            for y in x.values():
                yield from floats(y)
        elif isinstance(x, list):
            for y in x:
                yield from floats(y)

    for v in VECTORS["payloads"]:
        for x in floats(v["fields"]):
            assert limits._f32(x) == x, (v["name"], x)


# ------------------------------------------------------------------ line mode

def as_dict(event) -> dict:
    if event.kind == "sample":
        return {"kind": "sample", "values": list(event.values)}
    if event.kind == "header":
        return {"kind": "header", "names": list(event.names)}
    return {"kind": "text", "text": event.text}


@pytest.mark.parametrize("v", VECTORS["line_mode"], ids=lambda v: v["name"])
def test_line_mode(v):
    data = v["input"].encode("utf-8")
    whole = [as_dict(e) for e in LineParser().feed(data, 0.0)]
    parser = LineParser()
    bytewise = [as_dict(e) for i in range(len(data)) for e in parser.feed(data[i:i + 1], 0.0)]
    assert whole == bytewise == v["events"]
    assert not any(math.isnan(x) for e in whole for x in e.get("values", ()))


# ------------------------------------------------------------------ the document

BLOCKS = {
    "golden-vectors": ("generated from workbench/protocol/golden_vectors.json",
                       lambda: vectors_markdown()),
    "limits": ("generated from workbench/protocol/limits.py", limits.limits_markdown),
}


def render_doc(text: str) -> str:
    """``text`` with every generated block replaced by what it is generated from."""
    for name, (_source, render) in BLOCKS.items():
        pattern = re.compile(rf"(<!-- {name}:begin[^\n]*-->\n).*?(<!-- {name}:end -->)", re.DOTALL)
        assert len(pattern.findall(text)) == 1, f"docs/protocol.md lacks the {name} block"
        body = render()
        text = pattern.sub(lambda mt, body=body: mt.group(1) + body + mt.group(2), text)
    return text


def test_the_generated_sections_of_the_document_are_current():
    text = DOC.read_text(encoding="utf-8")
    assert text == render_doc(text), (
        "docs/protocol.md's generated sections are out of date: run "
        "`python tests/test_protocol_vectors.py --write-doc` and review the diff")


def all_vector_hex() -> list[str]:
    out = [c["encoded_hex"] for c in VECTORS["cobs"]] + [c["decoded_hex"] for c in VECTORS["cobs"]]
    out += [p["payload_hex"] for p in VECTORS["payloads"]]
    out += [f[k] for f in VECTORS["frames"] for k in ("payload_hex", "body_hex", "wire_hex")]
    return out


HEX_RUN = re.compile(r"`((?:[0-9A-F]{2} )+[0-9A-F]{2})`")


def test_every_hex_example_in_the_document_is_in_the_vectors():
    """The examples outside the generated section (3.2, 3.6, 5.18) show vector bytes."""
    text = DOC.read_text(encoding="utf-8").split("<!-- golden-vectors:begin")[0]
    known = all_vector_hex()
    shown = HEX_RUN.findall(text)
    assert len(shown) >= 20
    for run in shown:
        assert any(run in k for k in known), f"docs/protocol.md shows `{run}`, no vector has it"


def test_the_worked_session_shows_exactly_the_vector_frames():
    text = DOC.read_text(encoding="utf-8")
    section = text.split("### 3.6 Worked example")[1].split("## 4.")[0]
    wire = {f["wire_hex"] for f in VECTORS["frames"]}
    rows = re.findall(r"\| `((?:[0-9A-F]{2} )+00)` \|$", section, re.MULTILINE)
    assert len(rows) == 7 and set(rows) <= wire
    assert "`01 00 00 00 01 00 01 00 04 73 87 BD CA`" in section  # the HELLO body


def test_the_sample_header_example_is_the_samples_vector():
    samples = next(p for p in VECTORS["payloads"] if p["name"] == "samples")
    header = " ".join(samples["payload_hex"].split()[:13])
    assert f"`{header}`" in DOC.read_text(encoding="utf-8").split("### 5.18")[1]


# ------------------------------------------------------------------ field tables

def doc_tables(text: str) -> list[list[tuple[str, str]]]:
    """(field, type) rows of every table of docs/protocol.md with a field and a type column."""
    tables, current, columns = [], None, None
    for line in text.splitlines():
        if not line.startswith("|"):
            current = columns = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if columns is None:
            columns = cells
            if "field" in cells and "type" in cells:
                current = []
                tables.append(current)
            continue
        if current is None or set(line) <= set("|-: "):
            continue
        current.append((cells[columns.index("field")].strip("`"), cells[columns.index("type")]))
    return tables


def declared_rows(cls) -> list[tuple[str, str]]:
    if hasattr(cls, "DOC_ROWS"):
        return list(cls.DOC_ROWS)
    return [row for f in cls.LAYOUT for row in f.doc_rows()]


ALL_CLASSES = sorted(set(m.PAYLOADS.values()) | {m.SensorDesc, m.SlotInfo, m.Tensor},
                     key=lambda c: c.__name__)


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.__name__)
def test_each_layout_is_the_one_the_document_gives(cls):
    """A field table in section 5 or 10, or inline `name:type` text, shows the declared
    layout: field names, types and order."""
    text = DOC.read_text(encoding="utf-8")
    rows = declared_rows(cls)
    if rows in doc_tables(text):
        return
    inline = ", ".join(f"{n}:{t}" for n, t in rows)
    assert f"`{inline}`" in text or all(f"`{n}:{t}`" in text for n, t in rows), (
        f"docs/protocol.md shows no table or inline layout {inline!r} for {cls.__name__}")


@pytest.mark.parametrize("cls", [c for c in ALL_CLASSES if issubclass(c, m.Declared)],
                         ids=lambda c: c.__name__)
def test_declared_layouts_name_every_dataclass_field_in_order(cls):
    assert [f.name for f in cls.LAYOUT] == [f.name for f in dataclasses.fields(cls)]


if __name__ == "__main__":
    if "--write-doc" in sys.argv:
        DOC.write_text(render_doc(DOC.read_text(encoding="utf-8")), encoding="utf-8")
        print(f"rewrote the generated sections of {DOC}")
