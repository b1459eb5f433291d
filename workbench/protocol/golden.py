"""The golden vectors: docs/protocol.md's worked examples as data, shipped in the package.

``golden_vectors.json`` (beside this module) holds CRC-32 and COBS examples, one
example payload per message, whole frames of a session, and line-mode inputs with
the events they parse to. Its format is described in docs/protocol.md section 11.
Its bytes were derived from the document's layouts independently of the codecs
(tests/derive_golden_vectors.py); the tests encode and decode every vector with
the codecs of this package, and check that the document shows these bytes
(:func:`vectors_markdown` renders the section that lists them). A firmware's own
test suite (in C, say) can read the same file.

    >>> from workbench.protocol.golden import load_vectors
    >>> load_vectors()["crc32"][0]["crc32"]
    '0xCBF43926'
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

FILE = "golden_vectors.json"


def load_vectors() -> dict[str, Any]:
    """The parsed vector file (a fresh copy on every call; reading it has no side effect)."""
    text = resources.files(__package__).joinpath(FILE).read_text(encoding="utf-8")
    return json.loads(text)


def _fields(fields: dict[str, Any]) -> str:
    return "`" + json.dumps(fields, ensure_ascii=False, separators=(", ", ": ")) + "`"


def vectors_markdown(vectors: dict[str, Any] | None = None) -> str:
    """Section 11.2 of docs/protocol.md: every vector as a table (``vectors`` defaults
    to the shipped file)."""
    v = load_vectors() if vectors is None else vectors
    out = ["CRC-32:", "", "| input | crc32 |", "|---|---|"]
    out += [f"| `{c['input_hex']}` | {c['crc32']} |" for c in v["crc32"]]
    out += ["", "COBS:", "", "| name | decoded | encoded |", "|---|---|---|"]
    for c in v["cobs"]:
        dec = c["decoded_hex"]
        if len(dec) > 48:
            n = len(dec.split())
            dec = f"{n} bytes: `{dec[:11]} … {dec[-5:]}`"
            enc = f"`{c['encoded_hex'][:14]} …` ({len(c['encoded_hex'].split())} bytes)"
        else:
            dec, enc = f"`{dec}`" if dec else "(empty)", f"`{c['encoded_hex']}`"
        out.append(f"| {c['name']} | {dec} | {enc} |")
    out += ["", "Payloads (`type` is the frame type that carries it):", "",
            "| name | type | fields | payload |", "|---|---|---|---|"]
    for p in v["payloads"]:
        payload = f"`{p['payload_hex']}`" if p["payload_hex"] else "(empty)"
        out.append(f"| {p['name']} | 0x{p['type']:02X} {p['message']} {p['role']} | "
                   f"{_fields(p['fields'])} | {payload} |")
    out += ["", "Frames:", "", "| name | type, flags, seq, req_id | on the wire |",
            "|---|---|---|"]
    for f in v["frames"]:
        wire = f["wire_hex"]
        if len(wire.split()) > 64:
            wire = f"{wire[:47]} … {wire[-11:]}` ({len(wire.split())} bytes)"
            out.append(f"| {f['name']} | 0x{f['type']:02X}, {f['flags']}, {f['seq']}, "
                       f"{f['req_id']} | `{wire} |")
        else:
            out.append(f"| {f['name']} | 0x{f['type']:02X}, {f['flags']}, {f['seq']}, "
                       f"{f['req_id']} | `{wire}` |")
    out += ["", "Line mode:", "", "| name | input | events |", "|---|---|---|"]
    for x in v["line_mode"]:
        shown = json.dumps(x["input"], ensure_ascii=False)
        events = "; ".join(
            e["kind"] + " " + (", ".join(f"{n:g}" for n in e["values"]) if "values" in e else
                               ", ".join(e["names"]) if "names" in e else repr(e["text"]))
            for e in x["events"])
        out.append(f"| {x['name']} | `{shown}` | {events or '(none)'} |")
    return "\n".join(out) + "\n"
